"""Shared parts of the separable, linear-memory search distributions (SNES, PGPE, OpenAI-ES).

Each method keeps a centre and one standard deviation per coordinate, draws its population
from the run's torch generator, and turns the values into rank-based weights: nothing here
holds a d x d matrix, so memory is O(popsize * d) (the noise of one generation) and a
generation costs O(popsize * d); under a memory cap a generation is drawn and evaluated in
chunks and not kept (``_nes_blocks.py``). Only ranks of values enter the updates and the
stopping tests, so adding a constant to f searches exactly the same points.

Box bounds: a sample is clipped into the box and the clipped point is evaluated; the update
sees the sample's noise with the clipped point's value (the distribution learns which
directions lead to good points in the box), and the centre is projected back into the box
after each update. Restarts (IPOP, as for CMA-ES) start a new run when the distribution has
collapsed, the values are flat, or the best value of the run has stagnated.

Host round-trips (a run on a GPU): the values of a generation and the update's statistics
(the largest sigma over its start, PGPE's norms) are read on the host together, once per
generation (twice for PGPE, whose ClipUp step needs the gradient's norm before the velocity's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from .._base import PopulationMethod, RunContext
from .._params import param
from ._nes_blocks import NESBlocks
from ._restarts import RestartBook, Restarting, next_start

__all__ = [
    "HostReads",
    "NESMethod",
    "NESState",
    "adam_step",
    "centered_ranks",
    "clipup_step",
    "nes_utilities",
]

#: Generations with all values equal after which a run ends (pycma's ``tolflatfitness``).
FLAT_GENERATIONS = 10


def centered_ranks(f: torch.Tensor) -> torch.Tensor:
    """Utilities in [-0.5, 0.5], +0.5 for the lowest value (the centred rank transformation
    of Salimans et al. 2017); ties are ranked by index, so the result depends on
    the order of the values only."""
    lam = f.numel()
    order = torch.argsort(f, stable=True)
    u = torch.empty(lam, dtype=torch.float64, device=f.device)
    if lam == 1:
        return u.fill_(0.0)
    u[order] = 0.5 - torch.arange(lam, dtype=torch.float64, device=f.device) / (lam - 1)
    return u


def nes_utilities(f: torch.Tensor) -> torch.Tensor:
    """NES utilities by rank (fitness shaping of Wierstra et al., JMLR 2014; SNES): the k-th best
    of lambda gets max(0, ln(lambda/2 + 1) - ln k) / sum - 1/lambda; they sum to zero."""
    lam = f.numel()
    k = torch.arange(1, lam + 1, dtype=torch.float64, device=f.device)
    w = (math.log(lam / 2 + 1) - torch.log(k)).clamp_min_(0.0)
    w = w / w.sum() - 1.0 / lam
    u = torch.empty(lam, dtype=torch.float64, device=f.device)
    u[torch.argsort(f, stable=True)] = w
    return u


def clipup_step(
    velocity: torch.Tensor, grad: torch.Tensor, step: float, momentum: float, max_speed: float
) -> torch.Tensor:
    """ClipUp (Toklu et al., PPSN 2020): the velocity after one step along the
    normalized ascent direction ``grad``, its norm clipped at ``max_speed`` (in place)."""
    clipup_push(velocity, grad, float(torch.linalg.vector_norm(grad)), step, momentum)
    return clipup_clip(velocity, float(torch.linalg.vector_norm(velocity)), max_speed)


def clipup_push(
    velocity: torch.Tensor, grad: torch.Tensor, gnorm: float, step: float, momentum: float
) -> torch.Tensor:
    """ClipUp's momentum step ``v <- m v + step g / ||g||`` (in place; ``gnorm`` = ||g||)."""
    velocity.mul_(momentum)
    if gnorm > 0:
        velocity.add_(grad, alpha=step / gnorm)  # v <- m v + alpha g / ||g||
    return velocity


def clipup_clip(velocity: torch.Tensor, vnorm: float, max_speed: float) -> torch.Tensor:
    """ClipUp's speed limit: ``v <- v_max v / ||v||`` when ``||v|| = vnorm > v_max``."""
    if vnorm > max_speed:
        velocity.mul_(max_speed / vnorm)  # v <- v_max v / ||v||
    return velocity


class HostReads:
    """A generation's values and the update's statistics read on the host in as few
    round-trips as possible: the values go with the first read (``values`` after it)."""

    def __init__(self, f: torch.Tensor) -> None:
        self.f = f
        self.values: np.ndarray | None = None

    def read(self, *stats: torch.Tensor) -> list[float]:
        """The 0-dim tensors ``stats`` as floats (exactly), with the values if not yet read."""
        parts = [t.reshape(1).to(torch.float64) for t in stats]
        if self.values is None:
            parts.insert(0, self.f.reshape(-1).to(torch.float64))
        host = torch.cat(parts).to("cpu").numpy()  # the one read of this call
        if self.values is None:
            self.values, host = host[: self.f.numel()], host[self.f.numel() :]
        return host.tolist()


def adam_step(
    m: torch.Tensor,
    v: torch.Tensor,
    t: int,
    grad: torch.Tensor,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Adam (Kingma & Ba 2015, Algorithm 1) on the ascent direction ``grad``: updates the
    moments ``m``, ``v`` in place and returns the step at iteration ``t`` (from 1)."""
    m.mul_(beta1).add_(grad, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    a = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    return m / (v.sqrt() + eps) * a


@dataclass(kw_only=True)
class NESState(RestartBook):
    """Run state of a separable search distribution: tensors on x0's device and numbers."""

    mean: torch.Tensor
    sigma: torch.Tensor  # one standard deviation per coordinate
    sigma0: torch.Tensor  # the initial standard deviations (restarts start from them)
    lower: torch.Tensor | None = None
    upper: torch.Tensor | None = None
    popsize: int = 0
    noise: torch.Tensor | None = None  # the last ask's noise (the first half when mirrored)
    draw: torch.Tensor | None = None  # generator state of a generation evaluated in chunks
    generation: int = 0  # generations of the current run
    best: float = math.inf  # best value of the current run
    best_generation: int = 0  # generation where it was found
    flat_generations: int = 0
    opt: dict[str, Any] = field(default_factory=dict)  # the centre's optimizer state
    device_seed: int | None = None  # seeds the draws made on the device (x0 not on the CPU)
    draws: int = 0  # generations told (numbers the device draws)


@dataclass(frozen=True)
class NESMethod(NESBlocks, Restarting, PopulationMethod):
    """Ask / tell / restarts shared by the separable distributions; a method implements
    ``_default_popsize``, ``_new_run`` (its optimizer state), ``_utilities`` and ``_learn``."""

    rank_based: ClassVar[bool] = True  # ranks only: f + c searches the same points
    antithetic: ClassVar[bool] = False  # draw the population as pairs mean +- sigma * s
    squares: ClassVar[bool] = True  # the update takes u @ z^2 (the stdevs' gradient)
    sigma_fraction: ClassVar[float] = 0.2  # default sigma0 as a fraction of the box width
    sigma_default: ClassVar[float] = 0.5  # default sigma0 without a finite box

    sigma0: float | None = param(None, gt=0)
    popsize: int | None = param(None, ge=2)
    restarts: str = param("ipop", choices=("none", "ipop"))
    popsize_factor: float = param(2.0, gt=1)
    tolx: float = param(1e-11, ge=0)

    def _default_popsize(self, n: int) -> int:
        raise NotImplementedError

    def _new_run(self, s: NESState) -> None:
        """Reset the method's own state at the start of a run (optimizer moments...)."""

    def _utilities(self, f: torch.Tensor) -> torch.Tensor:
        """The weights (float64) of the samples by the ranks of their values ``f``."""
        raise NotImplementedError

    def _learn(
        self, s: NESState, u: torch.Tensor, gz: torch.Tensor, gz2: torch.Tensor | None, host: Any
    ) -> float | None:
        """Update the centre and the stdevs from ``u``, ``gz = u @ Z`` and ``gz2 = u @ Z^2``
        (``Z``: the generation's noise; ``host``: :class:`HostReads`); returns the largest
        sigma over its start when it read it (None: the caller reads it)."""
        raise NotImplementedError

    def _update(self, s: NESState, noise: torch.Tensor, f: torch.Tensor) -> None:
        """The update from the generation's noise ``noise`` (lambda, d) and values ``f``."""
        u = self._utilities(f).to(s.mean.dtype)
        gz = u @ noise
        gz2 = u @ noise.square_() if self.squares else None
        self._learn(s, u, gz, gz2, HostReads(f))

    def _stagnation(self, s: NESState) -> int:
        """Generations without a new best of the run after which the run ends (pycma's
        ``tolstagnation``: 120 + 30 d / lambda)."""
        return 120 + math.ceil(30 * s.mean.numel() / s.popsize)

    def _default_sigma_scale(self, n: int) -> float:
        """Factor on the default sigma0 in n dimensions (1: the same in every dimension)."""
        return 1.0

    def _last_progress(self, s: NESState, f: np.ndarray) -> int:
        """The generation of the run's last progress, for the stagnation test (by default the
        last new best value of the run); ``f``: the generation's values on the host."""
        return s.best_generation

    def _stalled(self, s: NESState) -> str:
        """Why the run ends after stagnating ("" to continue it: a method may adapt instead)."""
        return "stagnation"

    # -- init / ask / tell -------------------------------------------------------------------
    def init(self, x0: torch.Tensor, ctx: RunContext) -> NESState:
        dev, dt, n = x0.device, x0.dtype, x0.numel()
        scale = self._default_sigma_scale(n) if self.sigma0 is None else 1.0
        sd = self.sigma_default * scale if self.sigma0 is None else self.sigma0
        sigma0 = torch.full((n,), sd, dtype=dt)
        lower = upper = None
        if ctx.lower is not None and ctx.upper is not None:
            lower = ctx.lower.detach().to(device=dev, dtype=dt)
            upper = ctx.upper.detach().to(device=dev, dtype=dt)
            if self.sigma0 is None:
                width = (upper - lower).cpu()
                ok = torch.isfinite(width) & (width > 0)
                sigma0 = torch.where(ok, self.sigma_fraction * scale * width, sigma0)
        lam = self.popsize if self.popsize is not None else self._default_popsize(n)
        if self.antithetic:
            lam += lam % 2
        sigma0 = sigma0.to(dev)
        s = NESState(
            mean=x0.detach().clone(), sigma=sigma0.clone(), sigma0=sigma0, lower=lower, upper=upper
        )
        if dev.type != "cpu":  # draw on the device: no host-to-device copy of the noise
            s.device_seed = int(torch.randint(1 << 62, (1,), generator=ctx.generator))
        self._start_run(s, s.mean, lam)
        return s

    def _start_run(self, s: NESState, mean: torch.Tensor, lam: int) -> None:
        s.mean, s.sigma, s.popsize = mean.clone(), s.sigma0.clone(), lam
        s.noise, s.draw, s.generation, s.best, s.best_generation = None, None, 0, math.inf, 0
        s.flat_generations, s.opt = 0, {}
        self._new_run(s)
        s.started(lam)

    def ask(self, state: NESState, ctx: RunContext) -> torch.Tensor:
        s = state
        half = self._half(s)
        z = self._draw(s, ctx.generator, 0, half)
        s.noise, s.draw = z, None
        if half == s.popsize:
            return self._points(s, z, 1)
        X = torch.empty(s.popsize, z.shape[1], dtype=z.dtype, device=z.device)
        self._points(s, z, 1, X[:half])  # symmetric pairs mean +- sigma * z
        self._points(s, z, -1, X[half:])
        return X

    def _points(
        self, s: NESState, z: torch.Tensor, sign: int, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The points ``mu + sign sigma z`` (into ``out``), clipped into the box."""
        X = torch.addcmul(s.mean, z, s.sigma, value=sign, out=out)  # x_k = mu + sigma * z_k
        if s.lower is not None and s.upper is not None:
            X.clamp_(s.lower, s.upper)
        return X

    def tell(self, state: NESState, X: torch.Tensor, f: torch.Tensor, ctx: RunContext) -> NESState:
        s = state
        z = s.noise
        if z is None or (2 * z.shape[0] if self.antithetic else z.shape[0]) != X.shape[0]:
            s.noise, s.draw = None, None  # points that ask did not make: their own noise
            Z = (X.to(s.mean.dtype) - s.mean) / s.sigma
            u = self._utilities(f.to(torch.float64)).to(s.mean.dtype)
            gz2 = u @ Z.square() if self.squares else None
            return self._tell(s, f, ctx, (u, u @ Z, gz2))
        return self._tell(s, f, ctx, z)

    def _tell(self, s: NESState, f: torch.Tensor, ctx: RunContext, noise: Any) -> NESState:
        """The update from the values ``f`` of the generation and its noise: kept (a tensor),
        drawn again (None) or already reduced (a tuple ``u, u @ Z, u @ Z^2``)."""
        f = f.to(torch.float64)
        if isinstance(noise, tuple):
            u, gz, gz2 = noise
        else:
            u = self._utilities(f).to(s.mean.dtype)
            gz, gz2 = self._sums(s, u, noise)
        s.noise = s.draw = None
        s.generation += 1
        s.draws += 1
        s.run_evals += f.shape[0]
        host = HostReads(f)
        ratio = self._learn(s, u, gz, gz2, host)
        if ratio is None:
            (ratio,) = host.read((s.sigma / s.sigma0).max())
        fv = host.values
        assert fv is not None
        lo, hi = float(fv.min()), float(fv.max())
        s.flat_generations = s.flat_generations + 1 if lo == hi else 0
        if lo < s.best:
            s.best, s.best_generation = lo, s.generation
        if s.lower is not None and s.upper is not None:
            s.mean = torch.clamp(s.mean, s.lower, s.upper)
        progress = self._last_progress(s, fv)
        reason = ""
        if ratio < self.tolx:
            reason = "tolx"
        elif s.flat_generations >= FLAT_GENERATIONS:
            reason = "flat values"
        elif s.generation - progress > self._stagnation(s):
            reason = self._stalled(s)
        if reason:
            self._finish_run(s, reason, ctx)
        return s

    def _finish_run(self, s: NESState, reason: str, ctx: RunContext) -> None:
        """A run ended: restart from a random point of the box (or x0) when allowed."""
        x0 = ctx.x0.detach().to(dtype=s.mean.dtype, device=s.mean.device)
        nxt = next_start(
            s,
            reason,
            x0,
            s.lower,
            s.upper,
            kind=self.restarts,
            popsize_factor=self.popsize_factor,
            max_restarts=None,
            generator=ctx.generator,
        )
        if nxt is not None:
            centre, lam, _ = nxt
            self._start_run(s, centre, lam + lam % 2 if self.antithetic else lam)

    def stop_message(self, state: NESState, generation: int) -> str:
        """The criterion that ended the last run."""
        return f"stopped on {state.stop} after {generation} generations"
