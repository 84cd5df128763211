"""The arithmetic of CMA-ES: strategy constants, run state, eigendecomposition, boundary
penalty and stopping criteria (N. Hansen, "The CMA Evolution Strategy: A Tutorial",
arXiv:1604.00772, 2016; ``(eq. N)`` is that paper's equation number).

The method itself (options, ask and tell, restarts) is ``cmaes.py``; the distribution is kept
in float64 whatever the problem's dtype.

Sampling needs a factor ``A`` with ``A A^T = C``. Below :data:`CHOLESKY_DIM` dimensions it is
``B diag(D)`` from the eigendecomposition, as in the tutorial. From :data:`CHOLESKY_DIM` on it
is the Cholesky factor ``L``, 10-40x cheaper to compute than ``eigh`` at d = 100-1,000 (the
eigendecomposition then costs more than everything else of a generation), and the step-size
path uses ``L^(-1) y = z`` in place of ``C^(-1/2) y = B z``: the Cholesky-CMA-ES of Krause,
Arbones & Igel (NeurIPS 2016), which performs as the eigen-based update does. Both factors are
recomputed lazily, every ``eigen_gap`` generations. On the Cholesky path a generation's d x d
work is three products and no other pass over C: sampling by block rows of ``L`` that skip its
zero upper triangle, the rank-one and rank-mu updates of C as one product (``p_c`` one more
row), and the factorization itself, which reads C's lower triangle, so C is not symmetrized.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import torch

from ._restarts import RestartBook

__all__ = [
    "CHOLESKY_DIM",
    "F64",
    "SIGMA_MAX",
    "TPA_DIM",
    "CMAState",
    "Strategy",
    "boundary_penalty",
    "box_inverse",
    "box_transform",
    "decompose",
    "sample",
    "stop_criterion",
    "strategy",
    "whiten",
]

F64 = torch.float64
SIGMA_MAX = 1e32
_TOLUPSIGMA = 1e20  # stop when sigma * max(D) grew this much over the initial step size
#: Stop once more than this many consecutive generations have their best value equal to the
#: 75 % quantile (pycma's ``tolflatfitness``, 1): the run sits on a plateau that widening does
#: not leave. bbob f7 at d = 20, 4 runs per instance: 34 of 60 triples, against 23 with 3.
TOLFLATFITNESS = 1
#: From this dimension on, C is sampled through its Cholesky factor instead of its
#: eigendecomposition (``eigh`` is then 10x or more the cost of a Cholesky factorization).
CHOLESKY_DIM = 50
#: From this dimension on, the step size follows two-point adaptation (TPA; Hansen 2008,
#: Hansen et al. 2014) instead of cumulation (CSA), as in pycma (``TPA_dimension = 300``):
#: CSA's time constant grows like d / mueff, so with the default population it adapts the
#: step size too slowly at large d.
TPA_DIM = 300


@dataclass(frozen=True)
class Strategy:
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
    pick: torch.Tensor  # sorted-value positions: best, flat-fitness probe (75 %), quartiles, worst
    cholesky: bool = False  # sample through the Cholesky factor of C (d >= CHOLESKY_DIM)
    tpa_damp: float = 0.0  # > 0: two-point step-size adaptation with this damping (d >= TPA_DIM)


def strategy(n: int, lam: int, active: bool, device: torch.device) -> Strategy:
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
    # (eq. 55) with pycma 4.5's factor on its square root (1 up to d = 5, towards 3 in large
    # d): the large populations of later IPOP runs damp their step size more, where the
    # tutorial's collapses it on plateaus (bbob's step ellipsoid f7 at d = 20, population 48,
    # 20 single runs: 51 of 60 triples solved against 23, pycma 57; BENCHMARKS.md)
    inner = max(1.0, 3 * (1 - 0.5 ** (n / 9)))
    damps = 1 + 2 * max(0.0, inner * math.sqrt((mueff - 1) / (n + 1)) - 1) + cs
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
    pick = [0, int(0.75 * lam), l1 // 4, min(lam - 1, 3 * l1 // 4), lam - 1]
    return Strategy(
        lam=lam,
        mu=mu,
        wpos=torch.tensor(wpos, dtype=F64, device=device),
        wneg_n=torch.tensor(wneg, dtype=F64, device=device) * n,
        wsum=sum(wpos) + sum(wneg),
        mueff=mueff,
        cc=cc,
        cs=cs,
        c1=c1,
        cmu=cmu,
        damps=damps,
        chin=math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n)),
        # lazy, O(n^2) per sample; pycma waits for the unrounded gap (every ceil(gap)
        # generations: 2 / 3 / 5 / 8 at d = 100 / 300 / 530 / 1,000, where this is 1 / 2 / 4 / 7)
        eigen_gap=max(1, math.floor(1 / (10 * n * (c1 + cmu)))),
        hist_len=10 + math.ceil(30 * n / lam),
        pick=torch.tensor(pick, device=device),
        cholesky=n >= CHOLESKY_DIM,
        # pycma's TPA damping: 0.7 + 2 ln d + 2 ln max(1, lam - d)
        tpa_damp=(0.7 + 2 * math.log(n) + 2 * math.log(max(1, lam - n))) if n >= TPA_DIM else 0.0,
    )


@dataclass
class CMAState(RestartBook):
    """Run state of CMA-ES: the distribution, its paths and counters, plus the restart
    bookkeeping it inherits.

    Arrays are float64 tensors and scalars plain numbers, so a deep copy (a checkpoint)
    resumes the run exactly.
    """

    mean: torch.Tensor  # (d,) distribution mean m
    sigma: float  # step size
    C: torch.Tensor  # (d, d) covariance matrix
    B: torch.Tensor | None  # (d, d) eigenvectors of C (columns), last decomposition; None
    D: torch.Tensor | None  # (d,) sqrt of C's eigenvalues   when BD is a Cholesky factor
    BD: torch.Tensor  # (d, d) B @ diag(D) or Cholesky L: maps N(0, I) to N(0, C)
    ps: torch.Tensor  # (d,) conjugate evolution path (step size)
    pc: torch.Tensor  # (d,) evolution path (rank-one update)
    strategy: Strategy
    lower: torch.Tensor | None  # float64 bounds (None when unbounded)
    upper: torch.Tensor | None
    std0: torch.Tensor  # (d,) initial standard deviations per coordinate
    sigma_init: float  # step size at the start of the current run
    max_var: torch.Tensor | None = None  # (d,) largest variance per coordinate (bounded)
    # min(D) and max(D) at the last decomposition; with a Cholesky factor the bounds
    # min(L_ii) <= sqrt(min eigenvalue) and sqrt(max C_ii) <= sqrt(max eigenvalue)
    dmin: float = 1.0
    dmax: float = 1.0
    generation: int = 0  # generations of the current run
    eigen_generation: int = 0  # generation of the last eigendecomposition
    best_hist: list[float] = field(default_factory=list)  # best f of recent generations
    flat_generations: int = 0  # consecutive generations whose best equals the 75 % quantile
    penalty_weights: torch.Tensor | None = None  # (d,) boundary penalty weights, once set
    iqr_hist: list[float] = field(default_factory=list)  # normalized f spreads (penalty)
    y: torch.Tensor | None = None  # (lam, d) steps of the asked population, until tell
    z: torch.Tensor | None = None  # (lam, d) the same steps as N(0, I) samples
    violation: torch.Tensor | None = None  # (lam, d) squared clipping distances, if any
    shift: torch.Tensor | None = None  # (d,) last mean shift (TPA), None before the first
    shift_z: torch.Tensor | None = None  # (d,) the shift whitened: sum w_i z_i, until decompose
    tpa_s: float = 0.0  # TPA's smoothed rank difference of the two mirrored samples
    mirrored: bool = False  # the asked population's first two rows are TPA's mirrored pair

    @property
    def popsize(self) -> int:
        """Population size of the current run."""
        return self.strategy.lam


def boundary_penalty(
    s: Any, f: torch.Tensor, iqr: float, variances: torch.Tensor | None = None
) -> torch.Tensor | None:
    """f plus the boundary penalty of the clipped samples (None when none was clipped).

    ``s`` is a CMA run state (full, or the linear-memory ones of ``_linear_cma.py``: any state
    with the same mean, strategy, box, violation and penalty fields); ``variances`` are the
    coordinates' current variances (default: ``diag(C) sigma^2`` of a full covariance).

    The coordinate-wise weights follow pycma's BoundPenalty (Hansen et al. 2009): set to
    twice the median recent interquartile range of f per unit variance when the mean
    first leaves the box, raised while it stays out, lowered when they grow large.
    """
    st, n = s.strategy, s.mean.numel()
    if variances is None:
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
    return f + (s.violation @ weights.to(s.violation.dtype)).to(F64) / n


def _margins(lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Widths of the quadratic zones of :func:`box_transform` inside each side: a 40th of the
    box width (pycma's ``max(1, |bound|) / 20`` on [-5, 5]), ``max(1, |bound|) / 20`` when the
    other side is infinite (1 on an infinite side, where it is never used)."""
    width = upper - lower
    finite = torch.isfinite(width)
    lo = torch.where(finite, width / 40, lower.abs().clamp_min(1) / 20)
    hi = torch.where(finite, width / 40, upper.abs().clamp_min(1) / 20)
    return lo.nan_to_num(1.0, 1.0), hi.nan_to_num(1.0, 1.0)


def box_transform(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Rows ``x`` mapped into the box by pycma's periodic linear-quadratic transformation
    (``BoxConstraintsLinQuadTransformation``): the identity inside ``[lower + al, upper - au]``,
    quadratic up to ``al`` outside either side, mirrored and periodic beyond, so every point of
    the line maps into the box and the map is differentiable."""
    al, au = _margins(lower, upper)
    width = upper - lower
    period, start = 2 * (width + al + au), lower - 2 * al - width / 2
    far = (x < start) | (x > upper + 2 * au + width / 2)  # never with an infinite side
    y = torch.where(far, x - period * torch.floor((x - start) / period), x)
    y = torch.where(y > upper + au, 2 * (upper + au) - y, y)  # mirror into [l - al, u + au]
    y = torch.where(y < lower - al, 2 * (lower - al) - y, y)
    y = torch.where(y < lower + al, lower + (y - (lower - al)).square() / (4 * al), y)
    y = torch.where(y > upper - au, upper - (y - (upper + au)).square() / (4 * au), y)
    y = torch.minimum(torch.maximum(y, lower), upper)  # rounding
    return torch.where(width > 0, y, lower)  # a fixed coordinate (0 / 0 above)


def box_inverse(y: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """A point of the box mapped back by the inverse of :func:`box_transform` (into
    ``[lower - al, upper + au]``): where a run starting at ``y`` puts its mean."""
    al, au = _margins(lower, upper)
    y = torch.minimum(torch.maximum(y, lower), upper)
    x = torch.where(y < lower + al, lower - al + 2 * (al * (y - lower)).sqrt(), y)
    x = torch.where(y > upper - au, upper + au - 2 * (au * (upper - y)).sqrt(), x)
    return torch.where(upper > lower, x, lower)


def whiten(s: CMAState, y: torch.Tensor) -> torch.Tensor:
    """Rows ``y`` mapped back to N(0, I) samples: ``A^(-1) y`` for the sampling factor ``A``
    of the last decomposition (``D^(-1) B^T y``, or ``L^(-1) y`` by a triangular solve)."""
    if s.B is None or s.D is None:
        return torch.linalg.solve_triangular(s.BD, y.T, upper=False).T
    return (y @ s.B) / s.D


#: Row blocks of the triangular sampling product: the zero upper triangle of ``L`` is skipped
#: (about (1 + 1 / blocks) / 2 of the full product's work).
TRI_BLOCK = 256


def sample(s: CMAState, z: torch.Tensor) -> torch.Tensor:
    """Rows ``z`` of N(0, I) samples mapped to N(0, C): ``z A^T`` for the sampling factor ``A``
    (with a Cholesky factor, block rows of ``A`` times the columns that are not zero)."""
    A, n = s.BD, s.BD.shape[0]
    if s.B is not None or n <= TRI_BLOCK:
        return z @ A.T
    yt = torch.empty(n, z.shape[0], dtype=z.dtype, device=z.device)
    zt = z.T
    for r0 in range(0, n, TRI_BLOCK):
        r1 = min(n, r0 + TRI_BLOCK)
        torch.mm(A[r0:r1, :r1], zt[:r1], out=yt[r0:r1])
    return yt.T


def decompose(s: CMAState) -> None:
    """Refresh the sampling factor of C every ``eigen_gap`` generations: the Cholesky factor
    from :data:`CHOLESKY_DIM` dimensions on (the eigendecomposition when it fails: C not
    numerically positive definite), else C = B diag(D^2) B^T."""
    s.eigen_generation = s.generation
    s.shift_z = None  # whitened by the factor that is replaced now
    if s.strategy.cholesky:  # reads C's lower triangle only: no symmetrizing pass
        L, info = torch.linalg.cholesky_ex(s.C)
        if int(info) == 0:
            diag = torch.diagonal(L)
            s.B, s.D, s.BD = None, None, L
            s.dmin, s.dmax = float(diag.min()), math.sqrt(float(torch.diagonal(s.C).max()))
            return
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


def stop_criterion(
    s: CMAState,
    f_best: float,
    f_worst: float,
    norm_ps: float,
    *,
    tolx: float,
    tolfun: float,
    max_condition: float,
) -> str:
    """The name of the first stopping criterion that holds, or ''."""
    st = s.strategy
    if s.run_limit is not None and s.run_evals >= s.run_limit:
        return "maxevals_small_run"
    if not (math.isfinite(norm_ps) and math.isfinite(s.dmax)):
        return "non_finite"
    if s.flat_generations > TOLFLATFITNESS:
        return "tolflatfitness"
    if s.dmax > s.dmin * math.sqrt(max_condition):
        return "condition"
    hist = s.best_hist
    if len(hist) >= st.hist_len and max(max(hist), f_worst) - min(min(hist), f_best) < tolfun:
        return "tolfun"
    if s.sigma * s.dmax > _TOLUPSIGMA * s.sigma_init:
        return "tolupsigma"
    tol = tolx * s.sigma_init
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
        if s.B is None or s.D is None:  # Cholesky: the columns of L are the axes
            axis = (0.1 * s.sigma) * s.BD[:, i]
        else:
            axis = (0.1 * s.sigma * float(s.D[i])) * s.B[:, i]
        if bool((s.mean == s.mean + axis).all()):
            return "noeffectaxis"
    return ""
