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

    [study.options]                    # the method's options
    n_startup = 8

An inline space is the serial form of :mod:`optarena.space.serial` (``{version = 1, params =
{...}}``) or just its ``params`` table.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..space import Space
from .result import Study
from .runner import optimize
from .trial import ImportedObjective

__all__ = ["load_spec", "run_spec"]

_KEYS = {"name", "objective", "path", "space", "method", "n_trials", "in_flight", "dask",
         "store", "seed", "pruner", "options"}  # fmt: skip


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
        **dict(table.get("options", {})),
    }


def run_spec(path: str | Path, **overrides: Any) -> Study:
    """Run (or resume) the study a spec file describes; ``overrides`` replace its values
    (``store=``, ``n_trials=``, ``executor=``...)."""
    kwargs = {**load_spec(path), **{k: v for k, v in overrides.items() if v is not None}}
    return optimize(**kwargs)
