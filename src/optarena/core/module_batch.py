"""Population forward passes of feed-forward ``nn.Sequential`` networks, one GEMM per layer.

``torch.func.vmap`` over ``functional_call`` turns a population of networks into batched
matrix products with the candidates' weights as the batch: for a 32-30-1 MLP on 256 inputs it
reaches only 1.0-1.7x the one-candidate loop. Here the first layer multiplies the stacked
weights of every candidate of a chunk by the shared inputs in one GEMM, later layers use
``bmm``, and activations are kept as ``(candidates, features, batch)`` so that no copy is made
between layers (``benchmarks/throughput.py``, "from_module" column in BENCHMARKS.md).

What the time goes to, per candidate of that MLP (float32, one thread, an AVX-512 Xeon):
the first layer's GEMM (about 4 us, near the core's peak) and tanh over its 7,680
activations (2.5 us) are the work; the rest was overhead, removed as follows.

* Each layer writes into a work buffer kept between chunks and calls (:class:`Workspace`):
  a fresh 1.5 MB tensor per chunk cost more in page faults than the arithmetic written to it
  (about 200 us per chunk of 50 candidates). Biases and elementwise layers with an in-place
  twin (``tanh_``, ``sigmoid_``, ``relu_``) then work in place; a bias added by ``addmm`` /
  ``baddbmm`` measured no faster than ``add_`` on the GEMM's output.
* ``nn.Tanh`` is ``torch.tanh`` itself: in place on a reused buffer it measured 2.5x faster
  than 2 sigmoid(2h) - 1 in float32 and 3.5x faster than the expm1 form in float64 with
  torch 2.13's kernels (an older build on another CPU had measured the reverse). The values
  are torch's own, on every CPU.
* ``nn.functional.mse_loss`` / ``l1_loss`` and ``nn.MSELoss`` / ``nn.L1Loss`` are computed
  directly in place (:mod:`.module_loss`): the vmapped loss took 0.7 us per candidate, the
  direct one 0.16 us.
* Chunks keep the widest activation near 512k entries: with reused buffers, chunks of 17 to
  136 rows of this MLP measured the same, 8 rows 25 % slower (per-chunk Python overhead).

Only what this path reproduces to rounding (the products and the loss are summed in another
order) is accepted: an ``nn.Sequential`` (nested ones too) of ``nn.Linear`` and
parameter-free elementwise layers, one 2-D input tensor, no hooks. Anything else returns
``None`` from :func:`sequential_batched` and the Objective uses ``vmap``. The inputs are never
written to, and no value returned shares memory with a work buffer.

Candidates in another floating dtype than the module (``minimize(eval_dtype=...)``, e.g.
bfloat16) run the whole forward pass in that dtype: the shared inputs and the parameters that
are not optimized are cast to it at each call; the output is cast back to the inputs' dtype
before the loss, which is computed as usual.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _module_globals

from .module_loss import direct_loss

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


# Elementwise layers whose forward is this tensor method's out-of-place twin (same kernel).
_IN_PLACE: dict[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    nn.Tanh: torch.Tensor.tanh_,
    nn.Sigmoid: torch.Tensor.sigmoid_,
    nn.ReLU: torch.Tensor.relu_,
}
# Widest activation of one chunk, in entries (see SequentialBatch).
_CHUNK_ENTRIES = 1 << 19
# Work buffers above this size are not kept between calls (a large chunk_size= would pin them).
_KEEP_BYTES = 8 << 20


class Workspace(threading.local):
    """Work buffers of one thread, one per layer step, reused by every chunk and call.

    A fresh activation tensor of a megabyte or so is mapped anew from the system at each
    allocation: writing it costs more in page faults than the arithmetic. Threads sharing an
    Objective (a ``ThreadPoolExecutor``) each get their own buffers; a buffer too small, of
    another dtype or device is replaced (so a new plan may leave another thread's in place).
    """

    def __init__(self) -> None:
        self.buffers: dict[int, torch.Tensor] = {}

    def clear(self) -> None:
        """Drop this thread's buffers (the plan changed)."""
        self.buffers.clear()

    def get(self, step: int, numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A flat tensor of ``numel`` entries for layer ``step`` (its previous content is
        garbage): the kept buffer's head when it fits, else a new one, kept unless large."""
        buf = self.buffers.get(step)
        if buf is not None and buf.numel() >= numel and buf.dtype == dtype and buf.device == device:
            return buf[:numel]
        buf = torch.empty(numel, dtype=dtype, device=device)
        if numel * buf.element_size() <= _KEEP_BYTES:
            self.buffers[step] = buf
        return buf

    def holds(self, t: torch.Tensor) -> bool:
        """True when ``t`` shares memory with a kept buffer (it must not leave the call)."""
        ptr = t.untyped_storage().data_ptr()
        return any(b.untyped_storage().data_ptr() == ptr for b in self.buffers.values())


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
    chunk around 512k entries (2 MiB in float32). ``per_sample(out)`` turns the chunk's
    outputs ``(rows, batch, features)`` into its losses and may overwrite ``out``, a tensor
    of this call.
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
        self._work = Workspace()
        self._set_plan(plan, _signature(layers))

    def _set_plan(self, plan: _Plan, signature: tuple[int, ...]) -> None:
        self.plan, self._signature = plan, signature
        linear = [layer for layer, _, _ in plan if type(layer) is nn.Linear]
        widest = max(layer.out_features for layer in linear)
        self.rows_per_chunk = max(
            1, min(4096, _CHUNK_ENTRIES // max(1, widest * self.inputs.shape[0]))
        )
        self._outs = sum(layer.out_features for layer in linear)
        self._widest = widest
        self._dim = sum(hi - lo for lo, hi, _ in self.slots.values())
        self._work.clear()

    def row_bytes(self, itemsize: int) -> int:
        """Estimated working memory of one candidate in a chunk, in bytes: its weights (the
        first layer reads them as one copy), the output of every Linear layer over the data
        batch (each has its own work buffer) and one more of the widest (an elementwise layer
        without an in-place form makes a new tensor)."""
        return itemsize * (self._dim + (self._outs + self._widest) * self.inputs.shape[0])

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
        B = h.shape[1]
        own = h.dtype  # the loss gets the output in the inputs' dtype
        low = X.dtype != own and X.dtype.is_floating_point
        if low:  # the forward pass in the candidates' dtype (eval_dtype)
            h = h.to(X.dtype)
        work = self._work
        shared = True  # h is the same for every candidate: (features, batch)
        mine = low  # h belongs to this call (a new tensor or a work buffer): may be overwritten
        for step, (layer, w_at, b_at) in enumerate(plan):
            kind = type(layer)
            if kind is not nn.Linear:
                inplace = _IN_PLACE.get(kind)
                if inplace is not None and mine:
                    inplace(h)
                elif kind is not nn.Identity:
                    h = layer(h if mine or not getattr(layer, "inplace", False) else h.clone())
                    mine = True
                continue
            m, k = layer.out_features, layer.in_features
            if w_at is not None:
                lo, hi, _ = w_at
                W = X[:, lo:hi].reshape(P, m, k)
                b = None if b_at is None else X[:, b_at[0] : b_at[1]]
                out = work.get(step, P * m * B, h.dtype, h.device)
                out = out.view(P, m, B)
                if shared:  # one GEMM for every candidate: (P*out, in) @ (in, B)
                    Wc = work.get(-1 - step, P * m * k, h.dtype, h.device).view(P, m, k)
                    torch.mm(Wc.copy_(W).view(P * m, k), h, out=out.view(P * m, B))
                else:
                    torch.bmm(W, h, out=out)
                if b is not None:  # in place: as fast as addmm's bias, and no expanded copy
                    out.add_(b.unsqueeze(-1))
                h = out
                shared, mine = False, True
                if b is None and layer.bias is not None:  # a bias that is not optimized
                    h.add_((layer.bias.to(h.dtype) if low else layer.bias).unsqueeze(-1))
                continue
            weight = layer.weight.to(h.dtype) if low else layer.weight
            h = torch.matmul(weight, h)  # (out, B) or (P, out, B): a new tensor
            mine = True
            if b_at is not None:
                h = h + X[:, b_at[0] : b_at[1]].unsqueeze(-1)
                shared = False
            elif layer.bias is not None:
                h.add_((layer.bias.to(h.dtype) if low else layer.bias).unsqueeze(-1))
        out = h.transpose(-1, -2)
        values = self.per_sample(out.to(own) if low else out)
        if work.holds(values):  # a loss that returns a view of its input: never a work buffer
            values = values.clone()
        return values

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_work"] = None  # buffers are per process and thread
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._work = Workspace()


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

    generic = torch.func.vmap(one)
    per_sample = direct_loss(loss, target, inputs.dtype, generic) or generic
    return SequentialBatch(module, layers, plan, slots, inputs, per_sample)
