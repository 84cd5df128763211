"""``optarena run`` and ``optarena plot``: fresh runs of one problem, planned like a benchmark.

Both go through :func:`optarena.bench.plan.plan_problem`, so a method gets the same box, the
same applicability check and the same label here as in ``optarena bench`` and ``compare()``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from .command import Command
from .values import parse_method, parse_pairs

__all__ = ["PLOT", "RUN"]


def _planned(problem: Any, params: dict[str, Any], methods: list[Any], budget: int,
             seeds: list[int], name: str) -> Any:  # fmt: skip
    """The plan of ``methods`` on ``problem`` (every seed of each); a method that cannot run
    here is an error naming why."""
    from optarena.bench.inputs import encode_params, parse_budget
    from optarena.bench.plan import Subject, plan_problem

    subject = Subject.of(problem, encode_params(params))
    plan = plan_problem(subject, methods, parse_budget(budget), seeds, spec=name,
                        deterministic_once=False, keyed=False)  # fmt: skip
    if plan.skipped:
        s = plan.skipped[0]
        raise ValueError(f"{s.label} cannot run here: {s.reason}")
    return plan


# -- run -----------------------------------------------------------------------------------------
def _run_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "problem",
        help="a problem name (see `optarena problems`), or a spec file (.toml) to run as "
        "`optarena bench` does",
    )
    p.add_argument("--method", "-m", default="lbfgs", help="method name (default: lbfgs)")
    p.add_argument("--budget", "-b", type=int, default=1000, help="objective evaluations")
    p.add_argument("--seed", "-s", type=int, default=0, help="seed of the run (default 0)")
    p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                   help="a method option, e.g. -o lr=0.1 (repeatable)")  # fmt: skip
    p.add_argument("--param", "-p", action="append", metavar="KEY=VALUE",
                   help="a problem parameter, e.g. -p b=100 (repeatable)")  # fmt: skip
    p.add_argument(
        "--bounds",
        choices=["auto", "always", "never"],
        default="auto",
        help="give the problem's box: auto (global methods), always or never",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--coco-output",
        type=Path,
        metavar="FOLDER",
        help="write a bbob run (or a spec's bbob runs) in COCO's format under FOLDER/METHOD "
        "(that folder is rebuilt)",
    )
    p.add_argument(
        "--store",
        type=Path,
        default=Path("results.sqlite"),
        help="a spec's results file (default results.sqlite); reruns resume it",
    )
    p.add_argument("--workers", "-j", type=int, default=1,
                   help="a spec's local worker processes")  # fmt: skip
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a live progress line on stderr (default: when run in a terminal)",
    )


def _problem(name: str, params: dict[str, Any]) -> Any:
    from optarena.bench.inputs import decode_params
    from optarena.problems import get

    try:
        return get(name, **decode_params(params))
    except (TypeError, ValueError, ArithmeticError) as e:
        raise ValueError(f"problem {name!r} with parameters {params}: {e}") from e


def _run_spec(args: argparse.Namespace) -> int:
    """``optarena run SPEC.toml``: the spec's runs into ``--store``, as ``optarena bench``."""
    from .arena import BENCH

    bench = argparse.ArgumentParser()
    BENCH.configure(bench)
    argv = [str(args.problem), "--store", str(args.store), "--workers", str(args.workers)]
    if args.coco_output is not None:
        argv += ["--coco-output", str(args.coco_output)]
    if args.progress is False:
        argv.append("--no-progress")
    return BENCH.run(bench.parse_args(argv))


def _run_run(args: argparse.Namespace) -> int:
    from optarena.bench.inputs import encode_params
    from optarena.bench.plan import MethodEntry
    from optarena.minimize import minimize
    from optarena.progress import finish, observe, wants_progress

    if args.problem.endswith(".toml"):
        return _run_spec(args)
    options = parse_pairs(args.option, "--option")
    params = parse_pairs(args.param, "--param")
    problem = _problem(args.problem, params)
    entry = MethodEntry(args.method, options, bounds=args.bounds)
    task = _planned(problem, params, [entry], args.budget, [args.seed], "run").tasks[0]
    if args.coco_output is not None:
        from optarena.bench.coco import CocoError, check_dim

        if problem.name != "bbob":
            raise ValueError(f"--coco-output is for bbob problems, not {problem.name!r}")
        try:
            check_dim(problem.dim)
        except CocoError as e:
            raise ValueError(str(e)) from None
    with observe(wants_progress(args.progress), task.budget, task.label) as callback:
        res = finish(
            callback,
            minimize(
                problem,
                method=task.method,
                bounds=problem.bounds if task.bounds else None,
                budget=task.budget,
                seed=task.seed,
                callback=callback,
                record_x=True if args.coco_output is not None else None,
                **options,
            ),
        )
    if args.coco_output is not None:
        import numpy as np

        from optarena.bench.coco import log_points

        rows = np.hstack([res.history.x, res.history.f.reshape(-1, 1)])
        print(log_points([(task.label, problem.params, rows)], args.coco_output),
              file=sys.stderr)  # fmt: skip
    out = {
        "problem": problem.name,
        "params": encode_params(problem.params),
        "method": res.method,
        "options": options,
        "seed": res.seed,
        "budget": args.budget,
        "fun": res.fun if math.isfinite(res.fun) else None,
        "f_opt": problem.f_opt,
        "nfev": res.nfev,
        "ngev": res.ngev,
        "elapsed": res.elapsed,
        "stop_reason": res.stop_reason.value,
        "message": res.message,
        "best_eval": res.best_eval,
        "x": res.x_numpy().tolist(),
    }
    if problem.constraints:
        out.update(feasible=res.feasible, max_violation=res.max_violation, ncev=res.ncev)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    gap = "" if problem.f_opt is None else f"  (f* = {problem.f_opt:.12g})"
    lines = [
        f"problem      {problem.name} ({problem.dim} variables)",
        f"method       {res.method}" + (f" {options}" if options else ""),
        f"fun          {res.fun:.12g}{gap}",
        f"evaluations  {res.nfev} (gradients {res.ngev}), best at evaluation {res.best_eval}",
        f"elapsed      {res.elapsed:.3g} s",
        f"stop         {res.stop_reason.value}" + (f": {res.message}" if res.message else ""),
        "x            " + _fmt_point(out["x"]),
    ]
    if problem.constraints:
        lines.insert(
            3,
            f"constraints  {'feasible' if res.feasible else 'INFEASIBLE'}, max violation "
            f"{res.max_violation:.3g}, {res.ncev} constraint evaluations",
        )
    print("\n".join(lines))
    return 0


def _fmt_point(x: list[float], limit: int = 12) -> str:
    shown = ", ".join(f"{v:.6g}" for v in x[:limit])
    return f"[{shown}{', ...' if len(x) > limit else ''}]"


# -- plot ----------------------------------------------------------------------------------------
_PLOT_KINDS = ("convergence", "landscape", "curve", "animation")


def _plot_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("problem", help="a problem name (see `optarena problems`)")
    p.add_argument(
        "--method", "-m", action="append", required=True,
        help="method name (repeat for several; options as name:key=value,key=value)",
    )  # fmt: skip
    p.add_argument("--kind", choices=_PLOT_KINDS, default="convergence")
    p.add_argument("--budget", "-b", type=int, default=500, help="evaluations per run")
    p.add_argument("--seeds", type=int, default=1, help="seeds per method (median and band)")
    p.add_argument("--out", type=Path, required=True, help="a .png (or .gif/.html for animation)")


def _plot_run(args: argparse.Namespace) -> int:
    from optarena import plot
    from optarena.bench.plan import MethodEntry
    from optarena.minimize import minimize

    problem = _problem(args.problem, {})
    entries = [MethodEntry(*parse_method(text)) for text in args.method]
    plan = _planned(problem, {}, entries, args.budget, list(range(args.seeds)), "plot")
    runs: dict[str, list[Any]] = {}
    recorders: list[plot.Recorder] = []
    for t in plan.tasks:
        rec = plot.Recorder()
        res = minimize(problem, method=t.method, budget=t.budget, seed=t.seed,
                          bounds=problem.bounds if t.bounds else None, callback=rec,
                          **t.options)  # fmt: skip
        runs.setdefault(t.label, []).append(res)
        recorders.append(rec)
    if args.kind == "convergence":
        path = plot.convergence(runs, problem=problem, path=args.out)
    elif args.kind == "landscape":
        path = plot.landscape(problem, runs, path=args.out)
    elif args.kind == "curve":
        path = plot.curve_1d(problem, runs, path=args.out)
    else:
        first = next(iter(runs.values()))[0]
        path = plot.animate(problem, first, generations=recorders[0], path=args.out)
    print(path)
    return 0


RUN = Command(
    "run", "minimize one problem with one method and print the result", _run_configure, _run_run
)
PLOT = Command(
    "plot",
    "one picture: convergence, landscape, 1-D curve or animation of fresh runs",
    _plot_configure,
    _plot_run,
)
