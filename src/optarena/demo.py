"""The demo: the tutorials' mlp_identity comparison, redone fairly.

The tutorials gave every optimizer "100 iterations", which meant 100 evaluations for Adam and
10,100 for PSO, with one seed. Here every registered method that applies gets the same budget
of objective evaluations, stochastic methods get several seeds (a deterministic method gives
the same run for every seed and runs once), gradient methods use the exact autograd
gradient, and global methods search the box [-1, 1]^10. Results go to a SQLite store in the
output directory (so a second call resumes), and the summary to ``summary.md`` and
``summary.csv``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from .bench.plan import MethodEntry, Plan, Subject, plan_problem
from .bench.runner import run_plan
from .bench.spec import ProblemEntry, Spec
from .bench.store import Store
from .bench.summary import Summary, summarize_store
from .budget import Budget
from .minimize import minimize
from .problems import _base as problems

__all__ = ["DEMO_PROBLEM", "TUTORIAL_OPTIONS", "demo_spec", "run_demo"]

DEMO_PROBLEM = "mlp_identity"
#: The tutorial's own settings for the methods it ran; every other method runs on defaults.
TUTORIAL_OPTIONS: dict[str, dict[str, float]] = {
    "adam": {"lr": 1.0},
    "cmaes": {"sigma0": 0.5},
    "dual_annealing": {"initial_temp": 1.0},
}


def demo_spec(budget: int = 2000, seeds: int = 5) -> Spec:
    """The demo as a spec: mlp_identity x every method x ``seeds`` seeds x ``budget``."""
    from .methods import method_infos

    registered = {i.name for i in method_infos()}
    methods = [MethodEntry(m, opts) for m, opts in TUTORIAL_OPTIONS.items() if m in registered]
    methods.append(MethodEntry("*"))
    return Spec(
        problems=(ProblemEntry(DEMO_PROBLEM),),
        methods=tuple(methods),
        seeds=seeds,
        budget=budget,
        name="demo",
    )


def _header(plan: Plan, budget: int, seeds: int) -> str:
    from .problems import get

    p = get(DEMO_PROBLEM)
    n_methods = len({t.label for t in plan.tasks})
    lines = [
        f"# {DEMO_PROBLEM}: {n_methods} methods, {budget} objective evaluations each",
        "",
        f"{p.description} Start x0 from the tutorial; certified optimum f* = {p.f_opt}.",
        f"Stochastic methods: seeds 0-{seeds - 1}; deterministic methods run once (the same "
        "run for every seed). Gradient methods use the exact autograd gradient (one "
        "forward+backward counts as one evaluation); global methods search [-1, 1]^10. "
        "Columns: final best value over the runs (median, quartiles, best); success = "
        "reached f*+1e-6; 'evals to t' = median evaluations to reach t among the runs that "
        "did (hits/runs); stop = why the runs ended (converged: the method's own test was met; "
        "max_evals: the budget was spent; non_finite: only NaN or inf values; error: it "
        "raised), with counts when a method's runs ended differently.",
        "",
    ]
    if plan.skipped:
        lines += ["Skipped: " + "; ".join(f"{s.label} ({s.reason})" for s in plan.skipped), ""]
    return "\n".join(lines)


def run_demo(
    out: str | Path,
    *,
    budget: int = 2000,
    seeds: int = 5,
    workers: int = 2,
    fresh: bool = False,
    progress: bool | None = None,
    plots: bool = True,
    echo: Callable[[str], object] = print,
) -> Summary:
    """Run (or resume) the demo into ``out`` and print its summary; returns the Summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "results.sqlite"
    plan = demo_spec(budget, seeds).plan()
    with Store(store_path) as store:
        if fresh:
            store.delete(plan.keys)
        report = run_plan(plan, store, workers=workers, progress=progress)
        labels = plan.labels
        summary = summarize_store(store, keys=plan.keys, labels=labels)
    header = _header(plan, budget, seeds)
    (out / "summary.md").write_text(header + "\n" + summary.markdown(), encoding="utf-8")
    (out / "summary.csv").write_text(summary.csv(), encoding="utf-8")
    echo(header)
    echo(summary.markdown())
    note = f"{report}."
    if report.already_done:
        note += " (pass --fresh to recompute)"
    echo(note)
    written = [out / "summary.md", out / "summary.csv", store_path]
    if plots:
        written += _plots(store_path, out, plan, labels)
    echo("wrote " + ", ".join(str(p) for p in written))
    return summary


# -- pictures ------------------------------------------------------------------------------------
# The plotting package draws from the store; the demo skips pictures while it does not exist.
def _plots(store_path: Path, out: Path, plan: Plan, labels: dict[str, str]) -> list[Path]:
    try:
        from . import plot
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("optarena.plot"):
            return []
        raise
    try:
        with Store(store_path, create=False) as store:
            runs: dict[str, list[dict]] = {}
            for r in store.runs(spec=plan.spec):
                if r["key"] in labels:
                    runs.setdefault(labels[r["key"]], []).append(store.history(r["run_id"]))
        f_opt = plan.tasks[0].f_opt if plan.tasks else None
        path = plot.convergence(
            runs, f_opt=f_opt, title=f"{DEMO_PROBLEM}: best value vs evaluations",
            path=out / "optimizers.png",
        )  # fmt: skip
        written = [Path(path)]
        # One 2-D run animated on its landscape: a particle swarm on the tutorial's Rosenbrock.
        rosen = problems.get("rosenbrock")
        task = plan_problem(Subject.of(rosen), [MethodEntry("pso")], Budget(evals=600), (0,))
        recorder = plot.Recorder()
        t = task.tasks[0]
        run = minimize(rosen, method=t.method, bounds=rosen.bounds if t.bounds else None,
                       budget=t.budget, seed=t.seed, callback=recorder)  # fmt: skip
        written.append(
            Path(plot.animate(rosen, run, generations=recorder, path=out / "rosenbrock_pso.gif"))
        )
        written.append(Path(plot.write_report(store_path, out / "report")))
        return written
    except Exception as e:  # a picture must not cost the user the table they already have
        print(f"optarena demo: no picture ({type(e).__name__}: {e})", file=sys.stderr)
        return []
