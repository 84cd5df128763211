"""scipy's constraint forms, read exactly as scipy reads them, as optarena's Ineq / Eq.

- ``LinearConstraint(A, lb, ub)``: ``lb <= A x <= ub``. Rows with ``lb == ub`` become one
  :class:`Eq` (``A x - lb == 0``); the finite sides of the others one :class:`Ineq`
  (``A x - lb >= 0`` and ``ub - A x >= 0``); a row with both sides infinite constrains nothing.
  The result is a torch function, so autograd, vmap and every constrained method work as with
  ``optarena.linear``.
- ``NonlinearConstraint(fun, lb, ub, jac=...)``: the same split, with ``fun`` a numpy function
  called on float64 arrays (a fresh copy each time). Its Jacobian is ``jac`` when callable, else
  finite differences (``"2-point"``, ``"3-point"`` or ``"cs"``, scipy's relative steps, or
  ``finite_diff_rel_step``). ``hess`` is not used: no optarena method takes constraint Hessians.
- ``{"type": "ineq" | "eq", "fun": f, "jac": j, "args": (...)}``: ``f(x, *args) >= 0`` or
  ``== 0``, numpy as above; without ``jac``, forward differences.

The numpy forms are not torch-differentiable, but every constrained method (slsqp,
trust_constr, cobyla, penalty, augmented_lagrangian, auto) reaches constraint Jacobians only
through ``Constraint.jac``, so all of them work. ``keep_feasible=True`` is refused: optarena's
methods may evaluate points outside a general constraint (the best point is still ranked
feasible-first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.optimize as so
import torch

from .constraints import Constraint, Eq, Ineq

__all__ = ["from_scipy", "is_scipy_form"]

_EPS = float(np.finfo(np.float64).eps)
_REL_STEP = {"2-point": _EPS**0.5, "3-point": _EPS ** (1 / 3), "cs": _EPS**0.5}


def is_scipy_form(c: Any) -> bool:
    """True for the constraint forms of scipy.optimize (objects or the dict form)."""
    return isinstance(c, so.LinearConstraint | so.NonlinearConstraint | Mapping)


def from_scipy(c: Any) -> tuple[Constraint, ...]:
    """optarena constraints meaning exactly what the scipy constraint ``c`` means."""
    if isinstance(c, so.LinearConstraint):
        return _linear(c)
    if isinstance(c, so.NonlinearConstraint):
        return _nonlinear(c)
    if isinstance(c, Mapping):
        return _from_dict(c)
    raise TypeError(f"not a scipy constraint form: {c!r}")


# -- lb <= g(x) <= ub, split into equality rows and finite one-sided rows --------------------
Segment = tuple[np.ndarray, float, np.ndarray]  # rows, sign, offset: sign * (g[rows] - offset)


def _sides(lb: Any, ub: Any, m: int | None, what: str) -> tuple[list[Segment], list[Segment]]:
    """The equality and inequality segments of ``lb <= g <= ub`` for g of length ``m``
    (``None``: unknown, then lb and ub must be scalars and every row is alike)."""
    lo = np.atleast_1d(np.asarray(lb, dtype=np.float64)).reshape(-1)
    hi = np.atleast_1d(np.asarray(ub, dtype=np.float64)).reshape(-1)
    n = m if m is not None else max(lo.size, hi.size)
    try:
        lo, hi = np.broadcast_to(lo, (n,)), np.broadcast_to(hi, (n,))
    except ValueError as e:
        raise ValueError(
            f"{what}: lb has {lo.size} and ub {hi.size} entries; each must be a scalar or "
            f"have one entry per constraint value ({n})"
        ) from e
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError(f"{what}: lb/ub contain NaN; use -inf/inf for an open side")
    if (lo > hi).any():
        i = int(np.flatnonzero(lo > hi)[0])
        raise ValueError(f"{what}: lb > ub at row {i} ({lo[i]} > {hi[i]}): no point satisfies it")
    eq = (lo == hi) & np.isfinite(lo)
    lower = np.flatnonzero(np.isfinite(lo) & ~eq)
    upper = np.flatnonzero(np.isfinite(hi) & ~eq)
    eqs = [(np.flatnonzero(eq), 1.0, lo[eq])] if eq.any() else []
    ineqs = [(lower, 1.0, lo[lower])] if lower.size else []
    if upper.size:
        ineqs.append((upper, -1.0, hi[upper]))
    return eqs, ineqs


def _refuse_keep_feasible(c: Any, what: str) -> None:
    if np.any(np.asarray(getattr(c, "keep_feasible", False))):
        raise ValueError(
            f"{what} has keep_feasible=True, which optarena cannot honour: its methods may "
            "evaluate points outside a general constraint (the best point is still ranked "
            "feasible-first). Drop keep_feasible, or express box limits as bounds= (every "
            "evaluation of a method that takes bounds stays inside them)"
        )


class _Affine:
    """``x -> S x - c`` as a tensor function (a LinearConstraint's rows, signs applied)."""

    def __init__(self, S: np.ndarray, c: np.ndarray) -> None:
        self.S = torch.as_tensor(S, dtype=torch.float64)
        self.c = torch.as_tensor(c, dtype=torch.float64)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        S, c = self.S.to(dtype=x.dtype, device=x.device), self.c.to(dtype=x.dtype, device=x.device)
        return S @ x - c


def _linear(c: so.LinearConstraint) -> tuple[Constraint, ...]:
    what = "LinearConstraint"
    _refuse_keep_feasible(c, what)
    A = np.atleast_2d(np.asarray(c.A.toarray() if hasattr(c.A, "toarray") else c.A, np.float64))
    eqs, ineqs = _sides(c.lb, c.ub, A.shape[0], what)
    out: list[Constraint] = []
    for cls, segs in ((Eq, eqs), (Ineq, ineqs)):
        if segs:
            S = np.concatenate([sign * A[rows] for rows, sign, _ in segs])
            off = np.concatenate([sign * o for _, sign, o in segs])
            out.append(cls(_Affine(S, off), name=f"{what}[{cls.kind}]"))
    return tuple(out)


class _NumpyFunction:
    """A numpy constraint function ``g(x, *args)`` with its Jacobian (``jac`` or finite
    differences); remembers the last value and Jacobian, which the parts of one scipy
    constraint share."""

    def __init__(
        self, fun: Callable[..., Any], args: tuple[Any, ...], jac: Any, rel_step: Any, what: str
    ) -> None:
        if not callable(fun):
            raise TypeError(f"{what}: fun must be callable, got {type(fun).__name__}")
        if not (callable(jac) or jac in _REL_STEP):
            raise ValueError(
                f"{what}: jac must be a function or one of {sorted(_REL_STEP)}, got {jac!r}"
            )
        self.fun, self.args, self.jac, self.what = fun, args, jac, what
        self.rel_step = rel_step
        self._last: tuple[np.ndarray, np.ndarray] | None = None
        self._last_jac: tuple[np.ndarray, np.ndarray] | None = None

    def _call(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.fun(x.copy(), *self.args)).reshape(-1)

    def value(self, x: np.ndarray) -> np.ndarray:
        if self._last is not None and np.array_equal(self._last[0], x):
            return self._last[1]
        v = self._call(x).astype(np.float64)
        self._last = (x.copy(), v)
        return v

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        if self._last_jac is not None and np.array_equal(self._last_jac[0], x):
            return self._last_jac[1]
        v = self.value(x)
        if callable(self.jac):
            J = self.jac(x.copy(), *self.args)
            J = np.asarray(J.toarray() if hasattr(J, "toarray") else J, dtype=np.float64)
            if J.size != v.size * x.size:
                raise ValueError(
                    f"{self.what}: jac gave shape {J.shape}, expected ({v.size}, {x.size})"
                )
            J = J.reshape(v.size, x.size)
        else:
            J = self._differences(x, v)
        self._last_jac = (x.copy(), J)
        return J

    def _differences(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Finite-difference Jacobian with scipy's steps: rel * sign(x) * max(1, |x|)."""
        rel = _REL_STEP[self.jac] if self.rel_step is None else self.rel_step
        sign = np.where(x >= 0, 1.0, -1.0)
        h = np.broadcast_to(np.asarray(rel, dtype=np.float64), x.shape) * sign
        h = h * np.maximum(1.0, np.abs(x))
        J = np.empty((v.size, x.size))
        for i in range(x.size):
            e = np.zeros_like(x)
            if self.jac == "cs":
                e[i] = h[i]
                J[:, i] = self._call(x + 1j * e).imag / h[i]
                continue
            e[i] = h[i]
            xp = x + e
            dx = xp[i] - x[i]  # the step actually taken, after rounding
            if self.jac == "3-point":
                J[:, i] = (self._call(xp) - self._call(x - e)) / (2 * dx)
            else:
                J[:, i] = (self._call(xp) - v) / dx
        return J


class _Part:
    """Some rows of a numpy constraint function as a tensor function (values only, no
    autograd): the concatenation of ``sign * (g[rows] - offset)`` over its segments."""

    vmappable = False  # numpy code: ConstraintSet evaluates populations row by row

    def __init__(self, g: _NumpyFunction, segments: list[Segment], m: int | None) -> None:
        self.g, self.segments, self.m = g, segments, m

    def _x(self, x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().double().numpy().copy()

    def _rows(self, v: np.ndarray) -> None:
        if self.m is not None and v.size != self.m:
            raise ValueError(
                f"{self.g.what}: fun returned {v.size} values, but lb/ub have {self.m} entries"
            )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        v = self.g.value(self._x(x))
        self._rows(v)
        rows = [s * (v if self.m is None else v[r]) - s * o for r, s, o in self.segments]
        return torch.as_tensor(np.concatenate(rows), dtype=x.dtype, device=x.device)

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        xn = self._x(x)
        J = self.g.jacobian(xn)
        self._rows(J[:, 0])
        rows = [s * (J if self.m is None else J[r]) for r, s, _ in self.segments]
        return torch.as_tensor(np.concatenate(rows), dtype=x.dtype, device=x.device)


def _numpy_parts(g: _NumpyFunction, lb: Any, ub: Any) -> tuple[Constraint, ...]:
    sizes = {np.size(lb), np.size(ub)} - {1}
    m = sizes.pop() if len(sizes) == 1 else None
    if m is None and np.size(lb) != np.size(ub):
        raise ValueError(f"{g.what}: lb has {np.size(lb)} entries and ub {np.size(ub)}")
    eqs, ineqs = _sides(lb, ub, m, g.what)
    out: list[Constraint] = []
    for cls, segs in ((Eq, eqs), (Ineq, ineqs)):
        if segs:
            part = _Part(g, segs, m)
            out.append(cls(part, name=f"{g.what}[{cls.kind}]", jac=part.jacobian))
    return tuple(out)


def _nonlinear(c: so.NonlinearConstraint) -> tuple[Constraint, ...]:
    what = f"NonlinearConstraint({getattr(c.fun, '__name__', 'fun')})"
    _refuse_keep_feasible(c, what)
    g = _NumpyFunction(c.fun, (), c.jac, c.finite_diff_rel_step, what)
    return _numpy_parts(g, c.lb, c.ub)


_DICT_KEYS = {"type", "fun", "jac", "args"}


def _from_dict(c: Mapping[str, Any]) -> tuple[Constraint, ...]:
    unknown = sorted(set(c) - _DICT_KEYS)
    if unknown:
        raise ValueError(
            f"constraint dict has unknown key(s) {unknown}; scipy's form has {sorted(_DICT_KEYS)}"
        )
    kind = c.get("type")
    if not isinstance(kind, str) or kind.lower() not in ("ineq", "eq"):
        raise ValueError(
            f"constraint dict needs 'type': 'ineq' (fun(x) >= 0) or 'eq' (fun(x) == 0), "
            f"got {kind!r}"
        )
    if "fun" not in c:
        raise ValueError("constraint dict needs 'fun': a numpy function of x")
    args = c.get("args", ())
    if not isinstance(args, tuple | list):
        raise TypeError(f"constraint dict 'args' must be a tuple, got {type(args).__name__}")
    jac = c.get("jac")
    name = getattr(c["fun"], "__name__", "fun")
    g = _NumpyFunction(c["fun"], tuple(args), "2-point" if jac is None else jac, None, name)
    cls = Ineq if kind.lower() == "ineq" else Eq
    part = _Part(g, [(np.arange(0), 1.0, np.zeros(()))], None)
    return (cls(part, name=f"{{'type': {kind.lower()!r}}}", jac=part.jacobian),)
