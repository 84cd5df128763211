"""Blocks and chunks of a generation of the separable NES distributions (``_nes.py``).

A generation's noise ``z`` (its first half when the population is drawn in antithetic pairs,
the second half being ``-z``) is drawn from the run's generator in blocks of rows that depend
on d alone (:func:`~._linear_blocks.block_rows`: one block for the whole generation while
lambda * d is small), and the update's sums ``u @ z`` and ``u @ z^2`` are taken block by
block. Under a run's memory cap (:mod:`optarena.core.memory`) a generation whose buffers
would take more than half the cap is drawn and evaluated in chunks of whole blocks and not
kept: the mirrored half is drawn again from the generator state saved when the generation
began, and so is every block when ``tell`` reduces them. The same operations run on the same
blocks either way, so a seeded run gives the same History, x and fun with and without a cap.
On a noisy objective (the elite of each generation is evaluated twice) a generation is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from ...core.evaluator import Evaluator
from ...core.memory import population_rows
from .._context import RunContext
from ._linear_blocks import block_rows, draw_blocks

if TYPE_CHECKING:
    from ._nes import NESState

__all__ = ["NESBlocks"]


class NESBlocks:
    """Drawing, reducing and evaluating a generation by blocks (a mixin of ``NESMethod``, which
    supplies ``antithetic``, ``squares``, ``start``, ``_tell`` and ``_points``)."""

    antithetic: bool
    squares: bool
    reevaluate_elite: int | None
    start: Any
    _tell: Any
    _points: Any
    checkpoint: Any
    converged: Any
    stop_message: Any

    def _half(self, s: NESState) -> int:
        """Rows of noise drawn per generation (half the population when antithetic)."""
        return s.popsize // 2 if self.antithetic else s.popsize

    def _draw(self, s: NESState, gen: torch.Generator, start: int, stop: int) -> torch.Tensor:
        """Rows [start, stop) of the generation's noise (see :func:`draw_blocks`)."""
        return draw_blocks(stop - start, s.mean, s.mean.dtype, gen, s.device_seed, s.draws, start)

    def _redrawn(self, s: NESState) -> Iterator[tuple[int, torch.Tensor]]:
        """The blocks of a generation evaluated in chunks, drawn again (the same numbers)."""
        assert s.draw is not None
        gen = torch.Generator()
        gen.set_state(s.draw)
        half, step = self._half(s), block_rows(s.mean.numel())
        for a in range(0, half, step):
            yield a, self._draw(s, gen, a, min(half, a + step))

    def _sums(
        self, s: NESState, u: torch.Tensor, noise: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``u @ Z`` and ``u @ Z^2`` (None unless ``squares``) over the generation's noise
        ``Z`` (its rows in the order evaluated). ``noise``: the kept noise (the drawn half), or
        None to draw it again. The same operations either way, by the blocks of the draw."""
        half, step = self._half(s), block_rows(s.mean.numel())
        if half <= step:  # one block: the sums over the whole matrix
            if noise is None:
                noise = next(self._redrawn(s))[1]
            Z = torch.cat((noise, noise.neg())) if self.antithetic else noise
            gz = u @ Z
            return gz, (u @ Z.square_() if self.squares else None)
        if noise is not None:
            blocks: Any = ((a, noise[a : a + step]) for a in range(0, half, step))
        else:
            blocks = self._redrawn(s)
        gz = gz2 = None
        for a, z in blocks:
            b = a + z.shape[0]
            up = u[a:b] - u[half + a : half + b] if self.antithetic else u[a:b]
            part = up @ z
            gz = part if gz is None else gz.add_(part)
            if self.squares:
                us = u[a:b] + u[half + a : half + b] if self.antithetic else up
                part2 = us @ z.square_()
                gz2 = part2 if gz2 is None else gz2.add_(part2)
        assert gz is not None
        return gz, gz2

    # -- a generation in chunks under a memory cap ----------------------------------------------
    def _chunk_rows(self, s: NESState, ctx: RunContext) -> int | None:
        n, lam = s.mean.numel(), s.popsize
        per_row = n * s.mean.element_size() * 4  # noise, point, its clipped copy, the copy
        step = block_rows(n)
        rows = population_rows(per_row, step, lam)
        return None if rows >= lam else max(step, rows // step * step)  # whole blocks

    def _chunked_generation(
        self, s: NESState, oracle: Evaluator, ctx: RunContext, rows: int, user_mode: bool
    ) -> NESState:
        return self._tell(s, self._in_chunks(s, oracle, ctx, rows, user_mode), ctx, None)

    def _in_chunks(
        self, s: NESState, oracle: Evaluator, ctx: RunContext, rows: int, user_mode: bool
    ) -> torch.Tensor:
        """Draw and evaluate one generation ``rows`` at a time (whole blocks), keeping only its
        values and the generator state it started from; a mirrored half is drawn again."""
        half = self._half(s)
        s.noise, s.draw = None, ctx.generator.get_state()
        values = []
        signs = (1, -1) if self.antithetic else (1,)
        for sign in signs:
            gen = ctx.generator
            if sign < 0:  # the mirrored rows: the first half's blocks drawn again
                gen = torch.Generator()
                gen.set_state(s.draw)
            for a in range(0, half, rows):
                x = self._points(s, self._draw(s, gen, a, min(half, a + rows)), sign)
                with torch.set_grad_enabled(user_mode):
                    values.append(oracle.values(x.to(ctx.x0.dtype)))
                del x
        return torch.cat(values)
