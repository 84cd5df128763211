"""CMA-ES in native torch, with active covariance update, box bounds and IPOP/BIPOP restarts.

The algorithm follows N. Hansen, "The CMA Evolution Strategy: A Tutorial" (arXiv:1604.00772,
2016); ``(eq. N)`` next to a line is that paper's equation number. The distribution is kept in
float64 whatever the problem's dtype.

Box bounds: a sample is clipped into the box and the clipped point is evaluated, while the
distribution learns from the sample itself, ranked by its value plus a penalty on its squared
distance to the box whose coordinate-wise weights adapt to the spread of the values (the
boundary penalty of Hansen et al. 2009, as pycma's ``BoundPenalty``). Every evaluated point is
in the box, the step-size path sees true N(0, I) samples, and optima on the boundary are
reached exactly.

Restarts happen inside the state machine of one run: when a stopping criterion holds, the
distribution is re-initialized with a larger (IPOP) or alternately small and large (BIPOP)
population, sharing the run's budget.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Literal

import torch

from .._base import PopulationMethod, RunContext
from .._checks import is_number
from .._registry import register

__all__ = ["CMAES", "CMAState"]

Restarts = Literal["none", "ipop", "bipop"]
_F64 = torch.float64
_SIGMA_MAX = 1e32
_TOLUPSIGMA = 1e20  # stop when sigma * max(D) grew this much over the initial step size


@dataclass(frozen=True)
class _Strategy:
    """Constants of one population size (Hansen 2016, Table 1) and precomputed helpers."""

    lam: int
    mu: int
    wpos: torch.Tensor  # (mu,) positive recombination weights, summing to one
    wneg_n: torch.Tensor  # (lam - mu,) negative weights times n (eq. 46 numerator)
    wsum: float  # sum of all weights
    mueff: float
    cc: float
    cs: float
    c1: float
    cmu: float
    damps: float
    chin: float  # E||N(0, I)||
    eigen_gap: int  # generations between eigendecompositions
    hist_len: int  # generations looked back by tolfun
    pick: torch.Tensor  # sorted-value positions: best, flat-fitness probe, quartiles, worst


def _strategy(n: int, lam: int, active: bool, device: torch.device) -> _Strategy:
    """Default strategy parameters for dimension ``n`` and population ``lam`` (eqs. 48-58)."""
    mu = lam // 2
    wp = [math.log((lam + 1) / 2) - math.log(i + 1) for i in range(lam)]  # (eq. 49)
    pos, neg = wp[:mu], wp[mu:]
    mueff = sum(pos) ** 2 / sum(w * w for w in pos)
    alpha_cov = 2.0
    c1 = alpha_cov / ((n + 1.3) ** 2 + mueff)  # (eq. 57)
    cmu = min(  # (eq. 58)
        1 - c1,
        alpha_cov * (0.25 + mueff + 1 / mueff - 2) / ((n + 2) ** 2 + alpha_cov * mueff / 2),
    )
    cs = (mueff + 2) / (n + mueff + 5)  # (eq. 55)
    damps = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (n + 1)) - 1) + cs  # (eq. 55)
    cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)  # (eq. 56)
    wpos = [w / sum(pos) for w in pos]  # (eq. 53), positive part
    wneg = [0.0] * len(neg)
    if active and sum(neg) < 0:
        mueff_neg = sum(neg) ** 2 / sum(w * w for w in neg)
        alpha = min(
            1 + c1 / cmu,  # (eq. 50)
            1 + 2 * mueff_neg / (mueff + 2),  # (eq. 51)
            (1 - c1 - cmu) / (n * cmu),  # (eq. 52)
        )
        wneg = [alpha * w / -sum(neg) for w in neg]  # (eq. 53), negative part
    l1 = lam + 1
    pick = [0, min(lam - 1, math.ceil(0.1 + lam / 4)), l1 // 4, min(lam - 1, 3 * l1 // 4), lam - 1]
    return _Strategy(
        lam=lam,
        mu=mu,
        wpos=torch.tensor(wpos, dtype=_F64, device=device),
        wneg_n=torch.tensor(wneg, dtype=_F64, device=device) * n,
        wsum=sum(wpos) + sum(wneg),
        mueff=mueff,
        cc=cc,
        cs=cs,
        c1=c1,
        cmu=cmu,
        damps=damps,
        chin=math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n)),
        eigen_gap=max(1, math.floor(1 / (10 * n * (c1 + cmu)))),  # lazy, O(n^2) per sample
        hist_len=10 + math.ceil(30 * n / lam),
        pick=torch.tensor(pick, device=device),
    )


@dataclass
class CMAState:
    """Run state of CMA-ES: the distribution, its paths, counters and restart bookkeeping.

    Arrays are float64 tensors and scalars plain numbers, so a deep copy (a checkpoint)
    resumes the run exactly.
    """

    mean: torch.Tensor  # (d,) distribution mean m
    sigma: float  # step size
    C: torch.Tensor  # (d, d) covariance matrix
    B: torch.Tensor  # (d, d) eigenvectors of C (columns), as of the last decomposition
    D: torch.Tensor  # (d,) square roots of the eigenvalues of C
    BD: torch.Tensor  # (d, d) B @ diag(D): maps N(0, I) to N(0, C)
    ps: torch.Tensor  # (d,) conjugate evolution path (step size)
    pc: torch.Tensor  # (d,) evolution path (rank-one update)
    strategy: _Strategy
    lower: torch.Tensor | None  # float64 bounds (None when unbounded)
    upper: torch.Tensor | None
    std0: torch.Tensor  # (d,) initial standard deviations per coordinate
    sigma_init: float  # step size at the start of the current run
    max_var: torch.Tensor | None = None  # (d,) largest variance per coordinate (bounded)
    dmin: float = 1.0  # min(D) and max(D) at the last decomposition
    dmax: float = 1.0
    generation: int = 0  # generations of the current run
    eigen_generation: int = 0  # generation of the last eigendecomposition
    best_hist: list[float] = field(default_factory=list)  # best f of recent generations
    penalty_weights: torch.Tensor | None = None  # (d,) boundary penalty weights, once set
    iqr_hist: list[float] = field(default_factory=list)  # normalized f spreads (penalty)
    run_evals: int = 0  # evaluations of the current run
    run_limit: int | None = None  # evaluation limit of a BIPOP small-population run
    restarts: int = 0  # restarts done (all kinds)
    large_restarts: int = 0  # IPOP / BIPOP large-population restarts done
    regime: str = "first"  # "first", "large" or "small" (BIPOP bookkeeping)
    evals_small: int = 0  # BIPOP: evaluations of the small-population runs and the first
    evals_large: int = 0  # BIPOP: evaluations of the large-population runs
    popsizes: list[int] = field(default_factory=list)  # population size of each run
    regimes: list[str] = field(default_factory=list)  # "first", "large" or "small", each run
    stop_reasons: list[str] = field(default_factory=list)  # why each finished run stopped
    stop: str = ""  # the criterion that ended the whole run ("" while running)
    y: torch.Tensor | None = None  # (lam, d) steps of the asked population, until tell
    z: torch.Tensor | None = None  # (lam, d) the same steps as N(0, I) samples
    violation: torch.Tensor | None = None  # (lam, d) squared clipping distances, if any

    @property
    def popsize(self) -> int:
        """Population size of the current run."""
        return self.strategy.lam


@register(
    "cmaes",
    family="population",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
)
@dataclass(frozen=True)
class CMAES(PopulationMethod):
    """CMA-ES (Hansen 2016): active covariance update, box bounds, IPOP/BIPOP restarts.

    Args:
        sigma0: initial step size. ``None``: 0.3 of the box width per coordinate where the
            box is finite, else 0.5 (the initial covariance is diagonal with those widths).
        popsize: population size; ``None`` is the default ``4 + floor(3 ln d)``.
        restarts: ``"none"``, ``"ipop"`` (restart with the population times
            ``popsize_factor`` each time) or ``"bipop"`` (alternately large and small
            populations, Hansen 2009). Restarts share the run's budget; the first run starts
            at x0, later ones at a uniform random point of the box when it is finite, else x0.
        max_restarts: most restarts with an increased population (small BIPOP runs are free).
        popsize_factor: growth of the population at each large restart.
        active: use negative recombination weights in the covariance update (active CMA).
        tolx: stop when every coordinate's standard deviation and the evolution path fall
            below ``tolx`` times the initial step size.
        tolfun: stop when the best values of the recent generations and the values of the
            current one all lie within ``tolfun``.
        max_condition: stop when the condition number of C exceeds this.

    With bounds, no coordinate's standard deviation exceeds a third of the box width (as in
    pycma), and the step size is capped at 1e32 whatever the bounds.
    """

    sigma0: float | None = None
    popsize: int | None = None
    restarts: Restarts = "none"
    max_restarts: int = 9
    popsize_factor: float = 2.0
    active: bool = True
    tolx: float = 1e-11
    tolfun: float = 1e-11
    max_condition: float = 1e14

    def __post_init__(self) -> None:
        if self.sigma0 is not None and not _positive_number(self.sigma0):
            raise ValueError(f"sigma0 must be a positive number or None, got {self.sigma0!r}")
        if self.popsize is not None and not (_int(self.popsize) and self.popsize >= 2):
            raise ValueError(f"popsize must be an int >= 2 or None, got {self.popsize!r}")
        if self.restarts not in ("none", "ipop", "bipop"):
            raise ValueError(f"restarts must be 'none', 'ipop' or 'bipop', got {self.restarts!r}")
        if not (_int(self.max_restarts) and self.max_restarts >= 0):
            raise ValueError(f"max_restarts must be an int >= 0, got {self.max_restarts!r}")
        if not (_positive_number(self.popsize_factor) and self.popsize_factor > 1):
            raise ValueError(f"popsize_factor must be a number > 1, got {self.popsize_factor!r}")
        if not isinstance(self.active, bool):
            raise ValueError(f"active must be True or False, got {self.active!r}")
        for name in ("tolx", "tolfun"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and not isinstance(v, bool) and v >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        if not (_positive_number(self.max_condition) and self.max_condition > 1):
            raise ValueError(f"max_condition must be a number > 1, got {self.max_condition!r}")

    # -- initialization --------------------------------------------------------------------
    def init(self, x0: torch.Tensor, ctx: RunContext) -> CMAState:
        dev = x0.device
        n = x0.numel()
        lower = upper = max_var = None
        std0 = torch.full((n,), 0.5 if self.sigma0 is None else float(self.sigma0), dtype=_F64)
        if ctx.lower is not None and ctx.upper is not None:
            lower = ctx.lower.detach().to(device=dev, dtype=_F64).clone()
            upper = ctx.upper.detach().to(device=dev, dtype=_F64).clone()
            width = (upper - lower).cpu()
            if self.sigma0 is None:
                std0 = torch.where(torch.isfinite(width) & (width > 0), 0.3 * width, std0)
            max_var = torch.where(width > 0, (width / 3) ** 2, torch.inf)
        default_lam = 4 + math.floor(3 * math.log(n))  # (eq. 48)
        lam = self.popsize if self.popsize is not None else default_lam
        eye = torch.eye(n, dtype=_F64, device=dev)
        state = CMAState(
            mean=x0.detach().to(_F64).clone(),
            sigma=1.0,
            C=eye,
            B=eye,
            D=torch.ones(n, dtype=_F64, device=dev),
            BD=eye,
            ps=torch.zeros(n, dtype=_F64, device=dev),
            pc=torch.zeros(n, dtype=_F64, device=dev),
            strategy=_strategy(n, lam, self.active, dev),
            lower=lower,
            upper=upper,
            std0=std0.to(dev),
            sigma_init=1.0,
            max_var=None if max_var is None else max_var.to(dev),
        )
        self._start_run(state, state.mean, 1.0, lam)
        return state

    def _start_run(self, s: CMAState, mean: torch.Tensor, sigma_factor: float, lam: int) -> None:
        """(Re-)initialize the distribution at ``mean`` with population ``lam``."""
        n = mean.numel()
        smax = float(s.std0.max())
        rel = s.std0 / smax
        s.mean = mean.clone()
        s.sigma = s.sigma_init = smax * sigma_factor
        s.C, s.B, s.D, s.BD = torch.diag(rel * rel), torch.eye(n, dtype=_F64), rel, torch.diag(rel)
        s.B = s.B.to(mean.device)
        s.dmin, s.dmax = float(rel.min()), 1.0
        s.ps = torch.zeros_like(mean)
        s.pc = torch.zeros_like(mean)
        if lam != s.strategy.lam:
            s.strategy = _strategy(n, lam, self.active, mean.device)
        s.generation = s.eigen_generation = s.run_evals = 0
        s.best_hist, s.iqr_hist, s.penalty_weights = [], [], None
        s.popsizes.append(lam)
        s.regimes.append(s.regime)

    # -- ask / tell ------------------------------------------------------------------------
    def ask(self, state: CMAState, ctx: RunContext) -> torch.Tensor:
        s = state
        z = torch.randn(s.strategy.lam, s.mean.numel(), generator=ctx.generator, dtype=_F64)
        if z.device != s.mean.device:
            z = z.to(s.mean.device)  # (eq. 38), z ~ N(0, I)
        y = z @ s.BD.T  # (eq. 39), y ~ N(0, C)
        x = torch.add(s.mean, y, alpha=s.sigma)  # (eq. 40), x ~ N(m, sigma^2 C)
        s.y, s.z, s.violation = y, z, None
        if s.lower is not None and s.upper is not None:
            xc = torch.clamp(x, s.lower, s.upper)
            if not torch.equal(xc, x):  # evaluate the clipped point, penalize the distance
                s.violation = (xc - x).square_()
                x = xc
        return x.to(ctx.x0.dtype)

    def tell(self, state: CMAState, X: torch.Tensor, f: torch.Tensor, ctx: RunContext) -> CMAState:
        s, st = state, state.strategy
        n, mu = s.mean.numel(), st.mu
        y, z = s.y, s.z
        if y is None or z is None or y.shape[0] != X.shape[0]:  # points that ask did not make
            y = (X.to(_F64) - s.mean) / s.sigma
            z = (y @ s.B) / s.D
            s.violation = None
        f = f.to(_F64)
        raw, order = torch.sort(f, stable=True)
        f_best, f_probe, q1, q3, f_worst = raw[st.pick].tolist()
        r_best = f_best  # best ranking value (with the boundary penalty, if any)
        if s.lower is not None:
            ranked = self._penalize(s, f, q3 - q1)
            if ranked is not None:
                vals, order = torch.sort(ranked, stable=True)
                r_best, f_probe = vals[st.pick[:2]].tolist()
        s.y = s.z = s.violation = None
        y, z = y[order], z[order]
        yw = st.wpos @ y[:mu]  # (eq. 41)
        zw = st.wpos @ z[:mu]
        s.mean = torch.add(s.mean, yw, alpha=s.sigma)  # (eq. 42), c_m = 1 (eq. 54)
        # C^(-1/2) y = B z, with the B and D the population was drawn with.
        cs_norm = math.sqrt(st.cs * (2 - st.cs) * st.mueff)
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
            wo = torch.cat((st.wpos, wneg))
        else:
            wo, y = st.wpos, y[:mu]
        delta_h = 0.0 if hsig else st.cc * (2 - st.cc)
        decay = 1 + st.c1 * delta_h - st.c1 - st.cmu * st.wsum
        C = torch.addr(s.C, s.pc, s.pc, beta=decay, alpha=st.c1)  # (eq. 47), rank-one part
        s.C = torch.addmm(C, y.T * wo, y, alpha=st.cmu)  # (eq. 47), rank-mu part
        s.sigma *= math.exp((st.cs / st.damps) * (norm_ps / st.chin - 1))  # (eq. 44)
        if r_best == f_probe:  # flat fitness: widen the search (as Hansen's purecma does)
            s.sigma *= math.exp(0.2 + st.cs / st.damps)
        s.sigma = min(s.sigma, _SIGMA_MAX)
        if s.max_var is not None:  # no coordinate's std above a third of the box width
            ratio = float((torch.diagonal(s.C) / s.max_var).max()) * s.sigma * s.sigma
            if ratio > 1:
                s.sigma /= math.sqrt(ratio)
        if s.generation - s.eigen_generation >= st.eigen_gap:
            self._decompose(s)
        s.best_hist.append(f_best)
        if len(s.best_hist) > st.hist_len:
            del s.best_hist[0]
        reason = self._stop_criterion(s, f_best, f_worst, norm_ps)
        if reason:
            self._finish_run(s, reason, ctx)
        return s

    # -- box bounds ------------------------------------------------------------------------
    def _penalize(self, s: CMAState, f: torch.Tensor, iqr: float) -> torch.Tensor | None:
        """f plus the boundary penalty of the clipped samples (None when none was clipped).

        The coordinate-wise weights follow pycma's BoundPenalty (Hansen et al. 2009): set to
        twice the median recent interquartile range of f per unit variance when the mean
        first leaves the box, raised while it stays out, lowered when they grow large.
        """
        st, n = s.strategy, s.mean.numel()
        variances = torch.diagonal(s.C) * (s.sigma * s.sigma)
        spread = iqr / float(variances.mean())
        if math.isfinite(spread) and spread > 0:
            s.iqr_hist.append(spread)
        elif spread == math.inf and len(s.iqr_hist) > 1:
            s.iqr_hist.append(max(s.iqr_hist))
        if len(s.iqr_hist) > 20 + 3 * n / st.lam:
            del s.iqr_hist[0]
        assert s.lower is not None and s.upper is not None
        outside = s.mean - torch.clamp(s.mean, s.lower, s.upper)
        if s.iqr_hist and (s.penalty_weights is not None or bool(outside.any())):
            dfit = statistics.median(s.iqr_hist)
            if s.penalty_weights is None:
                s.penalty_weights = torch.full_like(s.mean, 2 * dfit)
            damp = min(1.0, st.mueff / 10 / n)
            excess = outside.abs() / variances.sqrt() - 3 * max(1.0, math.sqrt(n) / st.mueff)
            gw = s.penalty_weights * torch.exp((excess.clamp_min(0) / 3).tanh() * (damp / 2))
            s.penalty_weights = torch.where(gw > 5 * dfit, gw * math.exp(-damp / 3), gw)
        if s.violation is None:
            return None
        weights = s.penalty_weights if s.penalty_weights is not None else torch.ones_like(s.mean)
        return f + (s.violation @ weights) / n

    # -- numerics --------------------------------------------------------------------------
    def _decompose(self, s: CMAState) -> None:
        """Eigendecomposition C = B diag(D^2) B^T, every ``eigen_gap`` generations."""
        s.eigen_generation = s.generation
        C = torch.add(s.C, s.C.T).mul_(0.5)  # exact symmetry
        try:
            ev, B = torch.linalg.eigh(C)
        except RuntimeError:  # NaN or no convergence: ends this run as `non_finite`
            s.dmin, s.dmax = 0.0, math.inf
            return
        emin, emax = float(ev[0]), float(ev[-1])
        if not (math.isfinite(emax) and emax > 0):
            s.dmin, s.dmax = 0.0, math.inf
            return
        if emin < emax * 1e-300:
            ev = ev.clamp_min(emax * 1e-300)
        s.C, s.B, s.D = C, B, ev.sqrt()
        s.BD = B * s.D
        s.dmin, s.dmax = math.sqrt(max(emin, emax * 1e-300)), math.sqrt(emax)

    def _stop_criterion(self, s: CMAState, f_best: float, f_worst: float, norm_ps: float) -> str:
        """The name of the first stopping criterion that holds, or ''."""
        st = s.strategy
        if s.run_limit is not None and s.run_evals >= s.run_limit:
            return "maxevals_small_run"
        if not (math.isfinite(norm_ps) and math.isfinite(s.dmax)):
            return "non_finite"
        if s.dmax > s.dmin * math.sqrt(self.max_condition):
            return "condition"
        hist = s.best_hist
        if (
            len(hist) >= st.hist_len
            and max(max(hist), f_worst) - min(min(hist), f_best) < self.tolfun
        ):
            return "tolfun"
        if s.sigma * s.dmax > _TOLUPSIGMA * s.sigma_init:
            return "tolupsigma"
        tol = self.tolx * s.sigma_init
        # Cheap pre-tests with the last decomposition (sqrt(C_ii) >= min(D) up to staleness)
        # before the per-coordinate tests that cost tensor operations.
        if s.sigma * s.dmin < 10 * tol:
            sd = s.sigma * torch.diagonal(s.C).clamp_min(0).sqrt()
            if float(sd.max()) < tol and s.sigma * float(s.pc.abs().max()) < tol:
                return "tolx"
        if s.sigma * s.dmin < 1e-12 * float(s.mean.abs().max()):
            sd = s.sigma * torch.diagonal(s.C).clamp_min(0).sqrt()
            if bool((s.mean == s.mean + 0.2 * sd).any()):
                return "noeffectcoord"
            i = s.generation % s.mean.numel()
            if bool((s.mean == s.mean + (0.1 * s.sigma * float(s.D[i])) * s.B[:, i]).all()):
                return "noeffectaxis"
        return ""

    # -- restarts --------------------------------------------------------------------------
    def _finish_run(self, s: CMAState, reason: str, ctx: RunContext) -> None:
        """A run ended: restart with a new population when restarts are left, else stop."""
        s.stop_reasons.append(reason)
        if s.regime == "large":
            s.evals_large += s.run_evals
        else:
            s.evals_small += s.run_evals
        if self.restarts == "none":
            s.stop = reason
            return
        lam0 = s.popsizes[0]
        sigma_factor = 1.0
        s.run_limit = None
        if self.restarts == "bipop" and s.evals_small < max(1, s.evals_large):
            u = torch.rand(2, generator=ctx.generator, dtype=_F64).tolist()
            big = self.popsize_factor**s.large_restarts
            lam = max(2, math.floor(lam0 * big ** (u[0] ** 2)))
            sigma_factor = 10.0 ** (-2.0 * u[1])
            s.run_limit = max(lam, math.floor(0.5 * s.evals_large))
            s.regime = "small"
        else:
            if s.large_restarts >= self.max_restarts:
                s.stop = reason
                return
            s.large_restarts += 1
            lam = math.floor(lam0 * self.popsize_factor**s.large_restarts)
            s.regime = "large"
        s.restarts += 1
        self._start_run(s, self._restart_mean(s, ctx), sigma_factor, lam)

    def _restart_mean(self, s: CMAState, ctx: RunContext) -> torch.Tensor:
        """x0 again, or a uniform random point of the box when the box is finite."""
        x0 = ctx.x0.detach().to(dtype=_F64, device=s.mean.device)
        if s.lower is None or s.upper is None:
            return x0
        if not bool((torch.isfinite(s.lower) & torch.isfinite(s.upper)).all()):
            return x0
        u = torch.rand(x0.numel(), generator=ctx.generator, dtype=_F64).to(x0.device)
        return s.lower + u * (s.upper - s.lower)

    def converged(self, state: CMAState) -> bool:
        """True once a stopping criterion held and no restart is left."""
        return bool(state.stop)

    def stop_message(self, state: CMAState, generation: int) -> str:
        """The criterion that ended the run, and those of the runs before restarts."""
        msg = f"stopped on {state.stop} after {generation} generations"
        if len(state.stop_reasons) > 1:
            msg += f"; earlier runs stopped on {', '.join(state.stop_reasons[:-1])}"
        return msg


def _positive_number(v: object) -> bool:
    return is_number(v) and v > 0  # type: ignore[operator]


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
