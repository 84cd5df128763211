"""What :func:`~optarena.study.optimize` checks before any trial: Optuna's arguments (each
refused with what to write here), the method's options (a misspelt one named with its close
match, before the store's options are compared), ``catch`` and ``timeout``, a pruner given to
an objective that cannot report, the space's stored description, and that a resumed study
is described as stored."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
import warnings
from collections.abc import Mapping
from typing import Any

from ..ask_tell import Optimizer
from ..methods import Method, PopulationMethod, resolve_method
from ..space import Choice, Fixed, Space
from .tables import dumps

__all__ = [
    "as_catch",
    "as_timeout",
    "check_description",
    "check_options",
    "method_options",
    "method_settings",
    "popsize_of_in_flight",
    "positive",
    "space_text",
    "warn_sequential",
    "warn_unused_pruner",
]

#: Optuna's arguments of ``create_study`` / ``study.optimize`` and what to write here.
HABITS: dict[str, str] = {
    "direction": "optarena minimizes: return -score from the objective to maximize a score "
    "(direction='minimize' is accepted and changes nothing)",
    "directions": "a study has one objective: return one number (minimized)",
    "n_jobs": "trials run in parallel with in_flight=N and an executor: executor='local:N' "
    "(N worker processes), a concurrent.futures ThreadPoolExecutor(N) or ProcessPoolExecutor(N), "
    "or a distributed.Client",
    "callbacks": "a study has no callbacks: each finished trial is stored at once "
    "(optarena.study.trials_frame(store, name) reads them while the study runs); timeout= or "
    "Ctrl-C ends the study and returns it, and the same call resumes it",
    "show_progress_bar": "a study prints no progress bar: optarena.study.trials_frame(store, "
    "name) reads the finished trials while it runs",
    "sampler": "the sampler is method= ('tpe', 'cmaes', 'random_search', ...; its options as "
    "keywords, e.g. n_startup=10)",
    "storage": "the storage is store= (a path to an SQLite file, or a Store)",
    "study_name": "the study's name is name=",
    "load_if_exists": "a stored study always resumes: call again with the same store and name",
    "gc_after_trial": "not needed: run trials in worker processes (executor='local:N') to keep "
    "each trial's memory apart",
}


def _refuse_habits(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` without ``direction='minimize'``; an Optuna argument is refused with what
    to write instead."""
    opts = dict(options)
    if opts.get("direction") == "minimize":
        del opts["direction"]
    for key in opts:
        if key in HABITS:
            raise TypeError(f"optimize() takes no {key}= (an Optuna argument): {HABITS[key]}")
    return opts


def check_options(method: str | Method, options: Mapping[str, Any]) -> dict[str, Any]:
    """The method's options, checked before the store is read: Optuna's arguments get their
    optarena form, an unknown option is named with its close match."""
    opts = _refuse_habits(options)
    if not isinstance(method, str):
        return opts
    own = set(inspect.signature(Optimizer).parameters)  # noisy=, budget=...: the Optimizer's
    try:
        resolve_method(method, {k: v for k, v in opts.items() if k not in own})
    except TypeError:
        meth = resolve_method(method, {})
        known = [f.name for f in dataclasses.fields(meth) if f.init] if dataclasses.is_dataclass(
            meth) else []  # fmt: skip
        unknown = [k for k in opts if k not in known and k not in own]
        if not unknown or not known:
            raise
        near = {k: difflib.get_close_matches(k, known, n=1, cutoff=0.6) for k in unknown}
        hints = [f"{k!r} (did you mean {m[0]!r}?)" for k, m in near.items() if m]
        others = [repr(k) for k, m in near.items() if not m]
        raise TypeError(
            f"unknown option(s) {', '.join(hints + others)}: neither optimize() nor method "
            f"{method!r} takes them; the method's options are {sorted(known)}"
        ) from None
    return opts


def positive(name: str, value: Any) -> int:
    """``value`` if it is an int >= 1, else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def as_catch(catch: Any) -> tuple[type[BaseException], ...]:
    """``catch`` as a tuple of exception classes (one class, or a tuple or list of them)."""
    items = (catch,) if isinstance(catch, type) else catch
    ok = isinstance(items, tuple | list) and all(
        isinstance(c, type) and issubclass(c, Exception) for c in items
    )
    if not ok:
        raise TypeError(
            "catch must be an exception class or a tuple of them, e.g. catch=(Exception,) to "
            f"store every failing trial and go on, got {catch!r}"
        )
    return tuple(items)


def as_timeout(timeout: Any) -> float | None:
    """``timeout`` in seconds (a positive number) or None."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
    if not math.isfinite(timeout):
        return None
    return float(timeout)


def warn_unused_pruner(pruner: Any, with_trial: bool) -> None:
    """A pruner decides on ``trial.report``: an objective of one parameter never reports."""
    if pruner is not None and not with_trial:
        warnings.warn(
            f"the pruner {pruner!r} never prunes: the objective takes only the configuration, "
            "so it cannot report; declare def objective(config, trial) and call "
            "trial.report(step, value)",
            UserWarning,
            stacklevel=3,
        )


def space_text(space: Space, stored: bool) -> str:
    """The space as the studies table holds it: its JSON form. A study kept in memory
    (``store=None``) may have options JSON cannot hold (classes, tuples): they are written as
    their repr (the trials table shows them so; the configurations are the objects)."""
    if stored:
        return space.to_json()
    try:
        return space.to_json()
    except TypeError:
        return json.dumps({"version": 1, "params": _lenient_params(space)})


def _lenient(value: Any) -> Any:
    try:
        if json.loads(json.dumps(value)) == value:
            return value
    except (TypeError, ValueError):
        pass
    return repr(value)


def _lenient_params(space: Space) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, p in space.params.items():
        if isinstance(p, Fixed):
            out[name] = {"type": "fixed", "value": _lenient(p.value)}
        elif isinstance(p, Choice):
            d: dict[str, Any] = {"type": "choice", "options": [_lenient(o) for o in p.options],
                                 "ordered": p.ordered}  # fmt: skip
            if p.branches is not None:
                d["branches"] = [_lenient_params(b) for b in p.branches]
            out[name] = d
        else:
            out[name] = {"type": type(p).__name__.lower(), "lo": p.lo, "hi": p.hi, "log": p.log}
    return out


def method_options(
    method: str | Method, options: Mapping[str, Any], in_flight: int
) -> dict[str, Any]:
    """The method's options, with ``popsize=in_flight`` when the method declares an int
    ``popsize`` smaller than ``in_flight`` and the caller did not set it: a generation must
    hold ``in_flight`` candidates for that many trials to run at once. A method that proposes
    candidates beside pending ones (``ask_more``: tpe) needs no such change."""
    opts = dict(options)
    if isinstance(method, Method) or "popsize" in opts or in_flight == 1:
        return opts
    meth = resolve_method(method, {})
    if isinstance(meth, PopulationMethod) and meth.has_ask_more():
        return opts
    default = getattr(meth, "popsize", None)
    if isinstance(default, int) and not isinstance(default, bool) and default < in_flight:
        opts["popsize"] = in_flight
    return opts


def popsize_of_in_flight(stored: str, given: Mapping[str, Any], opts: Mapping[str, Any]) -> bool:
    """True when the stored options differ from ``opts`` only by the ``popsize`` that
    ``in_flight`` chose (the caller set no popsize): the stored one is then kept."""
    old = json.loads(stored)
    if "popsize" in given or not isinstance(old, dict):
        return False
    rest = {k: v for k, v in old.items() if k != "popsize"}
    return json.loads(dumps({k: v for k, v in opts.items() if k != "popsize"})) == rest


def method_settings(method: Method) -> dict[str, Any]:
    """A method instance's settings (its init fields), to compare on resume."""
    return {f.name: getattr(method, f.name) for f in dataclasses.fields(method) if f.init}


def check_description(row: Mapping[str, Any], mine: Mapping[str, Any], name: str) -> None:
    """Refuse to resume a study with another space, method, options, seed or pruner (the
    stored trials were pruned by the stored one: a study keeps one rule)."""
    for key in ("space", "method", "options", "seed", "pruner"):
        if key == "seed" and mine["seed"] is None:
            continue
        if key == "space" and Space.from_json(row[key]) == Space.from_json(mine[key]):
            continue
        if row[key] != mine[key]:
            raise ValueError(
                f"study {name!r} is stored with {key} {row[key]}, not {mine[key]}: resume it "
                f"with the same space, method, options, seed and pruner, or pick another name"
            )


def warn_sequential(in_flight: int, executor: Any) -> None:
    """Without an executor trials run one at a time in this process: ``in_flight > 1`` then
    only delays what the method learns (it proposes before the trials out are told)."""
    if in_flight > 1 and executor is None:
        warnings.warn(
            f"in_flight={in_flight} with executor=None runs one trial at a time in this process; "
            "pass executor= (a concurrent.futures Executor, a distributed.Client or "
            "'local:N') to run trials at once, or in_flight=1",
            UserWarning,
            stacklevel=3,
        )
