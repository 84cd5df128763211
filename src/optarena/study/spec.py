"""A study from a TOML spec file (``optarena study SPEC.toml``)::

    [study]
    name = "mlp"                       # the study's name in the store (default: the file's stem)
    objective = "train:validation_loss"  # module:function, imported from `path`
    path = "."                         # where the module lives (default: the spec's folder)
    space = "space.json"               # a JSON file (serial format), or an inline table
    method = "tpe"
    n_trials = 40
    in_flight = 2
    dask = "local:2"                   # or a scheduler address; absent: in this process
    store = "study.sqlite"             # relative to the spec's folder
    seed = 0
    pruner = "median"                  # or {type = "successive_halving", reduction_factor = 3}
    catch = ["RuntimeError"]           # failures to store and go on (absent: the study stops)
    timeout = 3600                     # seconds: no trial is launched after that

    [study.options]                    # the method's options
    n_startup = 8

An inline space is the serial form of :mod:`optarena.space.serial` (``{version = 1, params =
{...}}``) or just its ``params`` table.
"""

from __future__ import annotations

import importlib
import json
import tomllib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..space import Space
from .result import Study
from .runner import optimize
from .trial import ImportedObjective

__all__ = ["load_spec", "run_spec"]

_KEYS = {"name", "objective", "path", "space", "method", "n_trials", "in_flight", "dask",
         "store", "seed", "pruner", "options", "catch", "timeout"}  # fmt: skip


def _catch(value: Any, path: Path) -> tuple[type[Exception], ...]:
    """``catch`` of a spec: exception class names, builtin (``"ValueError"``) or dotted
    (``"module.Error"``)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: [study] catch is a list of exception names, got {value!r}")
    out = []
    for n in names:
        module, _, attr = n.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module or "builtins"), attr)
        except (ImportError, AttributeError):
            cls = None
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise ValueError(f"{path}: [study] catch: {n!r} is not an exception class")
        out.append(cls)
    return tuple(out)


def _space(value: Any, folder: Path) -> Space:
    if isinstance(value, str):
        value = json.loads((folder / value).read_text())
    if not isinstance(value, Mapping):
        raise ValueError("[study] space is a JSON file name or an inline table")
    if "params" not in value:
        value = {"version": 1, "params": dict(value)}
    return Space.from_dict(value)


def load_spec(path: str | Path) -> dict[str, Any]:
    """The keyword arguments of :func:`optimize` that the spec file at ``path`` describes."""
    path = Path(path)
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    table = data.get("study")
    if not isinstance(table, Mapping):
        raise ValueError(f"{path}: a study spec needs a [study] table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown} in [study]; known: {sorted(_KEYS)}")
    for key in ("objective", "space", "n_trials"):
        if key not in table:
            raise ValueError(f"{path}: [study] needs {key!r}")
    folder = path.resolve().parent
    where = str((folder / table.get("path", ".")).resolve())
    store = table.get("store")
    objective = ImportedObjective(str(table["objective"]), where)
    try:
        objective.function()
    except (ImportError, AttributeError, TypeError) as e:
        raise ValueError(
            f"{path}: [study] objective {table['objective']!r} cannot be imported from {where} "
            f"(the spec's `path`): {type(e).__name__}: {e}"
        ) from e
    return {
        "objective": objective,
        "space": _space(table["space"], folder),
        "method": table.get("method", "tpe"),
        "n_trials": table["n_trials"],
        "in_flight": table.get("in_flight", 1),
        "executor": table.get("dask"),
        "store": None if store is None else folder / store,
        "name": table.get("name", path.stem),
        "pruner": table.get("pruner"),
        "seed": table.get("seed"),
        "catch": _catch(table.get("catch", []), path),
        "timeout": table.get("timeout"),
        **dict(table.get("options", {})),
    }


def run_spec(path: str | Path, **overrides: Any) -> Study:
    """Run (or resume) the study a spec file describes; ``overrides`` replace its values
    (``store=``, ``n_trials=``, ``executor=``...)."""
    kwargs = {**load_spec(path), **{k: v for k, v in overrides.items() if v is not None}}
    in_flight = kwargs.get("in_flight", 1)
    if kwargs.get("executor") is None and isinstance(in_flight, int) and in_flight > 1:
        warnings.warn(
            f"{path}: in_flight = {in_flight} without a `dask` key runs one trial at a time in "
            f'this process; add dask = "local:{in_flight}" (or a scheduler address) to [study], '
            f"or pass --dask local:{in_flight}, to run trials at once",
            UserWarning,
            stacklevel=2,
        )
        with warnings.catch_warnings():  # said above in the spec's terms
            warnings.filterwarnings("ignore", message=r"in_flight=\d+ with executor=None")
            return optimize(**kwargs)
    return optimize(**kwargs)
