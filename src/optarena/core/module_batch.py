"""Population forward passes of feed-forward ``nn.Sequential`` networks, one GEMM per layer.

``torch.func.vmap`` over ``functional_call`` turns a population of networks into batched
matrix products with the candidates' weights as the batch: for a 32-30-1 MLP on 256 inputs it
reaches only 1.0-1.7x the one-candidate loop. Here the first layer multiplies the stacked
weights of every candidate of a chunk by the shared inputs in one GEMM, later layers use
``bmm``, and activations are kept as ``(candidates, features, batch)`` so that no copy is made
between layers (``benchmarks/throughput.py``, "from_module" column in BENCHMARKS.md).

Only what this path reproduces (to rounding: the products are summed in another order, and
``nn.Tanh`` is computed on CPU as 2 sigmoid(2h) - 1, 2.4x faster than ``torch.tanh`` there,
within 2e-7) is accepted: an ``nn.Sequential`` (nested ones too) of ``nn.Linear`` and
parameter-free elementwise layers, one 2-D input tensor, no hooks. Anything else returns
``None`` from :func:`sequential_batched` and the Objective uses ``vmap``.

Candidates in another floating dtype than the module (``minimize(eval_dtype=...)``, e.g.
bfloat16) run the whole forward pass in that dtype: the shared inputs and the parameters that
are not optimized are cast to it at each call; the output is cast back to the inputs' dtype
before the loss, which is computed as usual.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _module_globals

__all__ = ["sequential_batched"]

# Parameter-free layers that act on each entry alone, so any layout of the activations works.
_ELEMENTWISE: frozenset[type[nn.Module]] = frozenset(
    (
        nn.Identity,
        nn.ReLU,
        nn.ReLU6,
        nn.LeakyReLU,
        nn.ELU,
        nn.CELU,
        nn.SELU,
        nn.GELU,
        nn.SiLU,
        nn.Mish,
        nn.Sigmoid,
        nn.Tanh,
        nn.Softplus,
        nn.Softsign,
        nn.Hardtanh,
        nn.Hardsigmoid,
        nn.Hardswish,
        nn.LogSigmoid,
        nn.Tanhshrink,
        nn.Softshrink,
        nn.Hardshrink,
        nn.Threshold,
    )
)
_DROPOUT: frozenset[type[nn.Module]] = frozenset(
    (
        nn.Dropout,
        nn.AlphaDropout,
        nn.FeatureAlphaDropout,
    )
)


def _flatten(module: nn.Module) -> list[nn.Module] | None:
    """The layers of a (nested) Sequential in call order, or None if it is anything else.

    Run at every call (the module may have changed), so it is kept lean: forward hooks are
    what could change a forward value; backward hooks cannot.
    """
    if type(module) is not nn.Sequential or module._forward_hooks or module._forward_pre_hooks:
        return None
    layers: list[nn.Module] = []
    for child in module._modules.values():
        kind = type(child)
        if child._forward_hooks or child._forward_pre_hooks:
            return None
        if kind is nn.Linear or kind in _ELEMENTWISE:
            layers.append(child)
        elif kind is nn.Sequential:
            inner = _flatten(child)
            if inner is None:
                return None
            layers.extend(inner)
        elif kind in _DROPOUT and not child.training:
            continue  # identity in eval mode; training-mode dropout samples: not reproduced
        else:
            return None
    return layers


def _global_hooks() -> bool:
    return bool(
        getattr(_module_globals, "_global_forward_hooks", None)
        or getattr(_module_globals, "_global_forward_pre_hooks", None)
    )


def _tanh(h: torch.Tensor) -> torch.Tensor:
    """tanh on CPU without ``torch.tanh``, which is slow there (2.1 ns per entry).

    float32: 2 sigmoid(2h) - 1, 5x faster, absolute error under 2e-7 (3 units in the last
    place at 1; near 0 the error is absolute, not relative). float64: expm1(2h) / (expm1(2h)
    + 2), 1.9x faster, relative error under 4e-16. Other dtypes and devices use torch.tanh.
    """
    if h.device.type != "cpu":
        return torch.tanh(h)
    if h.dtype == torch.float32:
        s = torch.mul(h, 2)  # a new tensor: h may be the caller's input
        return s.sigmoid_().mul_(2).sub_(1)
    if h.dtype == torch.float64:
        u = torch.clamp(h, -20.0, 20.0).mul_(2).expm1_()  # tanh(20) is 1 in float64
        return u.div_(u + 2)
    return torch.tanh(h)


_Slot = tuple[int, int, torch.Size]  # (start, stop, shape) of a parameter in the flat vector
_Plan = list[tuple[nn.Module, _Slot | None, _Slot | None]]


class ModuleChanged(RuntimeError):
    """The module is no longer one the direct path reproduces (layers, hooks, modes)."""


def _signature(layers: list[nn.Module]) -> tuple[int, ...]:
    """What the plan depends on: the layers and the Linear layers' parameters, by identity."""
    sig = [id(m) for m in layers]
    for m in layers:
        if type(m) is nn.Linear:
            sig += (id(m.weight), id(m.bias))
    return tuple(sig)


def _make_plan(module: nn.Module, layers: list[nn.Module], slots: dict[str, _Slot]) -> _Plan | None:
    """Each layer with the flat-vector slots of its weight and bias (None: read the module);
    None when there is no Linear layer or an optimized parameter is not a Linear's."""
    if not any(type(m) is nn.Linear for m in layers):
        return None
    name_of = {id(p): n for n, p in module.named_parameters()}
    plan: _Plan = []
    seen: set[str] = set()
    for layer in layers:
        if type(layer) is not nn.Linear:
            plan.append((layer, None, None))
            continue
        w_name = name_of.get(id(layer.weight), "")
        b_name = "" if layer.bias is None else name_of.get(id(layer.bias), "")
        seen.update(n for n in (w_name, b_name) if n in slots)
        plan.append((layer, slots.get(w_name), slots.get(b_name)))
    if seen != set(slots):  # an optimized parameter this path would not vary
        return None
    return plan


class SequentialBatch:
    """``self(X) -> (n,)``: the loss of every row of ``X`` as the network's parameters.

    The module is read at each call, as ``functional_call`` does: parameters that are not
    optimized take their current values, and a changed layer list or parameter object gets a
    new plan (or :class:`ModuleChanged` when the module is no longer supported, and the
    Objective falls back to vmap). ``rows_per_chunk`` keeps the widest activation of one
    chunk around 512k entries (2 MiB in float32), where the chunk's fixed cost is amortized
    and the activations still sit in cache.
    """

    def __init__(
        self,
        module: nn.Module,
        layers: list[nn.Module],
        plan: _Plan,
        slots: dict[str, _Slot],
        inputs: torch.Tensor,
        per_sample: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.module = module
        self.slots = slots
        self.inputs = inputs
        self.per_sample = per_sample
        self._set_plan(plan, _signature(layers))

    def _set_plan(self, plan: _Plan, signature: tuple[int, ...]) -> None:
        self.plan, self._signature = plan, signature
        linear = [layer for layer, _, _ in plan if type(layer) is nn.Linear]
        widest = max(layer.out_features for layer in linear)
        self.rows_per_chunk = max(1, min(4096, (1 << 19) // max(1, widest * self.inputs.shape[0])))
        self._pair = max(layer.in_features + layer.out_features for layer in linear)
        self._dim = sum(hi - lo for lo, hi, _ in self.slots.values())

    def row_bytes(self, itemsize: int) -> int:
        """Estimated working memory of one candidate in a chunk, in bytes: its weights (the
        first layer reads them as one copy) and the input and output activations of the
        widest layer over the data batch (elementwise layers make one of the same size)."""
        return itemsize * (self._dim + 2 * self._pair * self.inputs.shape[0])

    def _current_plan(self) -> _Plan:
        if _global_hooks():
            raise ModuleChanged("global module hooks are set; the direct path would skip them")
        layers = _flatten(self.module)
        if layers is None:
            raise ModuleChanged("the module is no longer a plain feed-forward Sequential")
        sig = _signature(layers)
        if sig != self._signature:
            plan = _make_plan(self.module, layers, self.slots)
            if plan is None:
                raise ModuleChanged("the optimized parameters are no longer Linear layers")
            self._set_plan(plan, sig)
        return self.plan

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        plan = self._current_plan()
        P = X.shape[0]
        h = self.inputs.t()  # (features, batch), shared by every candidate
        own = h.dtype  # the loss gets the output in the inputs' dtype
        low = X.dtype != own and X.dtype.is_floating_point
        if low:  # the forward pass in the candidates' dtype (eval_dtype)
            h = h.to(X.dtype)
        shared = True
        for layer, w_at, b_at in plan:
            if type(layer) is nn.Tanh:
                h = _tanh(h)
                continue
            if type(layer) is not nn.Linear:
                h = layer(h)
                continue
            if w_at is None:
                weight = layer.weight.to(h.dtype) if low else layer.weight
                h = torch.matmul(weight, h)  # (out, B) or (P, out, B)
            else:
                lo, hi, (m, k) = w_at
                W = X[:, lo:hi].reshape(P, m, k)
                # with shared inputs, one GEMM for every candidate: (P*out, in) @ (in, B)
                h = (W.reshape(P * m, k) @ h).view(P, m, -1) if shared else torch.bmm(W, h)
                shared = False
            if b_at is not None:  # h is this layer's own product: add in place if shapes allow
                lo, hi, _ = b_at
                b = X[:, lo:hi].unsqueeze(-1)
                h = h.add_(b) if h.ndim == 3 else h + b
                shared = False
            elif layer.bias is not None:
                bias = layer.bias.to(h.dtype) if low else layer.bias
                h = h.add_(bias.unsqueeze(-1))
        out = h.transpose(-1, -2)
        return self.per_sample(out.to(own) if low else out)


def sequential_batched(
    module: nn.Module,
    names: Sequence[str],
    shapes: Sequence[torch.Size],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    loss: Callable[..., torch.Tensor],
    target: Any,
) -> SequentialBatch | None:
    """The direct population path for ``loss(functional_call(module, x, args)[, target])``.

    ``names``/``shapes`` are the optimized parameters in flat-vector order. Returns None when
    the module or the call is outside what this path reproduces exactly.
    """
    layers = _flatten(module)
    if layers is None or kwargs or len(args) != 1:
        return None
    (inputs,) = args
    if not isinstance(inputs, torch.Tensor) or inputs.ndim != 2:
        return None
    slots: dict[str, _Slot] = {}
    start = 0
    for n, shp in zip(names, shapes, strict=True):
        size = int(math.prod(shp))
        slots[n] = (start, start + size, shp)
        start += size
    plan = _make_plan(module, layers, slots)
    if plan is None:
        return None

    def one(o: torch.Tensor) -> torch.Tensor:
        return loss(o) if target is None else loss(o, target)

    return SequentialBatch(module, layers, plan, slots, inputs, torch.func.vmap(one))
