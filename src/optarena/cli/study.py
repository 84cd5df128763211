"""``optarena study SPEC.toml``: run or resume the study a spec file describes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .command import Command

__all__ = ["STUDY"]


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", type=Path, help="a TOML file with a [study] table")
    p.add_argument("--store", type=Path, help="the SQLite store (default: the spec's `store`)")
    p.add_argument("--n-trials", type=int, help="trials in all (default: the spec's n_trials)")
    p.add_argument("--dask", help="'local:N' or a scheduler address (default: the spec's)")
    p.add_argument("--top", type=int, default=5, help="print the best N trials (default 5)")


def _run(args: argparse.Namespace) -> int:
    from optarena.study import TrialError
    from optarena.study.spec import run_spec

    try:
        study = run_spec(args.spec, store=args.store, n_trials=args.n_trials, executor=args.dask)
    except TrialError as e:  # the study so far, then the objective's own traceback
        if getattr(args, "traceback", False) or e.study is None:
            raise
        print(e.study)
        tb = e.study.traceback(e.number)
        print(f"{tb or ''}optarena: error: {e}", file=sys.stderr)
        print("(a spec's `catch` key lists the exceptions to store and go on)", file=sys.stderr)
        return 1
    print(study)
    frame = study.trials
    best = frame[frame.status == "complete"].sort_values(["value", "number"]).head(args.top)
    if len(best):
        print(best.drop(columns=["study", "started", "finished", "error"]).to_string(index=False))
    return 0


STUDY = Command(
    "study",
    "run or resume a study (trials of an expensive objective, stored, prunable) from a spec",
    _configure,
    _run,
)
