"""What kind of function a plain callable is, told by its first call; and flat gradients.

``minimize(f, x0)`` accepts a torch function of a tensor and a scipy-style function of a numpy
array alike. An Objective with ``backend="auto"`` finds out which at its first call, made with
a tensor (a torch function also accepts numpy arrays sometimes, so numpy first would lose the
gradient of torch functions): a tensor back means torch; a Python float means a black box that
takes tensors but has no autograd gradient; a numpy value back, or an exception (then one call
with a numpy array), means a numpy function. Every call is a real evaluation, counted by the run
(see :class:`Probe`): the value of the first, and the tensor call of a numpy function that
raised (it cost the user a call like any other; its History value is NaN).

:func:`is_flat` tells a gradient that is exactly zero because the value depends on ``x`` only
through steps (floor, round, sign, ...) from a genuine stationary point.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import ObjectiveDefinitionError

if TYPE_CHECKING:
    from .objective import Objective

__all__ = ["FirstCalls", "Probe", "disconnected", "first_call", "is_flat", "probe_call"]

# Autograd nodes whose derivative is zero everywhere it exists: a value reaching x only through
# them has a zero autograd gradient at every point (a step or rounding function of x).
_STEP_NODES = frozenset(
    (
        "FloorBackward0",
        "CeilBackward0",
        "RoundBackward0",
        "RoundBackward1",
        "TruncBackward0",
        "SignBackward0",
        "SgnBackward0",
    )
)


@dataclass
class Probe:
    """The first call of an undecided objective, made at x0 before the run: its value (and
    gradient, or why there is none) is handed to the run's first evaluation, which counts it.
    ``calls`` is 2 when the call with a tensor raised and the function was called again with a
    numpy array: the run counts both (the user's function ran twice)."""

    x: torch.Tensor
    f: float
    g: torch.Tensor | None = None
    grad_error: BaseException | None = None
    error: BaseException | None = None
    flat: bool = False
    calls: int = 1


def disconnected(name: str) -> ObjectiveDefinitionError:
    """The refusal of a value that autograd does not connect to ``x``."""
    return ObjectiveDefinitionError(
        f"objective {name!r} returned a value that does not depend on x through autograd "
        "(a new tensor such as torch.tensor(v, requires_grad=True), x.detach(), or a term on "
        "other parameters only): its gradient would be a meaningless zero. Return a tensor "
        "computed from x with torch operations, or declare gradient='none' (gradient-free "
        "methods) or gradient='fd' (finite differences)"
    )


def is_flat(y: torch.Tensor, x: torch.Tensor) -> bool:
    """True when every autograd path from ``y`` back to the leaf ``x`` passes through a step
    node (floor, round, sign, ...): the gradient is then zero at every point, not only here."""
    seen: set[int] = set()
    stack = [y.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.name() in _STEP_NODES:
            continue
        if getattr(node, "variable", None) is x:
            return False
        stack.extend(n for n, _ in node.next_functions)
    return True


def _numpy_input(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy()


def first_call(obj: Objective, x: torch.Tensor) -> float:
    """The value of an undecided objective's first call at ``x``, deciding its kind as
    :func:`probe_call` does (the same input, so the same answer whichever call comes first)."""
    p = probe_call(obj, x, obj._scalar, want_grad=False)
    if p.error is not None:
        raise p.error
    return p.f


def _kind_of(y: Any) -> str:
    """The kind a first value tells: tensor -> torch, numpy value -> numpy, float -> black box."""
    if isinstance(y, torch.Tensor):
        return "torch"
    if isinstance(y, np.generic | np.ndarray):
        return "numpy"
    return "black_box"


_GRAD_SCALAR_WARNING = "Converting a tensor with requires_grad=True to a scalar"


def probe_call(
    obj: Objective,
    x0: torch.Tensor,
    to_scalar: Callable[[Any], torch.Tensor],
    want_grad: bool = True,
    retry: bool = True,
) -> Probe:
    """The first call of an undecided objective at ``x0``, with its gradient when it has one
    and ``want_grad``. ``x0`` requires grad, so a numpy function converting it raises, and is
    called once more with a numpy array (``calls=2``: both are evaluations to count); both
    failing gives the tensor call's error. ``retry=False`` (no second evaluation left in the
    budget) makes no second call: the error then says how to declare a numpy function."""
    xx = x0.detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            # x0 requires grad only to learn whether f keeps a gradient: torch's warning
            # about converting it to a Python number speaks of our probe, not of the user's code
            warnings.filterwarnings("ignore", message=_GRAD_SCALAR_WARNING, category=UserWarning)
            y = obj.fn(xx)
    except Exception as tensor_error:
        if _in_place_on_x(tensor_error):  # a torch function that changes x in place
            return _without_grad(obj, x0, to_scalar, tensor_error, retry)
        if not retry:
            return Probe(x0.clone(), float("nan"), error=_no_retry(obj.name, tensor_error))
        try:
            y = obj.fn(_numpy_input(x0))
        except Exception:
            return Probe(x0.clone(), float("nan"), error=tensor_error, calls=2)
        obj._decide("numpy")
        p = _value_only(x0, y, to_scalar)
        p.calls = 2
        return p
    if xx.grad is not None:  # the function differentiated its own value with respect to x
        return Probe(x0.clone(), float("nan"), error=_backward_inside(obj.name))
    kind = _kind_of(y)
    obj._decide(kind)
    if kind != "torch":
        return _value_only(x0, y, to_scalar)
    try:
        yt = to_scalar(y)
    except Exception as e:
        return Probe(x0.clone(), float("nan"), error=e)
    f = float(yt.detach())
    if not want_grad:
        return Probe(x0.clone(), f)
    if not yt.requires_grad:
        return Probe(x0.clone(), f, grad_error=obj._untraceable())
    with torch.enable_grad():
        (g,) = torch.autograd.grad(yt, xx, allow_unused=True)
    if g is None:
        return Probe(x0.clone(), f, grad_error=disconnected(obj.name))
    flat = not bool(g.any()) and is_flat(yt, xx)
    return Probe(x0.clone(), f, g=g.detach(), flat=flat)


def _no_retry(name: str, error: Exception) -> ObjectiveDefinitionError:
    """The error of a first call with a tensor that raised when the budget has no evaluation
    left to call the function again with a numpy array."""
    e = ObjectiveDefinitionError(
        f"objective {name!r} raised {type(error).__name__} at its first call, made with a "
        f"tensor to tell a torch function from a numpy one ({error}); the budget leaves no "
        "evaluation to call it again with a numpy array. For a numpy function, pass "
        "Objective.from_numpy(f), which is called with numpy arrays from the start"
    )
    e.__cause__ = error
    return e


def _backward_inside(name: str) -> ObjectiveDefinitionError:
    """The error of a function that calls ``.backward()`` on a value that depends on x (a
    torch habit from training loops): x's gradient is optarena's to compute."""
    return ObjectiveDefinitionError(
        f"objective {name!r} calls .backward() (or autograd) on a value that depends on x: "
        "x.grad was set during its first call. Return the loss without calling .backward(); "
        "optarena differentiates the returned value itself when the method needs a gradient "
        "(an objective that trains a model inside may call backward on the model's own "
        "parameters, as long as that loss does not depend on x through autograd: use "
        "float(x[i]) for hyperparameters)"
    )


def _in_place_on_x(e: Exception) -> bool:
    """torch's refusal of an in-place change of a tensor that requires grad (the probe's x)."""
    return isinstance(e, RuntimeError) and "leaf Variable that requires grad" in str(e)


def _without_grad(
    obj: Objective, x0: torch.Tensor, to_scalar: Callable[[Any], torch.Tensor], err: Exception,
    retry: bool,
) -> Probe:  # fmt: skip
    """The first call again without autograd, for a function that changes x in place (x is
    its own copy: gradient-free methods may run it as it is); a method that needs the
    gradient is told how to write it (``calls=2``: both calls ran and are counted)."""
    why = ObjectiveDefinitionError(
        f"objective {obj.name!r} changes x in place (torch: {err}), so autograd cannot give "
        "its gradient: write that step out of place (x = x.clamp(lo, hi) for x.clamp_(lo, "
        "hi), or x = x.clone() first), or use a gradient-free method, or gradient='fd'"
    )
    if not retry:
        return Probe(x0.clone(), float("nan"), error=why)
    try:
        with torch.no_grad():
            y = obj.fn(x0.detach().clone())
    except Exception:
        return Probe(x0.clone(), float("nan"), error=err, calls=2)
    obj._decide(_kind_of(y))
    p = _value_only(x0, y, to_scalar)
    p.grad_error, p.calls = why, 2
    return p


def _value_only(x0: torch.Tensor, y: Any, to_scalar: Callable[[Any], torch.Tensor]) -> Probe:
    try:
        return Probe(x0.clone(), float(to_scalar(y)))
    except Exception as e:
        return Probe(x0.clone(), float("nan"), error=e)


class FirstCalls:
    """The Oracle's side of the first call: it makes an undecided function's first call as a
    probe and counts every call of it (the Oracle is the only writer of counts)."""

    objective: Objective
    nfev: int
    _x0: torch.Tensor

    if TYPE_CHECKING:

        def remaining_evals(self) -> int | None: ...
        def _check_before(self, n: int = 1, grad: bool = False) -> int: ...
        def _check_after(self, finite: bool = True) -> None: ...
        def _record(self, x: torch.Tensor, f: float) -> float: ...
        def _fail(self, e: BaseException, index: int) -> Exception: ...

    def _decide(self, first: torch.Tensor) -> None:
        """Make an undecided plain function's first call (:func:`.kinds.probe_call`) at
        ``first``, the point the run asks for, as a probe that :meth:`_take_probe` counts: the
        call that tells a torch function from a numpy one is counted like any other, and so is
        a numpy function's failed call with a tensor. No second call is made when the budget
        has no evaluation left for it."""
        obj = self.objective
        if obj.decided or obj._probe is not None:
            return
        left = self.remaining_evals()
        obj._probe = probe_call(
            obj,
            first.detach().clone(),
            obj._scalar,
            want_grad=False,
            retry=left is None or left > 1,
        )

    def _take_probe(self, first: torch.Tensor) -> Probe | None:
        """The objective's probe (its first call, made at this run's x0 before the run by
        :meth:`Objective.probe`, or at ``first`` by :meth:`_decide`) at the run's first
        evaluation. Returned when ``first``, the point asked for, is the probed one; otherwise
        counted and recorded as its own evaluation (it was a real call) and None returned. A
        numpy function's failed call with a tensor (``calls=2``) is recorded first, as an
        evaluation of value NaN. A probe made at another x0 belongs to a run that never
        started: it is dropped."""
        p = self.objective._take_probe()
        if p is None:
            return None
        here = first.shape == p.x.shape and torch.equal(first, p.x)
        if not here and (p.x.shape != self._x0.shape or not torch.equal(p.x, self._x0)):
            return None
        if p.error is not None:
            raise self._fail(p.error, self.nfev + 1) from p.error
        if p.calls > 1:  # the call with a tensor raised before the call with numpy
            self._record(p.x.clone(), math.nan)
            self._check_before()
        if here:
            return p
        self._record(p.x.clone(), p.f)
        self._check_after()
        self._check_before()
        return None
