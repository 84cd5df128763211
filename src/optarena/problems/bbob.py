"""COCO's bbob suite (24 noiseless black-box functions) as optarena problems, through cocoex.

``get("bbob", function=f, instance=i, dim=d)`` is the bbob function ``f`` (1-24), instance
``i``, in ``d`` dimensions, evaluated by coco-experiment's C code (``pip install
'optarena[bbob]'``). The problem follows COCO's fixed-budget protocol: the box is
[-5, 5]^d, the start point is drawn uniformly in [-4, 4]^d from ``x0_seed`` (reproducible,
and different for every function, instance and dimension), ``f_opt`` is the instance's
optimal value, so ``f - f_opt`` is the measure that targets such as 1e-8 refer to. The
functions are black boxes: ``differentiable=False``, gradient methods refuse them.

cocoex is imported when a problem is built, never when optarena is imported, and the problem
is registered only when cocoex is installed (the registry names the extra otherwise).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import torch

from ._base import Problem, register_problem, register_unavailable

__all__ = ["FUNCTIONS", "GROUPS", "BBOBFunction", "bbob", "group_of", "start_point"]

#: The 24 bbob functions by number.
FUNCTIONS: dict[int, str] = {
    1: "sphere",
    2: "separable ellipsoid",
    3: "separable Rastrigin",
    4: "Bueche-Rastrigin",
    5: "linear slope",
    6: "attractive sector",
    7: "step ellipsoid",
    8: "Rosenbrock, original",
    9: "Rosenbrock, rotated",
    10: "ellipsoid",
    11: "discus",
    12: "bent cigar",
    13: "sharp ridge",
    14: "different powers",
    15: "Rastrigin",
    16: "Weierstrass",
    17: "Schaffers F7",
    18: "Schaffers F7, moderately ill-conditioned",
    19: "composite Griewank-Rosenbrock F8F2",
    20: "Schwefel x sin(x)",
    21: "Gallagher 101 peaks",
    22: "Gallagher 21 peaks",
    23: "Katsuura",
    24: "Lunacek bi-Rastrigin",
}

#: COCO's five function groups (the rows of its per-group ECDFs).
GROUPS: dict[str, tuple[int, ...]] = {
    "separable": (1, 2, 3, 4, 5),
    "low or moderate conditioning": (6, 7, 8, 9),
    "high conditioning, unimodal": (10, 11, 12, 13, 14),
    "multimodal, adequate global structure": (15, 16, 17, 18, 19),
    "multimodal, weak global structure": (20, 21, 22, 23, 24),
}

BOX = 5.0  # the search box is [-BOX, BOX]^d
START_BOX = 4.0  # start points are drawn uniformly in [-START_BOX, START_BOX]^d
_F64 = np.dtype(np.float64)


def group_of(function: int) -> str:
    """The name of the COCO function group of bbob function ``function`` (1-24)."""
    for name, members in GROUPS.items():
        if function in members:
            return name
    raise ValueError(f"function must be an int in 1..24, got {function!r}")


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        span = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {span}, got {value}")
    return value


def start_point(function: int, instance: int, dim: int, x0_seed: int = 0) -> np.ndarray:
    """The protocol's start point: uniform in [-4, 4]^dim, from a seed sequence made of
    ``x0_seed`` and the problem's numbers (so each problem has its own, reproducibly)."""
    rng = np.random.default_rng([x0_seed, function, instance, dim])
    return rng.uniform(-START_BOX, START_BOX, size=dim)


class BBOBFunction:
    """One bbob function instance, callable on a point (``(d,)`` -> scalar) or, through
    :meth:`batched`, on a population (``(n, d)`` -> ``(n,)``).

    :meth:`array_value` and :meth:`array_values` are the same function on float64 numpy
    arrays: the Problem's objective evaluates through them, so a point goes from the solver
    to the C function without a tensor (one evaluation costs about what the C call costs).
    The cocoex object is built on first use and dropped when pickled, so the function can
    be sent to worker processes. Shapes are checked here: cocoex reads ``d`` doubles from
    whatever it is given.
    """

    def __init__(self, function: int, instance: int, dim: int) -> None:
        self.function, self.instance, self.dim = function, instance, dim
        self._shape = (dim,)
        self._bare: Any = None

    @property
    def bare(self) -> Any:
        """The underlying ``cocoex.BareProblem`` (built on first use)."""
        if self._bare is None:
            from cocoex import BareProblem  # the optional dependency, imported when used

            self._bare = BareProblem("bbob", self.function, self.dim, self.instance)
        return self._bare

    def __getstate__(self) -> dict[str, Any]:
        return {"function": self.function, "instance": self.instance, "dim": self.dim}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["function"], state["instance"], state["dim"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"BBOBFunction(function={self.function}, instance={self.instance}, dim={self.dim})"

    @staticmethod
    def _as_array(x: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(x.detach().to("cpu", torch.float64).numpy())

    @staticmethod
    def _out_dtype(x: torch.Tensor) -> torch.dtype:
        return x.dtype if x.is_floating_point() else torch.float64

    def array_value(self, x: np.ndarray) -> float:
        """f at one point given as ``d`` values (an array of any shape or layout holding them,
        converted to the C-contiguous, writeable float64 buffer cocoex reads)."""
        if type(x) is not np.ndarray or x.dtype is not _F64 or x.shape != self._shape:
            x = np.asarray(x, dtype=np.float64)
            if x.size != self.dim:
                raise ValueError(f"{self!r} takes {self.dim} values, got shape {x.shape}")
            x = x.reshape(self.dim)
        if not x.flags.carray:  # cocoex takes C-contiguous, aligned, writeable buffers only
            x = np.array(x, order="C")
        return float(self.bare(x))

    def array_values(self, X: np.ndarray) -> np.ndarray:
        """f at each row of a numpy array of shape ``(n, d)``, as ``(n,)`` float64 values."""
        X = np.require(X, _F64, ["C", "A", "W"])
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ValueError(f"{self!r} takes rows of {self.dim} values, got {X.shape}")
        if X.shape[0] == 0:
            return np.empty(0)
        return np.asarray(self.bare(X), dtype=np.float64).reshape(X.shape[0])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() != self.dim:
            raise ValueError(f"{self!r} takes {self.dim} values, got shape {tuple(x.shape)}")
        y = self.array_value(self._as_array(x).reshape(self.dim))
        return torch.tensor(y, dtype=self._out_dtype(x), device=x.device)

    def batched(self, X: torch.Tensor) -> torch.Tensor:
        """Values of the rows of ``X`` (shape ``(n, d)``), one C call per row."""
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ValueError(f"{self!r} takes rows of {self.dim} values, got {tuple(X.shape)}")
        y = self.array_values(self._as_array(X))
        return torch.from_numpy(y).to(self._out_dtype(X)).to(X.device)


def bbob(function: int = 1, instance: int = 1, dim: int = 2, x0_seed: int = 0) -> Problem:
    """bbob function ``function`` (1-24), ``instance`` (COCO's benchmarks use 1-15), in ``dim``
    dimensions; box [-5, 5]^dim, x0 uniform in [-4, 4]^dim from ``x0_seed``."""
    function = _check_int("function", function, 1, 24)
    instance = _check_int("instance", instance, 1)
    dim = _check_int("dim", dim, 1)
    x0_seed = _check_int("x0_seed", x0_seed, 0)
    fn = BBOBFunction(function, instance, dim)
    f_opt = float(fn.bare.best_value())
    best = fn.bare.best_parameter()
    x_opt = None if best is None else torch.as_tensor(np.array(best), dtype=torch.float64)
    lo = torch.full((dim,), -BOX, dtype=torch.float64)
    coco_id = f"bbob_f{function:03d}_i{instance:02d}_d{dim:02d}"
    return Problem(
        name="bbob",
        fn=fn,
        batched=fn.batched,
        x0=torch.as_tensor(start_point(function, instance, dim, x0_seed)),
        bounds=(lo, -lo),
        f_opt=f_opt,
        x_opt=x_opt,
        differentiable=False,
        params={"function": function, "instance": instance, "dim": dim, "x0_seed": x0_seed},
        description=f"COCO {coco_id}: f{function} {FUNCTIONS[function]} ({group_of(function)}), "
        f"instance {instance}, d = {dim}; f_opt = {f_opt:.10g}, targets on f - f_opt.",
    )


def _cocoex_installed() -> bool:
    try:
        return importlib.util.find_spec("cocoex") is not None
    except (ImportError, ValueError):
        return False


if _cocoex_installed():
    register_problem("bbob")(bbob)
else:
    register_unavailable("bbob", "coco-experiment (pip install 'optarena[bbob]')")
