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
from .kinds import Probe, disconnected, first_call, is_flat, probe_call
from .module_objective import ModuleParameters, module_objective
from .numpy_jac import with_jacobian

if TYPE_CHECKING:
    from .module_batch import SequentialBatch

__all__ = ["Backend", "GradientMode", "Objective", "ObjectiveDefinitionError", "RowError"]

GradientMode = Literal["autograd", "fd", "none"]
Backend = Literal["torch", "numpy", "auto"]


def _to_scalar_tensor(y: Any, where: str) -> torch.Tensor:
    if isinstance(y, torch.Tensor) and y.numel() == 1:
        return y.reshape(())
    if isinstance(y, int | float | np.floating | np.integer) and not isinstance(y, bool):
        return torch.tensor(float(y), dtype=torch.float64)
    if isinstance(y, np.ndarray) and y.size == 1:
        return torch.tensor(float(y.reshape(())), dtype=torch.float64)
    raise ObjectiveDefinitionError(
        f"{where} must return a scalar (a float, a numpy scalar, or a numpy array or tensor "
        f"holding a single value), but returned {_described(y)}"
    )


def _described(y: Any) -> str:
    """What a function returned, as a user would say it (for the error naming it)."""
    if isinstance(y, torch.Tensor):
        return f"a tensor of shape {tuple(y.shape)} (dtype {y.dtype})"
    if isinstance(y, np.ndarray):
        return f"a numpy array of shape {y.shape} (dtype {y.dtype})"
    if isinstance(y, list | tuple):
        return f"a {type(y).__name__} of length {len(y)}"
    if y is None:
        return "None (a missing return statement?)"
    kind = type(y)
    where = "" if kind.__module__ == "builtins" else kind.__module__ + "."
    return f"a {where}{kind.__name__}: {y!r:.60}"


class Objective:
    """A function to minimize, with its gradient and batching abilities declared up front.

    Args:
        fn: ``fn(x) -> scalar`` for a 1-D tensor ``x`` (or a 1-D numpy array when
            ``backend="numpy"``). It receives a copy of the point, never the optimizer's own.
        backend: ``"torch"`` (default), ``"numpy"`` (values only, no autograd) or ``"auto"``
            (what :func:`optarena.minimize` makes of a plain function): the first call tells.
            It is made with a tensor; a function that returns a tensor is a torch function,
            one that returns a float is a black box without autograd gradient, one that
            returns a numpy value (or raises, then is called again with a numpy array) is a
            numpy function, evaluated on numpy arrays from then on. :meth:`probe` makes that
            first call at x0 before a run when the choice of method depends on it.
        gradient: ``"autograd"`` (default for torch functions), ``"fd"`` (forward finite
            differences, every probe counted as an evaluation) or ``"none"`` (declares the
            function non-differentiable: gradient methods refuse it before evaluating).
        batched: optional ``batched(X) -> (n,)`` for ``X`` of shape ``(n, d)``; used for
            populations instead of ``vmap``.
        vectorize: try ``torch.func.vmap`` for populations when no ``batched`` is given.
        chunk_size: rows per batched call; ``None`` picks a cache-friendly size.
        fd_step: relative step of finite differences (absolute ``fd_step * max(1, |x_i|)``);
            ``None`` (default): sqrt(eps) of the dtype of the run's points, 1.5e-8 in
            float64 and 3.5e-4 in float32, as scipy's ``approx_derivative``.
        name: label used in results and tables.
        noisy: declares that repeated evaluations at one point differ (method choice uses it).
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        *,
        backend: Backend = "torch",
        gradient: GradientMode | None = None,
        batched: Callable[[Any], Any] | None = None,
        vectorize: bool = True,
        chunk_size: int | None = None,
        fd_step: float | None = None,
        name: str | None = None,
        default_x0: torch.Tensor | None = None,
        noisy: bool = False,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"the objective must be callable, got {type(fn).__name__}")
        if backend not in ("torch", "numpy", "auto"):
            raise ValueError(f"backend must be 'torch', 'numpy' or 'auto', got {backend!r}")
        if gradient is None:
            gradient = "none" if backend == "numpy" else "autograd"
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
        if fd_step is not None and not (
            isinstance(fd_step, float | int) and not isinstance(fd_step, bool) and fd_step > 0
        ):
            raise ValueError(f"fd_step must be positive, got {fd_step!r}")
        self.fn = fn
        self.backend: Backend = backend
        self.gradient: GradientMode = gradient
        self.batched = batched
        self.vectorize = vectorize and backend != "numpy"
        self.chunk_size = chunk_size
        self.fd_step = None if fd_step is None else float(fd_step)
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.noisy = bool(noisy)
        self._default_x0 = default_x0
        self._vmap_failed = False
        self._module_batched: SequentialBatch | None = None
        self._parameters: ModuleParameters | None = None
        self._probe: Probe | None = None

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def from_numpy(
        cls, fn: Callable[[np.ndarray], float], *, jac: Any = None, **kwargs: Any
    ) -> Objective:
        """An objective over a numpy function ``fn(x: ndarray) -> float``: without a gradient,
        or with ``gradient="fd"``, or with its own, scipy's ``jac``: a function ``jac(x)``
        returning the gradient array, or ``True`` when ``fn`` returns ``(value, gradient)``
        (gradient methods then use it exactly; see :mod:`optarena.core.numpy_jac`)."""
        if jac is None or jac is False:
            return cls(fn, backend="numpy", **kwargs)
        if kwargs.get("gradient", "autograd") != "autograd":
            raise ValueError("jac= gives the gradient: leave gradient= unset")
        name = kwargs.pop("name", None) or getattr(fn, "__name__", type(fn).__name__)
        kwargs.pop("gradient", None)
        kwargs.setdefault("vectorize", False)  # one numpy call per point
        return cls(with_jacobian(fn, jac, name), name=name, **kwargs)

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        loss: Callable[..., torch.Tensor],
        *,
        args: Sequence[Any] | Any = (),
        target: Any = None,
        kwargs: dict[str, Any] | None = None,
        params: str | nn.Module | Iterable[str | nn.Parameter | nn.Module] | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Objective:
        """Minimize ``loss(module(*args, **kwargs)[, target])`` over some module parameters.

        ``params`` selects what is optimized: ``None`` for every parameter that requires grad,
        a glob pattern on parameter names (``"head.*"``), a submodule (``model[2]``: every
        parameter under it) or a list of names, patterns, ``nn.Parameter`` objects and
        submodules. The others keep their current values. The flat vector
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

    # -- the kind of a plain function (backend="auto") --------------------------------------
    @property
    def decided(self) -> bool:
        """False while a ``backend="auto"`` objective has not been called yet."""
        return self.backend != "auto"

    def probe(self, x0: torch.Tensor, *, retry: bool = True) -> None:
        """Decide what an undecided (``backend="auto"``) objective is by calling it at ``x0``
        now, before the method is chosen (a no-op once decided). That call is the next run's
        first evaluation at ``x0``, counted there: the run takes its value (and gradient)
        instead of calling again, or records it as its own evaluation when it starts elsewhere.
        A numpy function's call with a tensor raises and is made again with a numpy array:
        the run counts both calls; ``retry=False`` (one evaluation left) makes no second call.
        """
        if self.decided:
            return
        self._probe = probe_call(self, x0, self._scalar, retry=retry)

    def _take_probe(self) -> Probe | None:
        """The pending probe, handed once to the run that counts it."""
        p, self._probe = self._probe, None
        return p

    def _decide(self, kind: str) -> None:
        """Fix the kind found by the first call: torch, numpy, or a black box of tensors. Only
        a function returning a tensor can be vectorized: one that returns a Python float
        (``.item()``, ``float(...)``, a training loop inside) is evaluated point by point
        without trying ``vmap`` (and without its warning)."""
        if kind == "numpy":
            self.backend, self.vectorize = "numpy", False
        else:
            self.backend = "torch"
            if kind != "torch":
                self.vectorize = False
        if kind != "torch" and self.gradient == "autograd":
            self.gradient = "none"

    def _scalar(self, y: Any) -> torch.Tensor:
        return _to_scalar_tensor(y, f"objective {self.name!r}")

    def _untraceable(self) -> ObjectiveDefinitionError:
        return ObjectiveDefinitionError(
            f"objective {self.name!r} returned a value that autograd cannot trace back "
            "to x (a float, .item(), numpy or detach inside the function). Write it "
            "with torch operations, or declare gradient='none' and use a gradient-free "
            "method, or gradient='fd' for finite differences"
        )

    # -- computing (no counting here; the Oracle counts) ------------------------------------
    def _value(self, x: torch.Tensor) -> float:
        """f(x) for one point; ``x`` is already a private copy. The function runs in the
        caller's autograd mode (the user's: an objective may train a model inside)."""
        if self.backend == "numpy":
            y = self.fn(x.detach().cpu().double().numpy())
        elif self.backend == "auto":
            return first_call(self, x)
        else:
            y = self.fn(x)
        return float(self._scalar(y))

    def _value_array(self, x: np.ndarray) -> float:
        """f(x) for one float64 CPU point given as a numpy array, for a decided objective
        (numpy or torch). A numpy function gets a copy of ``x`` and no tensor is made; a torch
        function gets a copy as a tensor. Same values and errors as :meth:`_value`."""
        y = self.fn(x.copy() if self.backend == "numpy" else torch.from_numpy(x.copy()))
        if isinstance(y, float):  # Python floats and numpy float64 scalars
            return float(y)
        if isinstance(y, torch.Tensor) and y.numel() == 1:
            return float(y)
        return float(self._scalar(y))

    def _value_and_grad(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        """f(x) and its autograd gradient for one point (``gradient='autograd'`` only)."""
        f, g, _ = self._value_grad_flat(x)
        return f, g

    def _value_grad_flat(self, x: torch.Tensor) -> tuple[float, torch.Tensor, bool]:
        """f(x), its autograd gradient, and whether that gradient is exactly zero because the
        value reaches x only through steps (floor, round, ...: see :func:`.kinds.is_flat`).

        A value that autograd does not connect to x at all (a new tensor, a detached x, a
        term on other parameters only) is refused: its "gradient" would be a false zero."""
        if self.backend == "auto":
            p = probe_call(self, x, self._scalar)
            if p.error is not None:
                raise p.error
            if p.g is None:
                raise p.grad_error or self._untraceable()
            return p.f, p.g, p.flat
        xx = x.detach().requires_grad_(True)
        with torch.enable_grad():
            y = self._scalar(self.fn(xx))
            if not y.requires_grad:
                raise self._untraceable()
            (g,) = torch.autograd.grad(y, xx, allow_unused=True)
        if g is None:
            raise disconnected(self.name)
        flat = not bool(g.any()) and is_flat(y, xx)
        return float(y.detach()), g.detach(), flat

    def _auto_chunk(self, dim: int) -> int:
        """Rows per batched call for points of dimension ``dim``."""
        return auto_chunk(self.chunk_size, dim)

    def _values(self, X: torch.Tensor, deadline: float | None = None) -> tuple[np.ndarray, str]:
        """Values of the rows of ``X`` (a private copy); returns them and how they were
        computed. ``deadline`` (``time.perf_counter()``) is checked between chunks."""
        return batch_values(self, X, deadline)

    def __repr__(self) -> str:
        return f"Objective({self.name!r}, backend={self.backend!r}, gradient={self.gradient!r})"
