"""Objectives over the parameters of an ``nn.Module``: what ``Objective.from_module`` builds.

The selected parameters are one flat vector (their ``named_parameters()`` order, each
row-major); the loss of the module at a vector is computed through
``torch.func.functional_call``, so the module itself is untouched until :meth:`write_back`.
A feed-forward ``nn.Sequential`` also gets the direct population path of
:mod:`optarena.core.module_batch`.

A vector in another floating dtype than the parameters (``minimize(eval_dtype=...)``) runs the
forward pass in that dtype: the module's other floating parameters and buffers and the
floating tensors among ``args``/``kwargs`` are cast to it, and the output is cast back to the
parameters' dtype before the loss.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .module_batch import sequential_batched

if TYPE_CHECKING:
    from .objective import Objective

__all__ = ["ModuleParameters", "module_objective", "select_parameters"]


class ModuleParameters:
    """The selected parameters of a module and the map between them and the flat vector."""

    def __init__(self, module: nn.Module, selected: list[tuple[str, nn.Parameter]]) -> None:
        self.module = module
        self.names = tuple(n for n, _ in selected)
        self.shapes = tuple(p.shape for _, p in selected)
        self.sizes = [int(math.prod(s)) for s in self.shapes]

    def unflatten(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of the flat vector ``x``, one per selected parameter, by name."""
        out: dict[str, torch.Tensor] = {}
        start = 0
        for n, shp, size in zip(self.names, self.shapes, self.sizes, strict=True):
            out[n] = x[start : start + size].view(shp)
            start += size
        return out

    def write_back(self, x: torch.Tensor | np.ndarray, like: torch.Tensor) -> None:
        """Copy the flat vector ``x`` (cast to the dtype of ``like``, the parameters' flat
        vector) into the module's selected parameters."""
        xt = torch.as_tensor(x).to(dtype=like.dtype).reshape(-1)
        if xt.numel() != like.numel():
            raise ValueError(f"x has {xt.numel()} entries, the parameters have {like.numel()}")
        named = dict(self.module.named_parameters())
        with torch.no_grad():
            for n, v in self.unflatten(xt).items():
                named[n].copy_(v.to(named[n].device))


def module_objective(
    cls: type[Objective],
    module: nn.Module,
    loss: Callable[..., torch.Tensor],
    *,
    args: Sequence[Any] | Any,
    target: Any,
    kwargs: dict[str, Any] | None,
    params: str | nn.Module | Iterable[str | nn.Parameter | nn.Module] | None,
    name: str | None,
    options: dict[str, Any],
) -> Objective:
    """An Objective of class ``cls`` minimizing ``loss(module(*args, **kwargs)[, target])``
    over the parameters ``params`` selects (see ``Objective.from_module``)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_module needs an nn.Module, got {type(module).__name__}")
    if not callable(loss):
        raise TypeError("loss must be callable: loss(output) or loss(output, target)")
    selected = select_parameters(module, params)
    call_args = tuple(args) if isinstance(args, list | tuple) else (args,)
    call_kwargs = dict(kwargs or {})
    dtypes = {p.dtype for _, p in selected}
    if len(dtypes) != 1:
        raise ValueError(
            f"selected parameters must share one dtype, got {sorted(map(str, dtypes))}"
        )
    bound = ModuleParameters(module, selected)
    unflatten = bound.unflatten
    if not options.get("noisy"):
        _warn_if_random(module)
    (own,) = dtypes

    def fn(x: torch.Tensor) -> torch.Tensor:
        if x.dtype != own and x.dtype.is_floating_point:
            return _in_dtype(module, unflatten(x), call_args, call_kwargs, own, loss, target)
        # copies of the buffers: a module in train mode updates them (BatchNorm's running
        # statistics), and the module is the user's until write_back
        state = {n: b.clone() for n, b in module.named_buffers()}
        state.update(unflatten(x))
        output = torch.func.functional_call(module, state, call_args, call_kwargs)
        return loss(output) if target is None else loss(output, target)

    with torch.no_grad():
        x0 = torch.cat([p.detach().reshape(-1) for _, p in selected]).clone()
    obj = cls(fn, name=name or type(module).__name__, default_x0=x0, **options)
    obj._parameters = bound
    if obj.batched is None and obj.vectorize:
        obj._module_batched = sequential_batched(
            module, bound.names, bound.shapes, call_args, call_kwargs, loss, target
        )
    return obj


def _warn_if_random(module: nn.Module) -> None:
    """Dropout active in train mode makes every evaluation a random draw: say so, once."""
    drops = [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    if module.training and any(m.training and m.p > 0 for m in drops):
        warnings.warn(
            f"{type(module).__name__} is in train mode with dropout: each evaluation draws "
            "its own dropout mask, so values are noisy and the best is a lucky draw. Call "
            "module.eval() before from_module, or declare Objective.from_module(..., "
            "noisy=True) to have the best point re-evaluated",
            RuntimeWarning,
            stacklevel=3,
        )


def _in_dtype(
    module: nn.Module,
    chosen: dict[str, torch.Tensor],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    own: torch.dtype,
    loss: Callable[..., torch.Tensor],
    target: Any,
) -> torch.Tensor:
    """The loss with the forward pass in the dtype of ``chosen`` (the other floating
    parameters, buffers and inputs cast to it), the output cast back to ``own``."""
    low = next(iter(chosen.values())).dtype

    def cast(v: Any) -> Any:
        return v.to(low) if isinstance(v, torch.Tensor) and v.is_floating_point() else v

    state = {n: cast(t) for n, t in module.named_parameters()}
    state.update((n, cast(t).clone()) for n, t in module.named_buffers())  # see fn: copies
    state.update(chosen)
    output = torch.func.functional_call(
        module, state, tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}
    )
    output = output.to(own) if isinstance(output, torch.Tensor) else output
    return loss(output) if target is None else loss(output, target)


def select_parameters(
    module: nn.Module, params: str | nn.Module | Iterable[str | nn.Parameter | nn.Module] | None
) -> list[tuple[str, nn.Parameter]]:
    """The ``(name, parameter)`` pairs ``params`` selects, in ``named_parameters()`` order:
    every parameter that requires grad for None, else those matching a name, a glob pattern,
    the name of a submodule (``"head"``: every parameter under it, as ``"head.*"``), being
    one of the given Parameters or under one of the given submodules (``params=model[2]``)."""
    named = list(module.named_parameters())
    if params is None:
        chosen = [(n, p) for n, p in named if p.requires_grad]
    else:
        single = isinstance(params, str | nn.Module)
        items = [params] if single else list(params)  # type: ignore[arg-type]
        ids: set[int] = set()
        for it in items:
            if isinstance(it, nn.Module):  # a submodule: every parameter under it
                own = [p for p in it.parameters() if any(p is q for _, q in named)]
                if not own:
                    raise ValueError(
                        f"the {type(it).__name__} passed in params= has no parameter of the "
                        "module (is it a submodule of it?)"
                    )
                ids.update(id(p) for p in own)
            elif isinstance(it, nn.Parameter):
                if not any(p is it for _, p in named):
                    raise ValueError("a parameter passed in params= does not belong to the module")
                ids.add(id(it))
            elif isinstance(it, str):
                hits = [p for n, p in named if fnmatch.fnmatchcase(n, it) or n.startswith(it + ".")]
                if not hits:
                    raise ValueError(
                        f"params pattern {it!r} matches no parameter; names are "
                        f"{[n for n, _ in named]}"
                    )
                ids.update(id(p) for p in hits)
            else:
                raise TypeError(
                    "params entries must be names, patterns, Parameters or submodules, got "
                    f"{type(it).__name__}"
                )
        chosen = [(n, p) for n, p in named if id(p) in ids]
    if not chosen:
        raise ValueError("no parameters selected to optimize")
    return chosen
