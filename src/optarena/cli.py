"""The ``optarena`` command: a thin map from subcommands to library calls.

Each subcommand is one :class:`Command` entry in :data:`COMMANDS` (a name, a help line, a
function that declares its arguments and one that runs it), so adding ``report`` or ``plot``
is adding one entry. User errors print one line on stderr and exit with status 1 (2 for bad
usage); ``--traceback`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


@dataclass(frozen=True)
class Command:
    """One subcommand: ``configure(parser)`` adds its arguments, ``run(args)`` returns a code."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# -- helpers ------------------------------------------------------------------------------------
def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned markdown table (readable in a terminal, renders as a table elsewhere)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    rule = "-|-".join("-" * w for w in widths)
    return "\n".join([f"| {fmt[0]} |", f"|-{rule}-|"] + [f"| {line} |" for line in fmt[1:]])


def _parse_value(text: str) -> Any:
    """A ``key=value`` value as TOML (numbers, booleans, lists), else the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _pairs(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {item!r} must look like key=value (e.g. lr=0.1)")
        out[key.strip()] = _parse_value(value.strip())
    return out


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


# -- methods / problems ------------------------------------------------------------------------
def _methods_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _methods_run(args: argparse.Namespace) -> int:
    import optarena

    infos = optarena.methods()
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=2))
        return 0
    headers = [
        "method",
        "family",
        "gradient",
        "bounds",
        "constraints",
        "stochastic",
        "global",
        "needs box",
        "summary",
    ]
    rows = [
        [
            i.name,
            i.family,
            _yes(i.needs_grad),
            _yes(i.supports_bounds),
            _yes(i.supports_constraints),
            _yes(i.stochastic),
            _yes(i.is_global),
            _yes(i.requires_bounds),
            i.summary,
        ]
        for i in infos
    ]
    print(_table(headers, rows))
    return 0


def _problems_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _problems_run(args: argparse.Namespace) -> int:
    from optarena import problems

    rows = []
    for name in problems.names():
        p = problems.get(name)
        rows.append(
            {
                "problem": name,
                "dim": p.dim,
                "f_opt": p.f_opt,
                "differentiable": p.differentiable,
                "bounds": p.bounds is not None,
                "constraints": len(p.constraints),
                "description": p.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    headers = ["problem", "dim", "f_opt", "gradient", "box", "constraints", "description"]
    print(
        _table(
            headers,
            [
                [
                    r["problem"],
                    r["dim"],
                    "?" if r["f_opt"] is None else f"{r['f_opt']:.12g}",
                    _yes(r["differentiable"]),
                    _yes(r["bounds"]),
                    r["constraints"] or "-",
                    r["description"],
                ]
                for r in rows
            ],
        )
    )
    return 0


# -- run -----------------------------------------------------------------------------------------
def _run_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("problem", help="a problem name (see `optarena problems`)")
    p.add_argument("--method", "-m", default="lbfgs", help="method name (default: lbfgs)")
    p.add_argument("--budget", "-b", type=int, default=1000, help="objective evaluations")
    p.add_argument("--seed", "-s", type=int, default=0, help="seed of the run (default 0)")
    p.add_argument(
        "--option",
        "-o",
        action="append",
        metavar="KEY=VALUE",
        help="a method option, e.g. -o lr=0.1 (repeatable)",
    )
    p.add_argument(
        "--param",
        "-p",
        action="append",
        metavar="KEY=VALUE",
        help="a problem parameter, e.g. -p b=100 (repeatable)",
    )
    p.add_argument(
        "--bounds",
        choices=["auto", "always", "never"],
        default="auto",
        help="give the problem's box: auto (global methods), always or never",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _run_run(args: argparse.Namespace) -> int:
    import optarena
    from optarena.bench.spec import (
        decode_params,
        encode_params,
        inapplicable_reason,
        resolve_entry,
        uses_bounds,
    )

    options = _pairs(args.option, "--option")
    params = _pairs(args.param, "--param")
    try:
        problem = optarena.problems.get(args.problem, **decode_params(params))
    except (TypeError, ValueError, ArithmeticError) as e:
        raise ValueError(f"problem {args.problem!r} with parameters {params}: {e}") from e
    method, info, _ = resolve_entry(args.method, options)
    reason = inapplicable_reason(
        info,
        differentiable=problem.differentiable,
        has_box=problem.bounds is not None,
        constrained=bool(problem.constraints),
        problem=problem.name,
        policy=args.bounds,
    )
    if reason is not None:
        raise ValueError(f"method {method!r} cannot run here: it {reason}")
    res = optarena.minimize(
        problem,
        method=method,
        bounds=problem.bounds if uses_bounds(info, args.bounds) else None,
        budget=args.budget,
        seed=args.seed,
        **options,
    )
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


# -- bench / summary ----------------------------------------------------------------------------
def _bench_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", type=Path, help="a spec file (TOML), e.g. benchmarks/specs/seeds.toml")
    p.add_argument(
        "--store",
        type=Path,
        default=Path("results.sqlite"),
        help="SQLite results file (default results.sqlite); reruns resume it",
    )
    p.add_argument("--workers", "-j", type=int, default=1, help="local worker processes")
    p.add_argument(
        "--dask",
        metavar="ADDRESS|local:N",
        help="run on a Dask cluster: a scheduler address (tcp://host:8786) or local:N worker "
        "processes on 127.0.0.1 (dask extra); results are stored here",
    )
    p.add_argument("--retry-errors", action="store_true", help="rerun runs stored as errors")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--format",
        choices=["markdown", "csv", "none"],
        default="markdown",
        help="summary printed at the end (default markdown)",
    )


def _bench_run(args: argparse.Namespace) -> int:
    from optarena.bench import Spec, Store, run_plan, summarize_store

    spec = Spec.from_toml(args.spec)
    plan = spec.plan()
    progress = False if args.no_progress else None
    with Store(args.store) as store:
        if args.dask:
            if args.workers != 1:
                raise ValueError("--workers and --dask exclude each other: the cluster has its own")
            from optarena.bench.dask_runner import run_plan_dask

            report = run_plan_dask(
                plan, store, args.dask, progress=progress, retry_errors=args.retry_errors
            )
        else:
            report = run_plan(
                plan, store, workers=args.workers, progress=progress,
                retry_errors=args.retry_errors,
            )  # fmt: skip
        print(report, file=sys.stderr)
        if args.format != "none":
            labels = {t.key: t.label for t in plan.tasks}
            print(summarize_store(store, keys=plan.keys, labels=labels).table(args.format), end="")
    return 0


def _summary_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", type=Path, help="a results file written by `optarena bench`")
    p.add_argument("--format", choices=["markdown", "csv"], default="markdown")
    p.add_argument("--problem", help="only this problem")
    p.add_argument("--spec", help="only runs of this spec (its name)")
    p.add_argument("--out", type=Path, help="write the table to this file instead of stdout")


def _summary_run(args: argparse.Namespace) -> int:
    from optarena.bench import Store, summarize_store

    with Store(args.store, create=False) as store:
        where = {k: v for k, v in (("problem", args.problem), ("spec", args.spec)) if v}
        keys = [r["key"] for r in store.runs(**where)] if where else None
        if keys is not None and not keys:
            raise ValueError(f"no runs match {where} in {args.store}")
        text = summarize_store(store, keys=keys).table(args.format)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


# -- demo ----------------------------------------------------------------------------------------
def _demo_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("optarena-demo"), help="output directory")
    p.add_argument("--budget", type=int, default=2000, help="evaluations per run (2000)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per stochastic method (5)")
    p.add_argument("--workers", "-j", type=int, default=2, help="worker processes (2)")
    p.add_argument("--fresh", action="store_true", help="recompute instead of resuming")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="skip the convergence picture")


def _demo_run(args: argparse.Namespace) -> int:
    from optarena.demo import run_demo

    run_demo(
        args.out,
        budget=args.budget,
        seeds=args.seeds,
        workers=args.workers,
        fresh=args.fresh,
        progress=False if args.no_progress else None,
        plots=not args.no_plot,
    )
    return 0


# -- report / plot ------------------------------------------------------------------------------
def _report_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", type=Path, help="a results file written by `optarena bench`")
    p.add_argument("--out", type=Path, default=Path("optarena-report"), help="output directory")
    p.add_argument("--title", default="optarena results", help="page title")


def _report_run(args: argparse.Namespace) -> int:
    from optarena.plot import write_report

    if not args.store.exists():
        raise ValueError(f"no results store at {args.store}")
    print(write_report(args.store, args.out, title=args.title))
    return 0


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


def _parse_method(text: str) -> tuple[str, dict[str, object]]:
    name, _, opts = text.partition(":")
    options: dict[str, object] = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"method option {item!r} must look like key=value")
        options[key.strip()] = _literal(value.strip())
    return name.strip(), options


def _literal(value: str) -> object:
    import ast

    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _plot_run(args: argparse.Namespace) -> int:
    import optarena as oa
    from optarena import plot
    from optarena.bench.spec import resolve_entry, uses_bounds

    problem = oa.problems.get(args.problem)
    runs: dict[str, list[oa.Result]] = {}
    recorders: list[plot.Recorder] = []
    for text in args.method:
        name, options = _parse_method(text)
        for seed in range(args.seeds):
            rec = plot.Recorder()
            # the same box as `optarena run` and `bench` give this method
            _, info, _ = resolve_entry(name, options)
            bounds = problem.bounds if uses_bounds(info, "auto") else None
            res = oa.minimize(problem, method=name, budget=args.budget, seed=seed,
                              bounds=bounds, callback=rec, **options)  # fmt: skip
            runs.setdefault(res.method, []).append(res)
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


COMMANDS: list[Command] = [
    Command(
        "methods",
        "list the registered methods and what they can do",
        _methods_configure,
        _methods_run,
    ),
    Command(
        "problems",
        "list the test problems (dimension, known optimum)",
        _problems_configure,
        _problems_run,
    ),
    Command(
        "run", "minimize one problem with one method and print the result", _run_configure, _run_run
    ),
    Command(
        "bench",
        "run a spec (problems x methods x seeds) into a results store",
        _bench_configure,
        _bench_run,
    ),
    Command("summary", "summary table of a results store", _summary_configure, _summary_run),
    Command(
        "report",
        "a self-contained HTML page (table and pictures) of a results store",
        _report_configure,
        _report_run,
    ),
    Command(
        "plot",
        "one picture: convergence, landscape, 1-D curve or animation of fresh runs",
        _plot_configure,
        _plot_run,
    ),
    Command(
        "demo",
        "the fair mlp_identity comparison: every method, equal budgets, 5 seeds",
        _demo_configure,
        _demo_run,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per entry of :data:`COMMANDS`."""
    from optarena import __version__

    parser = argparse.ArgumentParser(
        prog="optarena",
        description="Optimize functions and PyTorch models with every kind of optimizer, "
        "and compare optimizers fairly (budgets counted in objective evaluations).",
    )
    parser.add_argument("--version", action="version", version=f"optarena {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``optarena`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or bad usage (already printed)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        print("optarena: interrupted; finished runs are kept", file=sys.stderr)
        return 130
    except Exception as e:
        if args.traceback:
            raise
        print(f"optarena: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
