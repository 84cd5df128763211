"""Blocks and chunks of a linear-memory CMA generation (``_linear_cma.py``).

A generation's samples are drawn, transformed and reduced in blocks of rows that depend on n
alone (:func:`block_rows`). Under a run's memory cap (:mod:`optarena.core.memory`) a generation
whose buffers would take more than half the cap is drawn and evaluated in chunks of whole blocks
and not kept; ``tell`` draws its blocks again from the generator state saved when it began.
On a GPU (x0 on a device other than the CPU) the blocks are drawn there, each from a generator
seeded with the run's device seed, the generation's number and the block's first row, so the
samples never cross from the host and a block can be drawn again without any saved state.
The same operations run on the same blocks either way, so the numbers are the same. On a
noisy objective (the elite of each generation is evaluated twice) a generation is kept whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...core.evaluator import Evaluator
from ...core.memory import population_rows
from .._context import RunContext
from ._cma import F64

if TYPE_CHECKING:
    from ._linear_cma import LinearState

__all__ = ["BlockSampling", "block_rows", "ztype"]

_SEED_MASK = (1 << 63) - 1
Blocks = Iterator[tuple[int, torch.Tensor, Any, torch.Tensor]]  # (first row, z, aux, x)


def block_rows(n: int) -> int:
    """Rows of a generation drawn, transformed and reduced together: at most 16 MiB of
    float64, at least 2 (TPA's mirrored pair lies in the first block)."""
    return max(2, (1 << 21) // max(n, 1))


def ztype(dtype: torch.dtype) -> torch.dtype:
    """The samples' dtype for points of ``dtype`` (float32 unless the points are float64)."""
    return F64 if dtype == F64 else torch.float32


def draw_blocks(
    rows: int,
    like: torch.Tensor,
    dtype: torch.dtype,
    gen: torch.Generator,
    device_seed: int | None,
    draws: int,
    start: int,
) -> torch.Tensor:
    """``rows`` x ``like.numel()`` standard normal samples on ``like``'s device, block by block
    (``start``, a multiple of the block, is the first row's index in the generation): from the
    run's CPU generator ``gen``, moved to the device, or (``device_seed`` set, a centre off the
    CPU) on the device, each block from its own seed (run seed, generation ``draws``, row), so
    that the same blocks can be drawn again and no sample crosses from the host."""
    n, dev = like.numel(), like.device
    step = block_rows(n)
    if device_seed is None:
        z = torch.empty(rows, n, dtype=dtype)
        for a in range(0, rows, step):
            z[a : a + step].normal_(generator=gen)
        return z.to(dev)
    z = torch.empty(rows, n, dtype=dtype, device=dev)
    for a in range(0, rows, step):
        block_gen = torch.Generator(device=dev)
        block_gen.manual_seed(hash((device_seed, draws, start + a)) & _SEED_MASK)
        z[a : a + step].normal_(generator=block_gen)
    return z


@dataclass
class Rows:
    """The (lam, n) squared clipping distances of a generation, by blocks of ``step`` rows:
    kept (``dist``) or drawn again (``redraw``); ``rows @ w`` is what the boundary penalty
    takes of them, on the host. A dataclass of plain fields, so that a saved ask/tell state
    holding one (a generation out) stays plain data."""

    dtype: torch.dtype
    step: int
    dist: torch.Tensor | None = None
    redraw: Callable[[], Iterator[torch.Tensor]] | None = None

    def __matmul__(self, w: torch.Tensor) -> torch.Tensor:
        if self.redraw is not None:
            blocks: Iterator[torch.Tensor] = self.redraw()
        else:
            assert self.dist is not None
            blocks = (self.dist[a : a + self.step] for a in range(0, self.dist.shape[0], self.step))
        return torch.cat([b @ w for b in blocks]).to("cpu")


class BlockSampling:
    """Drawing, clipping and reducing a generation by blocks, and the run loop that evaluates
    a generation in chunks under a memory cap (a mixin of ``LinearCMA``, which supplies
    ``_setup``, ``_prepare``, ``_sample``, ``_sums`` and ``_tell``)."""

    aux_rows: int = 0
    _setup: Any
    _prepare: Any
    _sample: Any
    _sums: Any
    _tell: Any

    def _generate(
        self,
        s: LinearState,
        gen: torch.Generator,
        start: int,
        stop: int,
        zt: torch.dtype,
        prep: Any,
        points: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        """Samples z, points x and per-block data of rows [start, stop) of the generation,
        drawn from ``gen`` block by block (``start`` is a multiple of the block). Without
        ``points`` x is ``z`` and only the per-block data is computed."""
        step = block_rows(s.mean.numel())
        z = draw_blocks(stop - start, s.mean, zt, gen, s.device_seed, s.draws, start)
        sample = points or self.aux_rows > 0
        x = torch.empty_like(z) if sample else z
        aux = []
        for a in range(0, stop - start, step):
            self._prepare(s, z[a : a + step], start + a, prep)
            aux.append(self._sample(s, z[a : a + step], x[a : a + step], prep) if sample else None)
        return z, x, aux

    def _clip(self, s: LinearState, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` clipped into the box and the squared distances (None when nothing moved)."""
        if s.lower is None or s.upper is None:
            return x, None
        xc = torch.clamp(x, s.lower.to(x.dtype), s.upper.to(x.dtype))
        if torch.equal(xc, x):
            return x, None
        return xc, (xc - x).square_()

    def _redrawn(self, s: LinearState, zt: torch.dtype, points: bool) -> Blocks:
        """The blocks of a generation evaluated in chunks, drawn again (same numbers)."""
        gen = torch.Generator()
        if s.device_seed is None:
            gen.set_state(s.draw)
        lam, step = s.strategy.lam, block_rows(s.mean.numel())
        prep = self._setup(s, zt)
        for a in range(0, lam, step):
            z, x, aux = self._generate(s, gen, a, min(lam, a + step), zt, prep, points)
            yield a, z, aux[0], x

    def _kept(self, s: LinearState) -> Blocks:
        """The blocks of a generation asked whole (the clipping distances in place of x)."""
        assert s.z is not None and s.aux is not None
        step = block_rows(s.mean.numel())
        for i, a in enumerate(range(0, s.z.shape[0], step)):
            yield a, s.z[a : a + step], s.aux[i], s.z

    def _reduce(self, s: LinearState, order: np.ndarray, zt: torch.dtype) -> list[torch.Tensor]:
        """The variant's weighted sums over the mu best samples, block by block (best first
        within a block), so that a generation kept whole and one drawn again agree."""
        st, dev = s.strategy, s.mean.device
        sel = torch.from_numpy(order[: st.mu].copy())
        if s.z is not None and block_rows(s.mean.numel()) >= st.lam:  # one block
            idx = sel.to(dev)
            aux = None if s.aux is None or s.aux[0] is None else s.aux[0][idx]
            return self._sums(s, s.z[idx], aux, st.wpos)
        total: list[torch.Tensor] | None = None
        for a, z, aux, _ in self._kept(s) if s.z is not None else self._redrawn(s, zt, False):
            pos = ((sel >= a) & (sel < a + z.shape[0])).nonzero().squeeze(1)
            if pos.numel() == 0:
                continue
            idx = (sel[pos] - a).to(dev)
            part = self._sums(s, z[idx], None if aux is None else aux[idx], st.wpos[pos.to(dev)])
            total = part if total is None else [t.add_(p) for t, p in zip(total, part, strict=True)]
        assert total is not None
        return total

    # -- a generation in chunks under a memory cap ----------------------------------------------
    def _chunk_rows(self, s: LinearState, ctx: RunContext) -> int | None:
        n, lam = s.mean.numel(), s.strategy.lam
        zt = ztype(ctx.x0.dtype)
        per_row = n * zt.itemsize * (4 + self.aux_rows)  # z, x, its clip, the copy, aux
        rows = population_rows(per_row, block_rows(n), lam)
        return None if rows >= lam else rows  # None: the generation fits, asked whole

    def _chunked_generation(
        self, s: LinearState, oracle: Evaluator, ctx: RunContext, rows: int, user_mode: bool
    ) -> LinearState:
        return self._tell(s, self._in_chunks(s, oracle, ctx, rows, user_mode), ctx)

    def _in_chunks(
        self, s: LinearState, oracle: Evaluator, ctx: RunContext, rows: int, user_mode: bool
    ) -> torch.Tensor:
        """Draw and evaluate one generation ``rows`` at a time, keeping only its values and
        the generator state it started from (``tell`` draws it again)."""
        zt, lam = ztype(ctx.x0.dtype), s.strategy.lam
        s.draw = None if s.device_seed is not None else ctx.generator.get_state()
        prep = self._setup(s, zt)
        clipped, values = False, []
        for a in range(0, lam, rows):
            z, x, _ = self._generate(s, ctx.generator, a, min(lam, a + rows), zt, prep)
            del z
            x, dist = self._clip(s, x)
            clipped, dist = clipped or dist is not None, None
            with torch.set_grad_enabled(user_mode):
                values.append(oracle.values(x.to(ctx.x0.dtype)))
            del x
        s.violation = None
        if clipped:

            def distances() -> Iterator[torch.Tensor]:
                for _, _, _, x in self._redrawn(s, zt, True):
                    d = self._clip(s, x)[1]
                    yield torch.zeros_like(x) if d is None else d

            s.violation = Rows(zt, block_rows(s.mean.numel()), redraw=distances)
        return torch.cat(values)
