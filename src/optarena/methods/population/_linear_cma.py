"""The shared machinery of the linear-memory CMA variants (``sep_cmaes``, ``lm_maes``).

Both sample ``x = m + sigma * y`` with ``y`` a linear image of ``z ~ N(0, I)`` that costs O(n)
(diagonal) or O(m n) (a few direction vectors) per sample, never an n x n matrix. This module
holds what they share: the options, sampling into the box (clip and boundary penalty, as
``cmaes`` does), ranking, the stopping tests and the IPOP/BIPOP restarts of ``_restarts.py``.
A method supplies its model: ``_model`` (fresh state of one run), ``_setup`` (what sampling a
generation needs), ``_prepare`` and ``_sample`` (z -> x, by blocks), ``_sums`` (the weighted
sums of the selected samples, by blocks) and ``_learn`` (the update from those sums).

Precision: the distribution (mean, step size, paths, covariance model) is float64 whatever the
problem's dtype; the samples ``z`` are drawn in float32 for float32 (and lower) problems, whose
points are float32 anyway, and in float64 otherwise: at d = 10^6 drawing them is most of the
cost of a generation. Only ranks and differences of values enter the search and its stopping
tests, so adding a constant to f changes nothing.

Blocks and chunks: a generation's samples are drawn, transformed and reduced in blocks of rows
that depend on n alone (at most 16 MiB of float64 per block, at least 2 rows; one block for
the whole generation while lam * n is small). Under a run's memory cap (``minimize(memory=)``,
:mod:`optarena.core.memory`) a generation whose buffers (samples, candidates, the copy the
objective receives) would take more than half the cap is drawn and evaluated in chunks of
whole blocks and not kept: ``tell`` draws its blocks again from the generator state saved
when the generation began. Each sample, value and sum comes from the same operations on the
same blocks either way, so a seeded run gives the same result with and without a cap (when
the objective's value of a row does not depend on the rows evaluated with it).

Host round-trips (a run on a GPU): per generation the values are read on the host once
(ranking, best value, stopping tests: the Oracle holds them there) and the statistics of the
update (|p_sigma|, the range of the coordinate stds, ...) once, as one ``tolist()`` in
``_learn``; drawing, sampling and the update do not wait for the device otherwise. A bounded
run whose samples were clipped reads a few more numbers for the boundary penalty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from .._base import PopulationMethod, RunContext
from .._params import param
from ._cma import F64, SIGMA_MAX, Strategy, boundary_penalty, strategy
from ._linear_blocks import BlockSampling, Rows, block_rows, ztype
from ._restarts import RESTART_KINDS, RestartBook, Restarting, next_start

__all__ = ["TOLUPSIGMA", "LinearCMA", "LinearState", "block_rows"]

TOLUPSIGMA = 1e20  # stop when the largest std grew this much over the initial step size
_TOLFLAT = 3  # generations whose best equals the 75 % quantile before a restart (pycma)


@dataclass
class LinearState(RestartBook):
    """Run state shared by the linear-memory variants: tensors and plain numbers, so a deep
    copy (a checkpoint) resumes exactly. Every tensor is (n,) or (popsize, n)."""

    mean: torch.Tensor  # (n,) float64 distribution mean
    sigma: float
    ps: torch.Tensor  # (n,) conjugate evolution path (step-size control)
    strategy: Strategy  # weights and rates of the current population size
    lower: torch.Tensor | None  # float64 bounds (None when unbounded)
    upper: torch.Tensor | None
    std0: torch.Tensor  # (n,) initial standard deviation of each coordinate
    sigma_init: float = 1.0  # step size at the start of the current run
    generation: int = 0  # generations of the current run
    best_hist: list[float] = field(default_factory=list)  # best f of recent generations
    flat_generations: int = 0
    penalty_weights: torch.Tensor | None = None  # (n,) boundary penalty weights, once set
    iqr_hist: list[float] = field(default_factory=list)
    z: torch.Tensor | None = None  # (lam, n) the asked samples, N(0, I), until tell
    violation: Rows | None = None  # squared clipping distances, if any were clipped
    aux: list[Any] | None = None  # per block, the variant's data of the asked samples
    draw: torch.Tensor | None = None  # generator state of a generation evaluated in chunks
    pick: tuple[int, ...] = ()  # strategy.pick on the host
    device_seed: int | None = None  # seeds the draws made on the device (x0 not on the CPU)
    draws: int = 0  # generations told (numbers the device draws)

    @property
    def popsize(self) -> int:
        """Population size of the current run."""
        return self.strategy.lam


@dataclass(frozen=True)
class LinearCMA(BlockSampling, Restarting, PopulationMethod):
    """Base of the linear-memory CMA variants (options, ask/tell skeleton, restarts)."""

    rank_based: ClassVar[bool] = True  # only ranks and differences of values: f + c is the same
    #: stop ("condition") when the largest std exceeds the smallest this many times (None: never)
    max_std_ratio: ClassVar[float | None] = None
    #: (lam, n) buffers of a generation besides the samples and the candidates (LM-MA-ES' d)
    aux_rows: ClassVar[int] = 0

    sigma0: float | None = param(
        None,
        "initial step size (None: 0.3 of the box width per coordinate where it is finite, "
        "else 0.5)",
        gt=0,
    )
    popsize: int | None = param(None, "population size (None: 4 + floor(3 ln n))", ge=2)
    restarts: str = param(
        "ipop", "restart schedule: none, IPOP (growing population) or BIPOP", choices=RESTART_KINDS
    )
    max_restarts: int | None = param(
        None, "most restarts with a larger population (None: until the budget is spent)", ge=0
    )
    popsize_factor: float = param(2.0, "growth of the population at each restart", gt=1)
    tolx: float = param(
        1e-11, "stop when every std falls below tolx times the initial step size", ge=0
    )
    tolfun: float = param(
        1e-11, "stop when recent best values and the current ones lie within tolfun", ge=0
    )

    # -- the model: what each variant supplies ---------------------------------------------
    def _model(self, s: Any, n: int) -> None:
        """Set the variant's own fields of ``s`` for a fresh run (population ``s.strategy``)."""
        raise NotImplementedError

    def _setup(self, s: Any, zt: torch.dtype) -> Any:
        """What sampling a generation in ``zt`` needs, computed once per generation."""
        raise NotImplementedError

    def _prepare(self, s: Any, z: torch.Tensor, start: int, prep: Any) -> None:
        """Adjust the samples ``z`` (rows ``start...`` of the generation) in place."""

    def _sample(self, s: Any, z: torch.Tensor, out: torch.Tensor, prep: Any) -> Any:
        """Write the points ``x = m + sigma * y(z)`` into ``out``; return the per-sample data
        the update needs besides ``z`` (None when none)."""
        raise NotImplementedError

    def _sums(self, s: Any, z: torch.Tensor, aux: Any, w: torch.Tensor) -> list[torch.Tensor]:
        """The weighted sums (n,) the update takes of selected samples ``z`` (weights ``w``)."""
        raise NotImplementedError

    def _learn(
        self, s: Any, sums: list[torch.Tensor], order: np.ndarray
    ) -> tuple[float, float, float, float]:
        """Update mean, paths, model and step size from the sums of the selected samples
        (``order``: row indices, best first); returns the largest and smallest coordinate std
        over sigma, |p_sigma| and max |mean| (read from the device in one go)."""
        raise NotImplementedError

    def _state_type(self) -> type[LinearState]:
        raise NotImplementedError

    # -- initialization ---------------------------------------------------------------------
    def init(self, x0: torch.Tensor, ctx: RunContext) -> LinearState:
        dev, n = x0.device, x0.numel()
        lower = upper = None
        std0 = torch.full((n,), 0.5 if self.sigma0 is None else float(self.sigma0), dtype=F64)
        if ctx.lower is not None and ctx.upper is not None:
            lower = ctx.lower.detach().to(device=dev, dtype=F64).reshape(-1).clone()
            upper = ctx.upper.detach().to(device=dev, dtype=F64).reshape(-1).clone()
            width = (upper - lower).cpu()
            if self.sigma0 is None:
                std0 = torch.where(torch.isfinite(width) & (width > 0), 0.3 * width, std0)
        lam = self.popsize if self.popsize is not None else 4 + math.floor(3 * math.log(n))
        mean = x0.detach().to(F64).reshape(-1).clone()
        state = self._state_type()(
            mean=mean,
            sigma=1.0,
            ps=torch.zeros_like(mean),
            strategy=strategy(n, lam, False, dev),
            lower=lower,
            upper=upper,
            std0=std0.to(dev),
        )
        if dev.type != "cpu":  # draw on the device (see _linear_blocks.py)
            state.device_seed = int(torch.randint(1 << 62, (1,), generator=ctx.generator))
        self._start_run(state, mean, 1.0, lam)
        return state

    def _start_run(self, s: LinearState, mean: torch.Tensor, sigma_factor: float, lam: int) -> None:
        """(Re-)initialize the distribution at ``mean`` with population ``lam``."""
        s.mean = mean.clone()
        s.sigma = s.sigma_init = float(s.std0.max()) * sigma_factor
        s.ps = torch.zeros_like(mean)
        if lam != s.strategy.lam:
            s.strategy = strategy(mean.numel(), lam, False, mean.device)
        s.pick = tuple(s.strategy.pick.tolist())
        s.generation = s.flat_generations = 0
        s.best_hist, s.iqr_hist, s.penalty_weights = [], [], None
        s.z = s.violation = s.aux = s.draw = None
        self._model(s, mean.numel())
        s.started(lam)

    # -- drawing by blocks --------------------------------------------------------------------
    # -- ask / tell -------------------------------------------------------------------------
    def ask(self, state: LinearState, ctx: RunContext) -> torch.Tensor:
        s, zt = state, ztype(ctx.x0.dtype)
        z, x, aux = self._generate(s, ctx.generator, 0, s.strategy.lam, zt, self._setup(s, zt))
        s.z, s.aux = z, aux  # x ~ N(m, sigma^2 C)
        x, dist = self._clip(s, x)
        s.violation = None
        if dist is not None:  # evaluate the clipped point, penalize the distance
            s.violation = Rows(zt, block_rows(s.mean.numel()), dist=dist)
        return x.to(ctx.x0.dtype)

    def tell(
        self, state: LinearState, X: torch.Tensor, f: torch.Tensor, ctx: RunContext
    ) -> LinearState:
        s, st = state, state.strategy
        if s.z is None or s.z.shape[0] != X.shape[0]:
            raise ValueError(
                f"{self.info.name}: tell() takes the population of the last ask() "
                f"({st.lam} points); it got {X.shape[0]}"
            )
        return self._tell(s, f, ctx)

    def _tell(self, s: LinearState, f: torch.Tensor, ctx: RunContext) -> LinearState:
        st = s.strategy
        fv = f.detach().to("cpu", F64).numpy()  # the values, read on the host once
        order = np.argsort(fv, kind="stable")
        f_best, f_flat, q1, q3, f_worst = (float(fv[order[i]]) for i in s.pick)
        r_best = f_best
        if s.lower is not None:
            ranked = boundary_penalty(s, torch.from_numpy(fv), q3 - q1, self._variances(s))
            if ranked is not None:
                rv = ranked.numpy()
                order = np.argsort(rv, kind="stable")
                r_best, f_flat = (float(rv[order[i]]) for i in s.pick[:2])
        sums = self._reduce(s, order, ztype(ctx.x0.dtype))  # (drawn again as asked)
        s.flat_generations = s.flat_generations + 1 if r_best == f_flat else 0
        s.draws += 1
        s.generation += 1
        s.run_evals += st.lam
        std_max, std_min, norm_ps, mean_max = self._learn(s, sums, order)
        s.z = s.violation = s.aux = s.draw = None
        s.sigma = min(s.sigma, SIGMA_MAX)
        s.best_hist.append(f_best)
        if len(s.best_hist) > st.hist_len:
            del s.best_hist[0]
        reason = self._stop_test(s, f_best, f_worst, (std_max, std_min, norm_ps, mean_max))
        if reason:
            self._finish_run(s, reason, ctx)
        return s

    def _variances(self, s: Any) -> torch.Tensor:
        """(n,) variances of the sampling distribution per coordinate (boundary penalty)."""
        raise NotImplementedError

    # -- stopping and restarts --------------------------------------------------------------
    def _stop_test(
        self, s: LinearState, f_best: float, f_worst: float, stats: tuple[float, ...]
    ) -> str:
        """The first stopping criterion that holds ('' for none); values enter only through
        ranks and differences. ``stats``: what ``_learn`` returned."""
        std_max, std_min, norm_ps, mean_max = stats
        if s.run_limit is not None and s.run_evals >= s.run_limit:
            return "maxevals_small_run"
        if not (math.isfinite(norm_ps) and math.isfinite(s.sigma * std_max)):
            return "non_finite"
        if s.flat_generations > _TOLFLAT:
            return "tolflatfitness"
        hist = s.best_hist
        full = len(hist) >= s.strategy.hist_len
        if full and max(max(hist), f_worst) - min(min(hist), f_best) < self.tolfun:
            return "tolfun"
        if self.max_std_ratio is not None and std_max > self.max_std_ratio * std_min:
            return "condition"
        if s.sigma * std_max > TOLUPSIGMA * s.sigma_init:
            return "tolupsigma"
        if s.sigma * std_max < self.tolx * s.sigma_init:
            return "tolx"
        tiny = s.sigma * std_min < 1e-12 * mean_max  # cheap pre-test
        if tiny and bool((s.mean == s.mean + 0.2 * self._variances(s).sqrt()).any()):
            return "noeffectcoord"
        return ""

    def _finish_run(self, s: LinearState, reason: str, ctx: RunContext) -> None:
        """A run ended: restart with a new population when restarts are left, else stop."""
        x0 = ctx.x0.detach().to(dtype=F64, device=s.mean.device).reshape(-1)
        nxt = next_start(
            s,
            reason,
            x0,
            s.lower,
            s.upper,
            kind=self.restarts,
            popsize_factor=self.popsize_factor,
            max_restarts=self.max_restarts,
            generator=ctx.generator,
        )
        if nxt is not None:
            mean, lam, sigma_factor = nxt
            self._start_run(s, mean, sigma_factor, lam)
