"""``optarena bench``, ``summary``, ``report`` and ``demo``: sweeps into a results store and
what is read back from it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .command import Command

__all__ = ["BENCH", "DEMO", "REPORT", "SUMMARY"]


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
    p.add_argument(
        "--coco-output",
        type=Path,
        metavar="FOLDER",
        help="also write the bbob runs in COCO's format (one folder per method, for cocopp); "
        "overrides the spec's coco_output",
    )


def _bench_run(args: argparse.Namespace) -> int:
    import dataclasses

    from optarena.bench import Spec, Store, run_plan, summarize_store

    spec = Spec.from_toml(args.spec)
    if getattr(args, "coco_output", None) is not None:
        spec = dataclasses.replace(spec, coco_output=str(args.coco_output))
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
        if plan.coco_output is not None:
            from optarena.bench.coco import write_coco

            print(write_coco(store, plan.tasks, plan.coco_output), file=sys.stderr)
        if args.format != "none":
            summary = summarize_store(store, keys=plan.keys, labels=plan.labels)
            print(summary.table(args.format), end="")
            if args.format == "markdown":
                from optarena.bench.groups import group_tables

                print(group_tables(store, keys=plan.keys, targets=plan.targets or None), end="")
    return 0


def _summary_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", type=Path, help="a results file written by `optarena bench`")
    p.add_argument("--format", choices=["markdown", "csv"], default="markdown")
    p.add_argument("--problem", help="only this problem")
    p.add_argument("--spec", help="only runs of this spec (its name)")
    p.add_argument("--out", type=Path, help="write the table to this file instead of stdout")
    p.add_argument(
        "--targets",
        metavar="T1,T2,...",
        help="bbob runs: precisions on f - f_opt counted as solved (default 1e-1,1e-3,1e-8)",
    )


def _targets(text: str | None) -> list[float] | None:
    """``--targets 1e-1,1e-3``: positive precisions."""
    if text is None:
        return None
    try:
        vals = [float(t) for t in text.split(",")]
    except ValueError:
        vals = []
    if not vals or not all(0 < v < float("inf") for v in vals):
        raise ValueError(f"--targets takes positive numbers such as 1e-1,1e-3,1e-8, got {text!r}")
    return vals


def _summary_run(args: argparse.Namespace) -> int:
    from optarena.bench import Store, summarize_store
    from optarena.bench.groups import group_tables

    targets = _targets(getattr(args, "targets", None))
    with Store(args.store, create=False) as store:
        where = {k: v for k, v in (("problem", args.problem), ("spec", args.spec)) if v}
        keys = [r["key"] for r in store.runs(**where)] if where else None
        if keys is not None and not keys:
            raise ValueError(f"no runs match {where} in {args.store}")
        text = summarize_store(store, keys=keys).table(args.format)
        if args.format == "markdown":
            text += group_tables(store, keys=keys, targets=targets)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


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


BENCH = Command(
    "bench",
    "run a spec (problems x methods x seeds) into a results store",
    _bench_configure,
    _bench_run,
)
SUMMARY = Command("summary", "summary table of a results store", _summary_configure, _summary_run)
REPORT = Command(
    "report",
    "a self-contained HTML page (table and pictures) of a results store",
    _report_configure,
    _report_run,
)
DEMO = Command(
    "demo",
    "the fair mlp_identity comparison: every method, equal budgets, 5 seeds",
    _demo_configure,
    _demo_run,
)
