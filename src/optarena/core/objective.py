"""Objective: what is being minimized, as a reusable definition.

An Objective wraps a function of a 1-D tensor (differentiable or not), a numpy function, or an
``nn.Module`` with a loss (all parameters or a chosen subset: :mod:`.module_objective`). It
knows how to compute values, batches of values (:mod:`.batch`: the declared batched function,
``torch.func.vmap`` in chunks, a direct path for feed-forward Sequentials, a loop fallback)
and autograd gradients, but it does not count: counting, budgets, best-so-far and the History
live in :class:`optarena.core.oracle.Oracle`, which one run builds from the Objective, so one
Objective can be minimized many times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from .batch import RowError, auto_chunk, batch_values
from .errors import ObjectiveDefinitionError
from .module_objective import ModuleParameters, module_objective

if TYPE_CHECKING:
    from .module_batch import SequentialBatch

__all__ = ["GradientMode", "Objective", "ObjectiveDefinitionError", "RowError"]

GradientMode = Literal["autograd", "fd", "none"]


def _to_scalar_tensor(y: Any, where: str) -> torch.Tensor:
    if isinstance(y, torch.Tensor):
        if y.numel() != 1:
            raise ObjectiveDefinitionError(
                f"{where} must return a scalar, got a tensor of shape {tuple(y.shape)}"
            )
        return y.reshape(())
    if isinstance(y, int | float | np.floating | np.integer) and not isinstance(y, bool):
        return torch.tensor(float(y), dtype=torch.float64)
    if isinstance(y, np.ndarray) and y.size == 1:
        return torch.tensor(float(y.reshape(())), dtype=torch.float64)
    raise ObjectiveDefinitionError(
        f"{where} must return a scalar (tensor or float), got {type(y).__name__}"
    )


class Objective:
    """A function to minimize, with its gradient and batching abilities declared up front.

    Args:
        fn: ``fn(x) -> scalar`` for a 1-D tensor ``x`` (or a 1-D numpy array when
            ``backend="numpy"``). It receives a copy of the point, never the optimizer's own.
        backend: ``"torch"`` (default) or ``"numpy"`` (values only, no autograd).
        gradient: ``"autograd"`` (default for torch functions), ``"fd"`` (forward finite
            differences, every probe counted as an evaluation) or ``"none"`` (declares the
            function non-differentiable: gradient methods refuse it before evaluating).
        batched: optional ``batched(X) -> (n,)`` for ``X`` of shape ``(n, d)``; used for
            populations instead of ``vmap``.
        vectorize: try ``torch.func.vmap`` for populations when no ``batched`` is given.
        chunk_size: rows per batched call; ``None`` picks a cache-friendly size.
        fd_step: relative step of finite differences (absolute ``fd_step * max(1, |x_i|)``).
        name: label used in results and tables.
        noisy: declares that repeated evaluations at one point differ (method choice uses it).
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        *,
        backend: Literal["torch", "numpy"] = "torch",
        gradient: GradientMode | None = None,
        batched: Callable[[Any], Any] | None = None,
        vectorize: bool = True,
        chunk_size: int | None = None,
        fd_step: float = 1.4901161193847656e-08,
        name: str | None = None,
        default_x0: torch.Tensor | None = None,
        noisy: bool = False,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"the objective must be callable, got {type(fn).__name__}")
        if backend not in ("torch", "numpy"):
            raise ValueError(f"backend must be 'torch' or 'numpy', got {backend!r}")
        if gradient is None:
            gradient = "autograd" if backend == "torch" else "none"
        if gradient not in ("autograd", "fd", "none"):
            raise ValueError(f"gradient must be 'autograd', 'fd' or 'none', got {gradient!r}")
        if backend == "numpy" and gradient == "autograd":
            raise ValueError(
                "a numpy function has no autograd gradient: use gradient='fd' (finite "
                "differences, each probe counted) or write the function with torch"
            )
        if batched is not None and not callable(batched):
            raise TypeError("batched must be callable or None")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        if not (isinstance(fd_step, float | int) and fd_step > 0):
            raise ValueError(f"fd_step must be positive, got {fd_step!r}")
        self.fn = fn
        self.backend = backend
        self.gradient: GradientMode = gradient
        self.batched = batched
        self.vectorize = vectorize and backend == "torch"
        self.chunk_size = chunk_size
        self.fd_step = float(fd_step)
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.noisy = bool(noisy)
        self._default_x0 = default_x0
        self._vmap_failed = False
        self._module_batched: SequentialBatch | None = None
        self._parameters: ModuleParameters | None = None

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def from_numpy(cls, fn: Callable[[np.ndarray], float], **kwargs: Any) -> Objective:
        """An objective over a numpy function ``fn(x: ndarray) -> float`` (no gradient)."""
        return cls(fn, backend="numpy", **kwargs)

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        loss: Callable[..., torch.Tensor],
        *,
        args: Sequence[Any] | Any = (),
        target: Any = None,
        kwargs: dict[str, Any] | None = None,
        params: str | Iterable[str | nn.Parameter] | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Objective:
        """Minimize ``loss(module(*args, **kwargs)[, target])`` over some module parameters.

        ``params`` selects what is optimized: ``None`` for every parameter that requires grad,
        a glob pattern on parameter names (``"head.*"``) or a list of names, patterns or
        ``nn.Parameter`` objects. The others keep their current values. The flat vector
        concatenates the selected parameters in ``named_parameters()`` order, each row-major.
        A Sequential of Linear layers and elementwise activations on one 2-D input evaluates
        populations directly (see ``optarena.core.module_batch``); any other module uses vmap.
        Use :meth:`write_back` to copy a result into the module.
        """
        return module_objective(
            cls,
            module,
            loss,
            args=args,
            target=target,
            kwargs=kwargs,
            params=params,
            name=name,
            options=options,
        )

    # -- module helpers --------------------------------------------------------------------
    @property
    def module(self) -> nn.Module | None:
        """The module of an objective built by :meth:`from_module`, else None."""
        return None if self._parameters is None else self._parameters.module

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the optimized parameters, in flat-vector order (module objectives)."""
        return () if self._parameters is None else self._parameters.names

    def write_back(self, x: torch.Tensor | np.ndarray) -> None:
        """Copy a flat vector (e.g. ``result.x``) into the module's selected parameters."""
        if self._parameters is None:
            raise TypeError("write_back is only for objectives built with Objective.from_module")
        assert self._default_x0 is not None
        self._parameters.write_back(x, self._default_x0)

    # -- facts -----------------------------------------------------------------------------
    @property
    def default_x0(self) -> torch.Tensor | None:
        """A start point the objective itself provides (a module's current parameters)."""
        return None if self._default_x0 is None else self._default_x0.clone()

    @property
    def has_gradient(self) -> bool:
        """True when a gradient can be computed (autograd, or finite differences on request)."""
        return self.gradient != "none"

    # -- public, uncounted evaluation (inside a run the Oracle counts) ---------------------
    def evaluate(self, x: torch.Tensor | np.ndarray) -> float:
        """f(x) for one point, uncounted (runs evaluate through their Oracle)."""
        return self._value(torch.as_tensor(x).detach().clone())

    def evaluate_batch(self, X: torch.Tensor | np.ndarray) -> np.ndarray:
        """f of each row of ``X`` (shape ``(n, d)``) in as few calls as possible, uncounted.

        Uses the declared ``batched`` function, else (for a feed-forward ``nn.Sequential``)
        one GEMM per layer for a whole chunk, else ``torch.func.vmap`` in cache-sized chunks,
        else (with one warning) a loop.
        """
        Xt = torch.as_tensor(X).detach()
        if Xt.ndim != 2:
            raise ValueError(f"evaluate_batch needs X of shape (n, d), got {tuple(Xt.shape)}")
        return self._values(Xt.clone())[0]

    # -- computing (no counting here; the Oracle counts) ------------------------------------
    def _value(self, x: torch.Tensor) -> float:
        """f(x) for one point; ``x`` is already a private copy."""
        if self.backend == "numpy":
            y = self.fn(x.detach().cpu().double().numpy())
        else:
            with torch.no_grad():
                y = self.fn(x)
        return float(_to_scalar_tensor(y, f"objective {self.name!r}"))

    def _value_and_grad(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        """f(x) and its autograd gradient for one point (``gradient='autograd'`` only)."""
        xx = x.detach().requires_grad_(True)
        with torch.enable_grad():
            y = _to_scalar_tensor(self.fn(xx), f"objective {self.name!r}")
            if not y.requires_grad:
                raise ObjectiveDefinitionError(
                    f"objective {self.name!r} returned a value that autograd cannot trace back "
                    "to x (a float, .item(), numpy or detach inside the function). Write it "
                    "with torch operations, or declare gradient='none' and use a gradient-free "
                    "method, or gradient='fd' for finite differences"
                )
            (g,) = torch.autograd.grad(y, xx, allow_unused=True)
        if g is None:
            g = torch.zeros_like(xx)
        return float(y.detach()), g.detach()

    def _auto_chunk(self, dim: int) -> int:
        """Rows per batched call for points of dimension ``dim``."""
        return auto_chunk(self.chunk_size, dim)

    def _values(self, X: torch.Tensor) -> tuple[np.ndarray, str]:
        """Values of the rows of ``X`` (a private copy); returns them and how they were computed."""
        return batch_values(self, X)

    def __repr__(self) -> str:
        return f"Objective({self.name!r}, backend={self.backend!r}, gradient={self.gradient!r})"
