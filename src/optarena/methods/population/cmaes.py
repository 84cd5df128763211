"""CMA-ES in native torch, with active covariance update, box bounds and IPOP/BIPOP restarts.

The algorithm follows N. Hansen, "The CMA Evolution Strategy: A Tutorial" (arXiv:1604.00772,
2016); ``(eq. N)`` next to a line is that paper's equation number, with pycma 4.5's step-size
damping for large populations (``_cma.strategy``: without it the large populations of later
IPOP runs collapse their step size on plateaus). The distribution is kept in float64 whatever
the problem's dtype. From ``_cma.CHOLESKY_DIM`` dimensions on, C is sampled
through its lazily updated Cholesky factor (Krause et al. 2016), and from ``_cma.TPA_DIM`` on
the step size follows two-point adaptation (Hansen 2008; pycma does the same from d = 300):
the first two samples lie at -+ the last mean shift, and their rank difference moves sigma.

Box bounds: a sample is clipped into the box and the clipped point is evaluated, while the
distribution learns from the sample itself, ranked by its value plus a penalty on its squared
distance to the box whose coordinate-wise weights adapt to the spread of the values (the
boundary penalty of Hansen et al. 2009, as pycma's ``BoundPenalty``). Every evaluated point is
in the box, the step-size path sees true N(0, I) samples, and optima on the boundary are
reached exactly. With ``boundary="transform"`` the samples are instead mapped into the box
by pycma's ``BoundTransform`` (identity inside, quadratic near the sides, mirrored and periodic
beyond) and the distribution learns from the unmapped samples.

Restarts happen inside the state machine of one run: when a stopping criterion holds, the
distribution is re-initialized with a larger (IPOP, the default) or alternately small and
large (BIPOP) population, sharing the run's budget until it is spent; in a finite box a
large run restarts at its centre (``_restarts.py``). A run on a plateau (its best value equal
to the 75 % quantile for 2 generations in a row, pycma's ``tolflatfitness``) ends and
restarts: widening the step size there instead kept runs
drifting on the step ellipsoid's plateaus. Every stopping test uses ranks or differences of
values, never a tolerance relative to |f|.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._base import PopulationMethod, RunContext
from .._params import param
from .._registry import register
from ._cma import (
    F64,
    SIGMA_MAX,
    CMAState,
    boundary_penalty,
    box_inverse,
    box_transform,
    decompose,
    sample,
    stop_criterion,
    strategy,
    whiten,
)
from ._restarts import RESTART_KINDS, Restarting, next_start

__all__ = ["CMAES", "CMAState"]

TPA_C = 0.3  # TPA's smoothing of the rank differences (pycma's ``sp.c``)


@register(
    "cmaes",
    family="population",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
    dense_matrices=4,  # C, BD, B and the decomposition's workspace
    roles={"global": 1},
    role_options={"global": {"restarts": "bipop", "sigma0_width": 0.3}},
)
@dataclass(frozen=True)
class CMAES(Restarting, PopulationMethod):
    """CMA-ES (Hansen 2016): active covariance update, box bounds, IPOP/BIPOP restarts.

    Args:
        sigma0: initial step size. ``None``: ``sigma0_width`` times the box width per
            coordinate where the box is finite, else 0.5 (the initial covariance is diagonal
            with those widths).
        sigma0_width: the initial step size as a fraction of the box width when ``sigma0`` is
            ``None``: a fifth by default (COCO's examples; bbob solved at d = 2 / 5: 0.789 /
            0.600 against 0.769 / 0.589 with 0.3, pycma IPOP 0.708 / 0.597); 0.3 as a
            composite's global search, which starts from the best point found so far.
        popsize: population size; ``None`` is the default ``4 + floor(3 ln d)``.
        restarts: ``"ipop"`` (default: restart with the population times
            ``popsize_factor`` each time), ``"bipop"`` (alternately large and small
            populations, Hansen 2009) or ``"none"`` (one run, ending ``converged``). Restarts
            share the run's budget; the first run starts at x0, later ones at a uniform
            random point of the box when it is finite, else x0.
        max_restarts: most restarts with an increased population (small BIPOP runs are free);
            ``None`` (default) restarts until the budget is spent, the population growing at
            the first 9 large restarts and keeping that size after.
        popsize_factor: growth of the population at each large restart.
        active: use negative recombination weights in the covariance update (active CMA).
        tolx: stop when every coordinate's standard deviation and the evolution path fall
            below ``tolx`` times the initial step size.
        tolfun: stop when the best values of the recent generations and the values of the
            current one all lie within ``tolfun``.
        max_condition: stop when the condition number of C exceeds this.
        boundary: box handling. ``"penalty"`` (default): clip the samples, rank them with the
            boundary penalty. ``"transform"``: evaluate the samples mapped into the box by
            pycma's periodic linear-quadratic map (its default ``BoundTransform``), the
            distribution living on the whole line. bbob, instances 1-5: 0.753 / 0.581 / 0.533
            solved at d = 2 / 5 / 10 against the penalty's 0.789 / 0.600 / 0.536 (Rastrigin
            f3 and Gallagher f22 lose at d = 2; at d = 10 over instances 1-15, 576 of 1,080
            triples against 568, f21 and f22 gaining, f7 and f10 losing instances).

    With bounds, no coordinate's standard deviation exceeds a third of the box width (as in
    pycma), and the step size is capped at 1e32 whatever the bounds.

    Only the ranks of the values and differences of values enter the search and its stopping
    tests, so adding a constant to f changes nothing.
    """

    rank_based: ClassVar[bool] = True  # only ranks and differences of values: f + c is the same

    sigma0: float | None = param(None, gt=0)
    sigma0_width: float = param(0.2, gt=0, le=1)
    popsize: int | None = param(None, ge=2)
    restarts: str = param(
        "ipop", "restart schedule: none, IPOP (growing population) or BIPOP", choices=RESTART_KINDS
    )
    max_restarts: int | None = param(None, ge=0)
    popsize_factor: float = param(2.0, gt=1)
    active: bool = param(True)
    tolx: float = param(1e-11, ge=0)
    tolfun: float = param(1e-11, ge=0)
    max_condition: float = param(1e14, gt=1)
    boundary: str = param(
        "penalty",
        "box handling: clip and penalize (penalty) or map the samples into the box (transform)",
        choices=("penalty", "transform"),
    )

    # -- initialization --------------------------------------------------------------------
    def init(self, x0: torch.Tensor, ctx: RunContext) -> CMAState:
        dev = x0.device
        n = x0.numel()
        lower = upper = max_var = None
        std0 = torch.full((n,), 0.5 if self.sigma0 is None else float(self.sigma0), dtype=F64)
        if ctx.lower is not None and ctx.upper is not None:
            lower = ctx.lower.detach().to(device=dev, dtype=F64).clone()
            upper = ctx.upper.detach().to(device=dev, dtype=F64).clone()
            width = (upper - lower).cpu()
            if self.sigma0 is None:
                finite = torch.isfinite(width) & (width > 0)
                std0 = torch.where(finite, self.sigma0_width * width, std0)
            max_var = torch.where(width > 0, (width / 3) ** 2, torch.inf)
        default_lam = 4 + math.floor(3 * math.log(n))  # (eq. 48)
        lam = self.popsize if self.popsize is not None else default_lam
        unset = torch.empty(0, dtype=F64, device=dev)  # _start_run sets C and its factor
        state = CMAState(
            mean=x0.detach().to(F64).clone(),
            sigma=1.0,
            C=unset,
            B=None,
            D=None,
            BD=unset,
            ps=torch.zeros(n, dtype=F64, device=dev),
            pc=torch.zeros(n, dtype=F64, device=dev),
            strategy=strategy(n, lam, self.active, dev),
            lower=lower,
            upper=upper,
            std0=std0.to(dev),
            sigma_init=1.0,
            max_var=None if max_var is None else max_var.to(dev),
        )
        self._start_run(state, state.mean, 1.0, lam)
        return state

    def _transforms(self, s: CMAState) -> bool:
        """True when samples are mapped into the box rather than clipped and penalized."""
        return self.boundary == "transform" and s.lower is not None and s.upper is not None

    def _start_run(self, s: CMAState, mean: torch.Tensor, sigma_factor: float, lam: int) -> None:
        """(Re-)initialize the distribution at ``mean`` with population ``lam``."""
        n = mean.numel()
        smax = float(s.std0.max())
        rel = s.std0 / smax
        s.mean = mean.clone()
        if self._transforms(s):  # the mean whose image is the start point
            s.mean = box_inverse(s.mean, s.lower, s.upper)
        s.sigma = s.sigma_init = smax * sigma_factor
        if lam != s.strategy.lam:
            s.strategy = strategy(n, lam, self.active, mean.device)
        s.C, s.BD = torch.diag(rel * rel), torch.diag(rel)
        if s.strategy.cholesky:  # diag(rel) is C's Cholesky factor: no d x d eigenvectors
            s.B = s.D = None
        else:
            s.B, s.D = torch.eye(n, dtype=F64, device=mean.device), rel
        s.dmin, s.dmax = float(rel.min()), 1.0
        s.ps = torch.zeros_like(mean)
        s.pc = torch.zeros_like(mean)
        s.generation = s.eigen_generation = 0
        s.best_hist, s.iqr_hist, s.penalty_weights = [], [], None
        s.flat_generations = 0
        s.shift, s.shift_z, s.tpa_s, s.mirrored = None, None, 0.0, False
        s.started(lam)

    # -- ask / tell ------------------------------------------------------------------------
    def ask(self, state: CMAState, ctx: RunContext) -> torch.Tensor:
        s = state
        z = torch.randn(s.strategy.lam, s.mean.numel(), generator=ctx.generator, dtype=F64)
        if z.device != s.mean.device:
            z = z.to(s.mean.device)  # (eq. 38), z ~ N(0, I)
        s.mirrored = False
        if s.shift is not None:  # TPA: the first two samples along -+ the last mean shift
            zs = s.shift_z  # the last weighted mean of z, while the factor is the same
            if zs is None:
                zs = whiten(s, (s.shift / s.sigma).unsqueeze(0))[0]
            norm = float(torch.linalg.vector_norm(zs))
            if 0 < norm < math.inf:  # scaled to the length of a N(0, I) sample
                z[0] = zs * (float(torch.linalg.vector_norm(z[0])) / norm)
                z[1] = -z[0]
                s.mirrored = True
        y = sample(s, z)  # (eq. 39), y ~ N(0, C)
        x = torch.add(s.mean, y, alpha=s.sigma)  # (eq. 40), x ~ N(m, sigma^2 C)
        s.y, s.z, s.violation = y, z, None
        if self._transforms(s):
            x = box_transform(x, s.lower, s.upper)
        elif s.lower is not None and s.upper is not None:
            xc = torch.clamp(x, s.lower, s.upper)
            if not torch.equal(xc, x):  # evaluate the clipped point, penalize the distance
                s.violation = (xc - x).square_()
                x = xc
        return x.to(ctx.x0.dtype)

    def tell(self, state: CMAState, X: torch.Tensor, f: torch.Tensor, ctx: RunContext) -> CMAState:
        s, st = state, state.strategy
        n, mu = s.mean.numel(), st.mu
        y, z = s.y, s.z
        mirrored, s.mirrored = s.mirrored, False
        if y is None or z is None or y.shape[0] != X.shape[0]:  # points that ask did not make
            y = (X.to(F64) - s.mean) / s.sigma
            z = whiten(s, y)
            s.violation, mirrored = None, False
        f = f.to(F64)
        raw, order = torch.sort(f, stable=True)
        f_best, f_flat, q1, q3, f_worst = raw[st.pick].tolist()
        r_best, rank_by = f_best, f  # best ranking value (with the boundary penalty, if any)
        if s.lower is not None and not self._transforms(s):
            ranked = boundary_penalty(s, f, q3 - q1)
            if ranked is not None:
                vals, order = torch.sort(ranked, stable=True)
                r_best, f_flat = vals[st.pick[:2]].tolist()
                rank_by = ranked
        s.flat_generations = s.flat_generations + 1 if r_best == f_flat else 0
        s.y = s.z = s.violation = None
        y, z = y[order], z[order]
        yw = st.wpos @ y[:mu]  # (eq. 41)
        zw = st.wpos @ z[:mu]
        s.mean = torch.add(s.mean, yw, alpha=s.sigma)  # (eq. 42), c_m = 1 (eq. 54)
        if st.tpa_damp > 0:
            s.shift, s.shift_z = yw * s.sigma, zw
        # C^(-1/2) y = B z, with the B and D the population was drawn with; with a Cholesky
        # factor, L^(-1) y = z (Krause et al. 2016)
        cs_norm = math.sqrt(st.cs * (2 - st.cs) * st.mueff)
        if s.B is None:
            s.ps = torch.add(s.ps * (1 - st.cs), zw, alpha=cs_norm)
        else:
            s.ps = torch.addmv(s.ps, s.B, zw, beta=1 - st.cs, alpha=cs_norm)  # (eq. 43)
        norm_ps = float(torch.linalg.vector_norm(s.ps))
        s.generation += 1
        s.run_evals += st.lam
        hsig = (
            norm_ps / math.sqrt(1 - (1 - st.cs) ** (2 * s.generation))
            < (1.4 + 2 / (n + 1)) * st.chin
        )  # h_sigma: stall p_c while ||p_sigma|| is large (tutorial, with eq. 45)
        cc_norm = math.sqrt(st.cc * (2 - st.cc) * st.mueff) if hsig else 0.0
        s.pc = torch.add(s.pc * (1 - st.cc), yw, alpha=cc_norm)  # (eq. 45)
        if self.active:  # (eq. 46): negative weights times n / ||C^(-1/2) y||^2 = n / ||z||^2
            znorm = torch.linalg.vector_norm(z[mu:], dim=1).clamp_min_(1e-150)
            wneg = st.wneg_n / znorm.square_()
            if mirrored:  # no negative weight for TPA's mirrored pair (as pycma)
                wneg = wneg * (order[mu:] >= 2)
            wo = torch.cat((st.wpos, wneg))
        else:
            wo, y = st.wpos, y[:mu]
        delta_h = 0.0 if hsig else st.cc * (2 - st.cc)
        decay = 1 + st.c1 * delta_h - st.c1 - st.cmu * st.wsum
        # in place: C is the state's own tensor (a checkpoint is a copy)
        if st.cholesky:  # (eq. 47) as one product: p_c is one more row of weight c1 / cmu
            rows = torch.cat((y, s.pc.unsqueeze(0)))
            wo = torch.cat((wo * st.cmu, wo.new_full((1,), st.c1)))
            s.C.addmm_(rows.T * wo, rows, beta=decay)
        else:  # two O(d^2) memory passes, as for d < CHOLESKY_DIM ever since
            s.C.addr_(s.pc, s.pc, beta=decay, alpha=st.c1)  # (eq. 47), rank-one part
            s.C.addmm_(y.T * wo, y, alpha=st.cmu)  # (eq. 47), rank-mu part
        if st.tpa_damp > 0:  # TPA: rank difference of the mirrored pair (pycma's update2)
            if mirrored:
                k = int((rank_by < rank_by[1]).sum()) - int((rank_by < rank_by[0]).sum())
                r = k / (rank_by.numel() - 1)
                s.tpa_s = (1 - TPA_C) * s.tpa_s + TPA_C * math.copysign(math.sqrt(abs(r)), r)
                s.sigma *= math.exp(s.tpa_s / st.tpa_damp)
        else:
            s.sigma *= math.exp((st.cs / st.damps) * (norm_ps / st.chin - 1))  # (eq. 44)
        s.sigma = min(s.sigma, SIGMA_MAX)
        if s.max_var is not None:  # no coordinate's std above a third of the box width
            ratio = float((torch.diagonal(s.C) / s.max_var).max()) * s.sigma * s.sigma
            if ratio > 1:
                s.sigma /= math.sqrt(ratio)
        if s.generation - s.eigen_generation >= st.eigen_gap:
            decompose(s)
        s.best_hist.append(f_best)
        if len(s.best_hist) > st.hist_len:
            del s.best_hist[0]
        reason = stop_criterion(
            s,
            f_best,
            f_worst,
            norm_ps,
            tolx=self.tolx,
            tolfun=self.tolfun,
            max_condition=self.max_condition,
        )
        if reason:
            self._finish_run(s, reason, ctx)
        return s

    # -- restarts --------------------------------------------------------------------------
    def _finish_run(self, s: CMAState, reason: str, ctx: RunContext) -> None:
        """A run ended: restart with a new population when restarts are left, else stop."""
        x0 = ctx.x0.detach().to(dtype=F64, device=s.mean.device)
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
