"""Benchmark arena: spec -> plan -> runner (serial, processes, Dask) -> store -> summary.

from optarena.bench import Spec, run_spec, Store, summarize_store
report = run_spec("benchmarks/specs/classic.toml", "results.sqlite", workers=2)
with Store("results.sqlite") as st:
    print(summarize_store(st, keys=report.keys).markdown())

The plan (:mod:`optarena.bench.plan`: applicability, bounds policy, run keys) is what
:func:`optarena.compare`, ``optarena run``, ``optarena plot`` and the demo execute too, and
:mod:`optarena.bench.targets` is the one definition of "evaluations to reach a target".
"""

from .inputs import SpecError
from .plan import (
    MethodChoice,
    MethodEntry,
    Plan,
    Skipped,
    Subject,
    Task,
    choose_methods,
    plan_problem,
    plan_runs,
)
from .runner import BenchReport, execute, run_plan, run_spec
from .spec import ProblemEntry, Spec, load_spec
from .store import SCHEMA_VERSION, RunRecord, Store, StoreError
from .summary import Summary, SummaryRow, summarize_store
from .targets import Target, first_reach

__all__ = [
    "SCHEMA_VERSION",
    "BenchReport",
    "MethodChoice",
    "MethodEntry",
    "Plan",
    "ProblemEntry",
    "RunRecord",
    "Skipped",
    "Spec",
    "SpecError",
    "Store",
    "StoreError",
    "Subject",
    "Summary",
    "SummaryRow",
    "Target",
    "Task",
    "choose_methods",
    "execute",
    "first_reach",
    "load_spec",
    "plan_problem",
    "plan_runs",
    "run_plan",
    "run_spec",
    "summarize_store",
]
