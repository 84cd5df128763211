"""Benchmark arena: specs (problems x methods x seeds x budget), a resumable runner, a store.

from optarena.bench import Spec, run_spec, Store, summarize_store
report = run_spec("benchmarks/specs/classic.toml", "results.sqlite", workers=2)
with Store("results.sqlite") as st:
    print(summarize_store(st, keys=report.keys).markdown())
"""

from .runner import BenchReport, execute, run_plan, run_spec
from .spec import MethodEntry, Plan, ProblemEntry, Skipped, Spec, SpecError, Task, load_spec
from .store import SCHEMA_VERSION, RunRecord, Store, StoreError
from .summary import Summary, SummaryRow, Target, summarize_store

__all__ = [
    "SCHEMA_VERSION",
    "BenchReport",
    "MethodEntry",
    "Plan",
    "ProblemEntry",
    "RunRecord",
    "Skipped",
    "Spec",
    "SpecError",
    "Store",
    "StoreError",
    "Summary",
    "SummaryRow",
    "Target",
    "Task",
    "execute",
    "load_spec",
    "run_plan",
    "run_spec",
    "summarize_store",
]
