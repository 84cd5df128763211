"""What to write instead of the option names other libraries use (scipy, torch, Optuna).

An unknown method option is refused with the method's own options; when the name is one a
user brings from another library (``options=``, ``maxiter=``, ``jac=``, ``tol=``,
``direction=``...), the refusal also says how optarena spells it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["habit_hints"]

_BUDGET = "the run's limit is budget=N (evaluations) or budget=Budget(evals=, seconds=, target=)"
_HINTS: dict[str, str] = {
    "options": (
        "scipy's options={...} dict: pass the method's options as keywords, e.g. "
        "minimize(f, x0, 'nelder_mead', xatol=1e-8), and its iteration limit as budget=N "
        "(evaluations)"
    ),
    "maxiter": _BUDGET,
    "maxfev": _BUDGET,
    "maxfun": _BUDGET,
    "max_nfev": _BUDGET,
    "max_evals": _BUDGET,
    "n_iter": _BUDGET,
    "niter": _BUDGET,
    "iterations": _BUDGET,
    "n_trials": _BUDGET,
    "tol": (
        "scipy's tol= means something different to each method: use the tolerance options "
        "listed for this method, or budget=Budget(target=value) to stop at a value"
    ),
    "jac": (
        "gradients come from autograd: write f with torch operations and gradient methods use "
        "its exact gradient; a numpy function brings its own as "
        "Objective.from_numpy(f, jac=grad) (jac=True when f returns (value, gradient)), or "
        "gets forward differences with Objective.from_numpy(f, gradient='fd')"
    ),
    "hess": "no Hessian is taken: the quasi-Newton methods (bfgs, lbfgs) build their own",
    "args": (
        "extra arguments of f: bind them, minimize(functools.partial(f, a, b), x0, ...) or "
        "minimize(lambda x: f(x, a, b), x0, ...)"
    ),
    "kwargs": "extra arguments of f: bind them with functools.partial or a lambda",
    "gradient": (
        "gradient= belongs to the objective: Objective(f, gradient='fd') for a torch function, "
        "Objective.from_numpy(f, gradient='fd') for a numpy one"
    ),
    "direction": "optarena minimizes: to maximize f, minimize -f (lambda x: -f(x))",
    "maximize": "optarena minimizes: to maximize f, minimize -f (lambda x: -f(x))",
    "n_jobs": "parallel evaluation: executor= (a concurrent.futures Executor or a Dask Client)",
    "workers": "parallel evaluation: executor= (a concurrent.futures Executor or a Dask Client)",
    "timeout": "a time limit: budget=Budget(seconds=...)",
    "max_time": "a time limit: budget=Budget(seconds=...)",
    "random_state": "the run's seed is seed=",
    "rng": "the run's seed is seed=",
    "verbose": "progress=True shows a progress bar; callback= sees every iteration",
    "disp": "progress=True shows a progress bar; callback= sees every iteration",
    "show_progress_bar": "progress=True shows a progress bar",
}


def habit_hints(unknown: Iterable[str]) -> str:
    """The advice for the unknown option names that other libraries use ("" if none)."""
    found = [f"{name}: {_HINTS[name]}" for name in unknown if name in _HINTS]
    return "" if not found else ". " + "; ".join(found)
