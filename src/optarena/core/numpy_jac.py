"""A numpy function with its own gradient (scipy's ``jac=``) as a torch function: autograd
calls the gradient function, so every gradient method uses it exactly, with no finite
differences. ``Objective.from_numpy(f, jac=g)`` builds it; ``jac=True`` means ``f`` returns
``(value, gradient)``, as scipy's ``minimize(f, x0, jac=True)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["with_jacobian"]

Jac = Callable[[np.ndarray], Any] | bool


class _NumpyWithGradient(torch.autograd.Function):
    """f(x) on numpy in forward; the gradient from ``jac`` only when autograd asks for it."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fun: Callable, jac: Jac, name: str) -> torch.Tensor:
        xn = x.detach().cpu().numpy()
        if jac is True:
            out = fun(xn.copy())
            if not (isinstance(out, tuple | list) and len(out) == 2):
                raise TypeError(
                    f"objective {name!r} was declared with jac=True, so it must return "
                    f"(value, gradient), as for scipy; it returned {type(out).__name__}"
                )
            f, g = out
        else:
            f = fun(xn.copy())
            g = jac(xn.copy()) if ctx.needs_input_grad[0] else None  # type: ignore[operator]
        value = np.asarray(f, dtype=np.float64)
        if value.size != 1:
            raise ValueError(f"objective {name!r} must return a scalar, got shape {value.shape}")
        grad = None
        if g is not None:
            grad = np.asarray(g, dtype=np.float64).reshape(-1)
            if grad.shape != xn.reshape(-1).shape:
                raise ValueError(
                    f"the gradient of objective {name!r} has {grad.size} entries for "
                    f"{xn.size} variables (jac must return an array shaped like x)"
                )
            grad = torch.from_numpy(grad).to(dtype=x.dtype, device=x.device)
        ctx.grad = grad
        return torch.tensor(float(value.reshape(())), dtype=x.dtype, device=x.device)

    @staticmethod
    def backward(ctx: Any, out: torch.Tensor) -> tuple[Any, ...]:
        if ctx.grad is None:  # pragma: no cover - autograd asks only when x needs a gradient
            raise RuntimeError("no gradient was computed in forward")
        return out * ctx.grad, None, None, None


def with_jacobian(fun: Callable[[np.ndarray], Any], jac: Jac, name: str) -> Callable:
    """``fun`` (numpy) as a function of a 1-D tensor whose autograd gradient is ``jac``'s."""
    if jac is not True and not callable(jac):
        raise TypeError(
            "jac must be a function of x returning the gradient, or True when the objective "
            f"returns (value, gradient); got {jac!r}"
        )

    def fn(x: torch.Tensor) -> torch.Tensor:
        return _NumpyWithGradient.apply(x, fun, jac, name)

    fn.__name__ = name
    return fn
