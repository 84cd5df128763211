"""Objective: what is being minimized, as a reusable definition.

An Objective wraps a function of a 1-D tensor (differentiable or not), a numpy function, or an
``nn.Module`` with a loss (all parameters or a chosen subset, through
``torch.func.functional_call``). It knows how to compute values, batches of values
(``torch.func.vmap`` in chunks, a direct path for feed-forward Sequentials, a loop fallback)
and autograd gradients, but it does not
count: counting, budgets, best-so-far and the History live in :class:`optarena.core.oracle.Oracle`,
which one run builds from the Objective, so one Objective can be minimized many times.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .module_batch import SequentialBatch, sequential_batched

__all__ = ["GradientMode", "Objective", "ObjectiveDefinitionError"]

GradientMode = Literal["autograd", "fd", "none"]


class RowError(Exception):
    """Row ``index`` of a batch raised; ``done`` holds the values of the rows before it."""

    def __init__(self, index: int, done: np.ndarray) -> None:
        super().__init__(f"row {index} of the batch raised")
        self.index = index
        self.done = done

    def __reduce__(self) -> tuple[type[RowError], tuple[int, np.ndarray]]:
        # rebuilt from index and done (the default passes the message alone to __init__)
        return (type(self), (self.index, self.done))


class ObjectiveDefinitionError(TypeError):
    """The objective cannot do what was asked of it (e.g. a gradient of a numpy function)."""


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
        self._module: nn.Module | None = None
        self._param_names: tuple[str, ...] = ()
        self._param_shapes: tuple[torch.Size, ...] = ()

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
        if not isinstance(module, nn.Module):
            raise TypeError(f"from_module needs an nn.Module, got {type(module).__name__}")
        if not callable(loss):
            raise TypeError("loss must be callable: loss(output) or loss(output, target)")
        selected = _select_parameters(module, params)
        names = tuple(n for n, _ in selected)
        shapes = tuple(p.shape for _, p in selected)
        sizes = [int(math.prod(s)) for s in shapes]
        call_args = tuple(args) if isinstance(args, list | tuple) else (args,)
        call_kwargs = dict(kwargs or {})
        dtypes = {p.dtype for _, p in selected}
        if len(dtypes) != 1:
            raise ValueError(
                f"selected parameters must share one dtype, got {sorted(map(str, dtypes))}"
            )

        def unflatten(x: torch.Tensor) -> dict[str, torch.Tensor]:
            out: dict[str, torch.Tensor] = {}
            start = 0
            for n, shp, size in zip(names, shapes, sizes, strict=True):
                out[n] = x[start : start + size].view(shp)
                start += size
            return out

        def fn(x: torch.Tensor) -> torch.Tensor:
            output = torch.func.functional_call(module, unflatten(x), call_args, call_kwargs)
            return loss(output) if target is None else loss(output, target)

        with torch.no_grad():
            x0 = torch.cat([p.detach().reshape(-1) for _, p in selected]).clone()
        obj = cls(fn, name=name or type(module).__name__, default_x0=x0, **options)
        obj._module = module
        obj._param_names = names
        obj._param_shapes = shapes
        obj._unflatten = unflatten  # type: ignore[attr-defined]
        if obj.batched is None and obj.vectorize:
            obj._module_batched = sequential_batched(
                module, names, shapes, call_args, call_kwargs, loss, target
            )
        return obj

    # -- module helpers --------------------------------------------------------------------
    @property
    def module(self) -> nn.Module | None:
        """The module of an objective built by :meth:`from_module`, else None."""
        return self._module

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the optimized parameters, in flat-vector order (module objectives)."""
        return self._param_names

    def write_back(self, x: torch.Tensor | np.ndarray) -> None:
        """Copy a flat vector (e.g. ``result.x``) into the module's selected parameters."""
        if self._module is None:
            raise TypeError("write_back is only for objectives built with Objective.from_module")
        ref = self._default_x0
        assert ref is not None
        xt = torch.as_tensor(x).to(dtype=ref.dtype).reshape(-1)
        if xt.numel() != ref.numel():
            raise ValueError(f"x has {xt.numel()} entries, the parameters have {ref.numel()}")
        parts = self._unflatten(xt)  # type: ignore[attr-defined]
        named = dict(self._module.named_parameters())
        with torch.no_grad():
            for n, v in parts.items():
                named[n].copy_(v.to(named[n].device))

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
        # Keep one chunk's inputs around 256 KiB so intermediate activations stay in cache.
        return self.chunk_size or max(16, min(4096, 32768 // max(dim, 1)))

    def _batch_result(self, y: Any, n: int) -> np.ndarray:
        """The declared batched function's output as n float64 values (checked)."""
        if type(y) is torch.Tensor and y.ndim == 1 and y.dtype == torch.float64 and y.is_cpu:
            yv = (y.detach() if y.requires_grad else y).numpy()  # the common case, as is
        else:
            yv = torch.as_tensor(y).detach().to("cpu", torch.float64).reshape(-1).numpy()
        if yv.shape[0] != n:
            raise ObjectiveDefinitionError(
                f"batched objective {self.name!r} returned {yv.shape[0]} values for {n} points"
            )
        return yv

    def _values(self, X: torch.Tensor) -> tuple[np.ndarray, str]:
        """Values of the rows of ``X`` (a private copy); returns them and how they were computed."""
        n = X.shape[0]
        if n == 0:
            return np.empty(0), "none"
        if self.batched is not None:
            step = self._auto_chunk(X.shape[1])
            if n <= step and self.backend == "torch":  # one call, no copy into a buffer
                if torch.is_grad_enabled():
                    with torch.no_grad():
                        y = self.batched(X)
                else:  # population runs are already under no_grad: skip the context's cost
                    y = self.batched(X)
                return self._batch_result(y, n).copy(), "batched"
            out = np.empty(n)
            for s in range(0, n, step):
                chunk = X[s : s + step]
                try:
                    if self.backend == "numpy":
                        y = self.batched(chunk.detach().cpu().double().numpy())
                    else:
                        with torch.no_grad():
                            y = self.batched(chunk)
                except BaseException as e:  # the chunks already done are kept and counted
                    raise RowError(s, out[:s].copy()) from e
                out[s : s + step] = self._batch_result(y, chunk.shape[0])
            return out, "batched"
        out = np.empty(n)
        start = 0
        if self.vectorize:
            for kind, vfn, step in self._vector_paths(X.shape[1]):
                step = _balanced(n - start, step)
                s = start
                try:
                    with torch.no_grad():
                        for s in range(start, n, step):
                            y = vfn(X[s : s + step])
                            out[s : s + step] = np.asarray(
                                torch.as_tensor(y).detach().cpu().double().reshape(-1)
                            )
                    return out, kind
                except Exception as e:  # next path from this chunk; real errors re-raise
                    start = s
                    self._vector_failed(kind, e)
                except BaseException as e:  # Ctrl-C: keep the chunks already done
                    raise RowError(s, out[:s].copy()) from e
        for i in range(start, n):
            try:
                out[i] = self._value(X[i].clone())
            except BaseException as e:  # Ctrl-C too: the rows already done must be kept
                raise RowError(i, out[:i].copy()) from e
        return out, "loop"

    def _vector_paths(self, dim: int) -> list[tuple[str, Callable[[torch.Tensor], Any], int]]:
        """The vectorized ways to evaluate chunks (name, function, rows per chunk), fastest
        first, minus those that failed."""
        paths: list[tuple[str, Callable[[torch.Tensor], Any], int]] = []
        if self._module_batched is not None:
            rows = self.chunk_size or self._module_batched.rows_per_chunk
            paths.append(("module", self._module_batched, rows))
        if not self._vmap_failed:
            paths.append(("vmap", torch.func.vmap(self.fn), self._auto_chunk(dim)))
        return paths

    def _vector_failed(self, kind: str, error: Exception) -> None:
        if kind == "module":  # the direct network path is an optimization: vmap takes over
            self._module_batched = None
            warnings.warn(
                f"objective {self.name!r}: the direct population path for this nn.Sequential "
                f"is off ({type(error).__name__}: {error}); populations use torch.func.vmap "
                "from now on",
                RuntimeWarning,
                stacklevel=5,
            )
            return
        self._vmap_failed = True
        warnings.warn(
            f"objective {self.name!r} cannot be vectorized with torch.func.vmap "
            f"({type(error).__name__}: {error}); populations are evaluated one point at a "
            "time. Pass batched= to evaluate them in one call.",
            RuntimeWarning,
            stacklevel=5,
        )

    def __repr__(self) -> str:
        return f"Objective({self.name!r}, backend={self.backend!r}, gradient={self.gradient!r})"


def _balanced(n: int, step: int) -> int:
    """Rows per chunk for n rows in chunks of at most ``step``, as equal as possible (100 rows
    at 32 per chunk run as 4 x 25, not 3 x 32 + 4: every chunk pays a fixed cost)."""
    if n <= step:
        return max(n, 1)
    return -(-n // -(-n // step))


def _select_parameters(
    module: nn.Module, params: str | Iterable[str | nn.Parameter] | None
) -> list[tuple[str, nn.Parameter]]:
    named = list(module.named_parameters())
    if params is None:
        chosen = [(n, p) for n, p in named if p.requires_grad]
    else:
        items = [params] if isinstance(params, str) else list(params)
        ids: set[int] = set()
        for it in items:
            if isinstance(it, nn.Parameter):
                if not any(p is it for _, p in named):
                    raise ValueError("a parameter passed in params= does not belong to the module")
                ids.add(id(it))
            elif isinstance(it, str):
                hits = [p for n, p in named if fnmatch.fnmatchcase(n, it)]
                if not hits:
                    raise ValueError(
                        f"params pattern {it!r} matches no parameter; names are "
                        f"{[n for n, _ in named]}"
                    )
                ids.update(id(p) for p in hits)
            else:
                raise TypeError(f"params entries must be names, patterns or Parameters, got {it!r}")
        chosen = [(n, p) for n, p in named if id(p) in ids]
    if not chosen:
        raise ValueError("no parameters selected to optimize")
    return chosen
