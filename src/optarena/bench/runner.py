"""The runner: execute a spec's runs (serially or in local processes) into a store, resumably.

Only the parent process writes to SQLite, one transaction per finished run, so a sweep that is
killed or interrupted keeps every finished run and redoes the others on the next call. Workers
start with the "forkserver" (or "spawn") context, run with one torch thread like the serial
path, and give the same numbers as a serial run.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import platform
import sqlite3
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ..budget import StopReason
from ..core.oracle import ObjectiveError
from ..minimize import minimize
from ..result import Result
from .inputs import budget_to_dict
from .plan import Plan, Skipped, Task
from .pool import WorkerDied, run_in_workers
from .spec import Spec
from .store import RunRecord, Store

__all__ = [
    "BenchReport",
    "execute",
    "package_version",
    "pending",
    "progress_bar",
    "record_from_result",
    "run_plan",
    "run_spec",
    "save_record",
    "spec_and_store",
    "torch_threads",
    "versions",
]


def package_version() -> str:
    """The installed optarena's version (its metadata), or "unknown" when not installed."""
    try:
        return metadata.version("optarena")
    except metadata.PackageNotFoundError:
        return "unknown"


@cache
def versions() -> dict[str, str]:
    """Versions of optarena, torch, numpy, scipy and Python, stored with every run."""
    import numpy
    import scipy
    import torch

    return {
        "optarena": package_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


def record_from_result(
    task: Task, result: Result | None, status: str, message: str = ""
) -> RunRecord:
    """The store's record of a run (``result`` is None when it failed before evaluating)."""
    history = {}
    if result is not None:
        history = {k: v.copy() for k, v in result.history.as_dict().items()}
    return RunRecord(
        key=task.key,
        spec=task.spec,
        problem=task.problem,
        problem_params=task.problem_params,
        method=task.method,
        label=task.label,
        options=task.options_json,
        bounds=task.bounds,
        seed=task.seed,
        budget=budget_to_dict(task.budget),
        status=status,
        # a run that never found a feasible point has no value worth ranking
        fun=None if result is None else (float(result.fun) if result.feasible else math.inf),
        nfev=0 if result is None else result.nfev,
        ngev=0 if result is None else result.ngev,
        elapsed=0.0 if result is None else result.elapsed,
        stop_reason=StopReason.ERROR.value if result is None else result.stop_reason.value,
        message=message
        if result is None or status == "error"
        else result.message + ("" if result.feasible else " (no feasible point found)"),
        best_eval=None if result is None else result.best_eval,
        x=None if result is None else result.x_numpy().tolist(),
        f_opt=task.f_opt,
        versions=versions(),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        history=history,
    )


def execute(task: Task) -> RunRecord:
    """Run one task; an exception in the objective or the method becomes an "error" record.

    Raises KeyboardInterrupt when the run was interrupted (such a run is never stored).
    """
    try:
        problem = task.build_problem()
        result = minimize(
            problem,
            method=task.method,
            bounds=problem.bounds if task.bounds else None,
            budget=task.budget,
            seed=task.seed,
            record_x=False,
            **dict(task.options),
        )
    except ObjectiveError as e:
        return record_from_result(task, e.result, "error", str(e))
    except Exception as e:
        return record_from_result(task, None, "error", f"{type(e).__name__}: {e}")
    if result.stop_reason is StopReason.INTERRUPTED:
        raise KeyboardInterrupt
    return record_from_result(task, result, "ok")


@dataclass
class BenchReport:
    """What a call of the runner did."""

    spec: str
    store: Path
    planned: int
    already_done: int
    ran: int = 0
    errors: int = 0
    skipped: tuple[Skipped, ...] = ()
    keys: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [
            f"{self.spec}: {self.planned} runs planned",
            f"{self.already_done} already in {self.store}",
            f"{self.ran} ran now",
        ]
        if self.errors:
            parts.append(f"{self.errors} with errors (status 'error' in the store)")
        if self.skipped:
            parts.append(f"{len(self.skipped)} method/problem pairs skipped as inapplicable")
        return ", ".join(parts)


@contextlib.contextmanager
def torch_threads(n: int | None = 1) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: leave as is), then restore.

    Small objectives run much faster on one thread, and one thread everywhere makes serial
    and parallel runs give identical numbers.
    """
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _init_worker() -> None:
    """Worker setup: one torch thread, as in a serial run (the same numbers)."""
    import torch

    torch.set_num_threads(1)


def _context() -> mp.context.BaseContext:
    if "forkserver" in mp.get_all_start_methods():
        from ..methods import method_modules

        # The fork server imports torch, optarena, every method module and what torch.optim's
        # first step imports lazily, once; each worker is forked from it with all of that done.
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(
            [__name__, "torch._dynamo", *(f"optarena.methods.{m}" for m in method_modules())]
        )
        return ctx
    return mp.get_context("spawn")


def progress_bar(total: int, desc: str, enabled: bool | None) -> Any:
    from tqdm.auto import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="run", disable=not enabled, leave=False)


def pending(
    plan: Plan, store: Store, retry_errors: bool
) -> tuple[list[Task], BenchReport, dict[str, str]]:
    """The planned tasks the store lacks (or holds as errors, with ``retry_errors``), the
    report to fill while running them, and the store's run statuses by key."""
    status = store.statuses()
    todo = [
        t for t in plan.tasks if t.key not in status or (retry_errors and status[t.key] == "error")
    ]
    report = BenchReport(
        spec=plan.spec,
        store=store.path,
        planned=len(plan.tasks),
        already_done=len(plan.tasks) - len(todo),
        skipped=plan.skipped,
        keys=plan.keys,
    )
    return todo, report, status


def save_record(store: Store, rec: RunRecord, report: BenchReport, status: dict[str, str]) -> None:
    """Write one finished run (this process owns the store) and count it in ``report``."""
    try:
        store.write(rec, replace=rec.key in status)
    except sqlite3.IntegrityError as e:
        if "runs.key" not in str(e):
            raise
        report.already_done += 1  # another process stored this run meanwhile
        return
    status[rec.key] = rec.status
    report.ran += 1
    report.errors += rec.status == "error"


def run_plan(
    plan: Plan,
    store: Store,
    *,
    workers: int = 1,
    progress: bool | None = None,
    retry_errors: bool = False,
) -> BenchReport:
    """Run the planned tasks that the store does not hold yet; returns what was done.

    ``workers`` > 1 runs in that many local processes; ``progress`` shows a bar (default: when
    stderr is a terminal); ``retry_errors`` reruns runs stored with status "error".
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    todo, report, status = pending(plan, store, retry_errors)
    if not todo:
        return report
    with progress_bar(len(todo), plan.spec, progress) as bar:

        def save(rec: RunRecord) -> None:
            bar.update(1)
            save_record(store, rec, report, status)

        if workers == 1 or len(todo) == 1:
            with torch_threads(1):
                for task in todo:
                    save(execute(task))
        else:
            _run_parallel(todo, min(workers, len(todo)), save)
    return report


def _run_parallel(todo: list[Task], workers: int, save: Callable[[RunRecord], None]) -> None:
    try:
        run_in_workers(
            todo,
            workers,
            execute,
            lambda _task, rec: save(rec),
            ctx=_context(),
            init=_init_worker,
            describe=lambda t: f"{t.label} on {t.problem} (seed {t.seed})",
        )
    except WorkerDied as e:
        raise RuntimeError(
            f"a worker process died: {e} (out of memory, killed, or a script that starts "
            "workers without `if __name__ == '__main__':`); every finished run is in the "
            "store: run the same command again to resume"
        ) from e


def run_spec(
    spec: Spec | str | Path,
    store: Store | str | Path,
    *,
    workers: int = 1,
    progress: bool | None = None,
    retry_errors: bool = False,
) -> BenchReport:
    """Validate ``spec`` (a Spec or a TOML path), then run what ``store`` lacks.

    Re-running the same spec skips finished runs, so an interrupted sweep resumes. With
    ``workers`` > 1, a calling script must guard its entry point with
    ``if __name__ == "__main__":`` (worker processes import it).
    """
    with spec_and_store(spec, store) as (plan, st):
        return run_plan(plan, st, workers=workers, progress=progress, retry_errors=retry_errors)


@contextlib.contextmanager
def spec_and_store(
    spec: Spec | str | Path, store: Store | str | Path
) -> Iterator[tuple[Plan, Store]]:
    """The validated plan of ``spec`` (a Spec or a TOML path) and ``store`` opened (a Store as
    is, or a path opened here and closed on exit): what every ``run_spec*`` starts with."""
    if not isinstance(spec, Spec):
        spec = Spec.from_toml(spec)
    plan = spec.plan()
    own = not isinstance(store, Store)
    st = Store(store) if own else store
    try:
        yield plan, st
    finally:
        if own:
            st.close()
