"""Hyperparameter benchmarks: optarena on search spaces beside Optuna, cmaes and nevergrad.

Two tasks, every optimizer run by this script on the same machine, median over seeds:

- ``mixed``: the space problems ``mixed_integer`` and ``mixed_categorical``
  (:mod:`optarena.problems.mixed`, optimum 0 exactly) at 100 / 300 / 1,000 evaluations:
  the median best f and how many runs ended with every integer and categorical at the
  optimum ("solved": the best configuration's discrete part is exact).
- ``digits``: the MLP task of ``benchmarks/hpo_task.py`` at 50 / 100 trials: the median best
  validation cross-entropy.

optarena's methods (every gradient-free population or global method on ``space=``, plus
``auto``) are given each budget as their own run (their behaviour depends on it), as is
nevergrad's NGOpt (it chooses its algorithm from the budget). Optuna's samplers, cmaes'
CatCMAwM and random sampling do not know the budget: one run of the largest budget is read
at each smaller one. A peer that is not installed is skipped with a message.

    python benchmarks/hpo.py                          # mixed, 3 seeds (minutes; TPE is slowest)
    python benchmarks/hpo.py --task digits --seeds 2 --prefix --only "optarena cmaes" TPE
    python benchmarks/hpo.py --task all --seeds 10    # the full run of the issue (hours)

A digits trial takes 0.1-2 s on one core (batch size 16 is the slow end), so every runner
at 10 seeds is about 10,000 trials; ``--only`` picks runners by a part of their label and
``--prefix`` reads 50 trials off the 100-trial runs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import optarena as oa
from optarena.problems import space_problem
from optarena.space import Choice, Int, Real, Space

Trace = list[tuple[float, dict[str, Any]]]  # (value, configuration) per evaluation, in order
Fn = Callable[[dict[str, Any]], float]
# optarena's methods on spaces; the space-specific ones join when they are registered
OPTARENA = ["cmaes", "random_search", "pso", "differential_evolution", "auto"] + [
    m for m in ("tpe", "catcma") if m in {i.name for i in oa.methods()}
]


def _finite(v: float) -> float:
    return v if math.isfinite(v) else math.inf


def native(space: Space, raw: Mapping[str, Any]) -> dict[str, Any]:
    """A peer's configuration with the space's own Python types (int, float, the options)."""
    out: dict[str, Any] = {}
    for name, p in space.params.items():
        v = raw[name]
        if isinstance(p, Real):
            out[name] = min(max(float(v), p.lo), p.hi)
        elif isinstance(p, Int):
            out[name] = int(min(max(round(float(v)), p.lo), p.hi))
        elif isinstance(p, Choice):
            out[name] = next(o for o in p.options if o == v)
        else:
            out[name] = p.value
    return out


# -- optarena ---------------------------------------------------------------------------------
def run_optarena(method: str, fn: Fn, space: Space, budget: int, seed: int) -> Trace:
    """One optarena run on ``space``: the History as a trace of (value, configuration)."""
    res = oa.minimize(fn, space=space, method=method, budget=budget, seed=seed)
    return [(_finite(float(f)), c) for f, c in zip(res.history.f, res.configs(), strict=True)]


# -- peers --------------------------------------------------------------------------------------
def _optuna_sampler(kind: str, seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if kind == "tpe_independent":
        return optuna.samplers.TPESampler(seed=seed, multivariate=False)
    if kind == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.RandomSampler(seed=seed)


def run_optuna(kind: str, fn: Fn, space: Space, budget: int, seed: int) -> Trace:
    """``budget`` trials of an Optuna sampler (``tpe``, ``tpe_independent``, ``cmaes``,
    ``random``) on ``space`` written with Optuna's suggest calls."""
    import optuna

    trace: Trace = []

    def objective(trial: Any) -> float:
        raw = {}
        for name, p in space.params.items():
            if isinstance(p, Real):
                raw[name] = trial.suggest_float(name, p.lo, p.hi, log=p.log)
            elif isinstance(p, Int):
                raw[name] = trial.suggest_int(name, p.lo, p.hi, log=p.log)
            elif isinstance(p, Choice):
                raw[name] = trial.suggest_categorical(name, list(p.options))
        config = native(space, raw)
        v = _finite(fn(config))
        trace.append((v, config))
        return v if math.isfinite(v) else 1e300

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=_optuna_sampler(kind, seed))
        study.optimize(objective, n_trials=budget)
    return trace


def run_catcma(fn: Fn, space: Space, budget: int, seed: int) -> Trace:
    """cmaes' CatCMAwM: reals (log10 where log), integers with the margin, categoricals."""
    from cmaes import CatCMAwM

    xs, zs, cs = [], [], []
    for name, p in space.params.items():
        if isinstance(p, Real):
            lo, hi = (math.log10(p.lo), math.log10(p.hi)) if p.log else (p.lo, p.hi)
            xs.append((name, p, [lo, hi]))
        elif isinstance(p, Int):
            ks = np.arange(p.lo, p.hi + 1)
            zs.append((name, p, ks, np.log10(ks) if p.log else ks.astype(float)))
        elif isinstance(p, Choice):
            cs.append((name, p))
    opt = CatCMAwM(
        x_space=[b for _, _, b in xs] or None,
        z_space=[list(v) for *_, v in zs] or None,
        c_space=[len(p.options) for _, p in cs] or None,
        seed=seed,
    )
    trace: Trace = []
    while len(trace) < budget:
        told = []
        for _ in range(opt.population_size):
            sol = opt.ask()
            raw: dict[str, Any] = {}
            for i, (name, p, _) in enumerate(xs):
                raw[name] = 10.0 ** sol.x[i] if p.log else sol.x[i]
            for i, (name, _, ks, vals) in enumerate(zs):
                raw[name] = int(ks[int(np.argmin(np.abs(vals - sol.z[i])))])
            for i, (name, p) in enumerate(cs):
                raw[name] = p.options[int(np.argmax(sol.c[i][: len(p.options)]))]
            config = native(space, raw)
            v = _finite(fn(config))
            if len(trace) < budget:
                trace.append((v, config))
            told.append((sol, v if math.isfinite(v) else 1e300))
        opt.tell(told)
    return trace


def run_ngopt(fn: Fn, space: Space, budget: int, seed: int) -> Trace:
    """nevergrad's NGOpt on ``space`` written as an ``ng.p.Dict``."""
    import nevergrad as ng

    items = {}
    for name, p in space.params.items():
        if isinstance(p, Real | Int):
            kind = ng.p.Log if p.log else ng.p.Scalar
            par = kind(lower=p.lo, upper=p.hi)
            items[name] = par.set_integer_casting() if isinstance(p, Int) else par
        elif isinstance(p, Choice):
            items[name] = ng.p.Choice(list(p.options))
    param = ng.p.Dict(**items)
    param.random_state = np.random.RandomState(seed)
    opt = ng.optimizers.NGOpt(parametrization=param, budget=budget, num_workers=1)
    trace: Trace = []
    for _ in range(budget):
        cand = opt.ask()
        config = native(space, cand.value)
        v = _finite(fn(config))
        trace.append((v, config))
        opt.tell(cand, v if math.isfinite(v) else 1e300)
    return trace


PEERS: dict[str, tuple[str, Callable[..., Trace], bool]] = {
    # name: (module it needs, runner(fn, space, budget, seed), budget-aware)
    "optuna TPE (default)": ("optuna", lambda *a: run_optuna("tpe", *a), False),
    "optuna TPE independent": ("optuna", lambda *a: run_optuna("tpe_independent", *a), False),
    "optuna CmaEsSampler": ("optuna", lambda *a: run_optuna("cmaes", *a), False),
    "cmaes CatCMAwM": ("cmaes", run_catcma, False),
    "nevergrad NGOpt": ("nevergrad", run_ngopt, True),
    "random (optuna)": ("optuna", lambda *a: run_optuna("random", *a), False),
}


def runners(only: list[str] | None) -> dict[str, tuple[Callable[..., Trace], bool]]:
    """Every runner to compare, by label: optarena methods, then the installed peers."""
    out: dict[str, tuple[Callable[..., Trace], bool]] = {}
    for m in OPTARENA:
        out[f"optarena {m}"] = (lambda *a, m=m: run_optarena(m, *a), True)
    for label, (module, fn, aware) in PEERS.items():
        try:
            __import__(module)
        except ImportError:
            print(f"skipped {label}: {module} is not installed", file=sys.stderr)
            continue
        out[label] = (fn, aware)
    if only:
        out = {k: v for k, v in out.items() if any(o in k for o in only)}
    return out


# -- measuring ----------------------------------------------------------------------------------
def measure(
    fn: Fn,
    space: Space,
    budgets: list[int],
    seeds: int,
    only: list[str] | None,
    log: str,
    prefix: bool = False,
) -> dict[str, dict[int, list[tuple[float, dict[str, Any]]]]]:
    """Best (value, configuration) of every runner at every budget, one entry per seed;
    ``prefix``: every runner is read off its run of the largest budget."""
    out: dict[str, dict[int, list[tuple[float, dict[str, Any]]]]] = {}
    for label, (run, aware) in runners(only).items():
        aware = aware and not prefix
        out[label] = {b: [] for b in budgets}
        t = time.perf_counter()
        for seed in range(seeds):
            traces = {b: run(fn, space, b, seed) for b in budgets} if aware else {}
            if not aware:
                full = run(fn, space, max(budgets), seed)
                traces = {b: full[:b] for b in budgets}
            for b, tr in traces.items():
                assert len(tr) == b, f"{label} spent {len(tr)} evaluations of {b}"
                out[label][b].append(min(tr, key=lambda vc: vc[0]))
            bests = ", ".join(f"{b}: {out[label][b][-1][0]:.4g}" for b in budgets)
            print(f"    [{log}] {label} seed {seed}: best {bests}", file=sys.stderr, flush=True)
        meds = ", ".join(
            f"{b}: {statistics.median(v for v, _ in out[label][b]):.4g}" for b in budgets
        )
        secs = time.perf_counter() - t
        print(f"  [{log}] {label}: median best {meds} ({secs:.1f} s)", file=sys.stderr, flush=True)
    return out


def table(title: str, results: dict, budgets: list[int], solved: Callable | None) -> str:
    """A markdown table: median best value per budget (and solved runs when given)."""
    head = f"| {title} | " + " | ".join(str(b) for b in budgets) + " |"
    lines = [head, "|" + "---|" * (len(budgets) + 1)]
    for label, per in results.items():
        cells = []
        for b in budgets:
            vals = [v for v, _ in per[b]]
            cell = f"{statistics.median(vals):.4g}"
            if solved is not None:
                cell += f" ({sum(solved(c) for _, c in per[b])}/{len(vals)})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["mixed", "digits", "all"], default="mixed")
    parser.add_argument("--seeds", type=int, default=3, help="runs per optimizer (issue: 10)")
    parser.add_argument("--mixed-budgets", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--digits-budgets", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--only", nargs="+", help="run only the optimizers whose label has one")
    parser.add_argument(
        "--prefix",
        action="store_true",
        help="read every budget off one run of the largest (budget-aware methods too)",
    )
    parser.add_argument("--out", type=Path, help="write the best values as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dump: dict[str, Any] = {}
    if args.task in ("mixed", "all"):
        for name in ["mixed_integer", "mixed_categorical"]:
            p = space_problem(name)
            res = measure(p, p.space, args.mixed_budgets, args.seeds, args.only, name, args.prefix)
            print(f"\n{name}: median best f over {args.seeds} seeds (runs solved: every "
                  "integer and categorical at the optimum), f* = 0\n")  # fmt: skip
            print(table(name, res, args.mixed_budgets, p.solved), flush=True)
            dump[name] = {k: {b: [v for v, _ in r] for b, r in v.items()} for k, v in res.items()}
    if args.task in ("digits", "all"):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import hpo_task

        hpo_task.split()
        res = measure(
            hpo_task.validation_loss, hpo_task.SPACE, args.digits_budgets, args.seeds,
            args.only, "digits", args.prefix,
        )  # fmt: skip
        best = min(v for per in res.values() for r in per.values() for v, _ in r)
        print(f"\ndigits: median best validation loss over {args.seeds} seeds "
              f"(best of all runs {best:.4f})\n")  # fmt: skip
        print(table("digits", res, args.digits_budgets, None), flush=True)
        dump["digits"] = {k: {b: [v for v, _ in r] for b, r in v.items()} for k, v in res.items()}
    if args.out:
        args.out.write_text(json.dumps(dump, indent=1))


if __name__ == "__main__":
    main()
