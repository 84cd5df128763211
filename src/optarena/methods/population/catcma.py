"""CatCMA with margin: a Gaussian over reals and integers, a categorical law per choice.

R. Hamano, S. Saito, M. Nomura, K. Uchida, S. Shirakawa, "CatCMA: Stochastic Optimization for
Mixed-Category Problems" (GECCO 2024) and its margin variant for integers (R. Hamano, S. Saito,
M. Nomura, S. Shirakawa, "CMA-ES with Margin", GECCO 2022), following the ``cmaes`` library's
``CatCMAwM``. One generation draws each candidate's real and integer coordinates from
``N(m, sigma^2 A C A)`` (``A``: the margin's diagonal scaling of the integer coordinates;
orthogonal sampling, see ``_catcma_update.py``: the draws of a generation are mutually
orthogonal in blocks of the dimension) and each unordered choice from its probabilities
``q``; both are updated from the same ranking: CMA-ES (active, rank-one and rank-mu) for the
Gaussian, the natural gradient of the expected ranking weights for ``q`` with an adaptive step
(the SNR rule of ASNG) and a floor ``q_min`` so that no option is lost. The margin keeps every
integer's probability of leaving its current value at least
``alpha = 1 - 0.73^(1 / (integers + choices))``, so integers never stall.

Integers are read through the space's encoding (their cells, log scales included); ordered
choices are integers over their indices. On a plain box every coordinate is real and the method
is CMA-ES with a bound penalty. Candidates are the box encoding: an integer at its value's
coordinate, a choice as the one-hot point of the drawn option. When a run stops (CMA-ES's
criteria, or every choice settled with no Gaussian), it restarts from a uniform point with twice
the population (IPOP), until the budget is spent. Only ranks and differences of values enter
(the bound penalty uses the values' interquartile range), so ``f + c`` searches the same points.

Once the discrete mode has stood still for ``focus`` generations, the focus phase
(``_catcma_focus.py``) probes its single discrete moves at fixed reals, then runs CMA-ES on the
reals alone with the mode held (faster than the mixed search once the discrete part is
settled), and hands its Gaussian back to the mixed search when it converges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from .._base import PopulationMethod, RunContext
from .._params import param
from .._registry import register
from ._catcma_focus import enter, held_point, leave, neighbours, settled, take
from ._catcma_update import orthogonal_normal, update
from ._mixed import Var, variables

__all__ = ["CatCMA", "CatCMAState"]

EPS = 1e-8


def _t(a: np.ndarray | float) -> torch.Tensor:
    return torch.as_tensor(np.array(a, dtype=np.float64))


@dataclass
class CatCMAState:
    """Run state (tensors and numbers): the Gaussian, the margin, the categorical law, the
    restart counters and the last generation's raw draws."""

    popsize: int
    mean: torch.Tensor
    sigma: float
    C: torch.Tensor
    ps: torch.Tensor
    pc: torch.Tensor
    A: torch.Tensor  # margin scaling of each Gaussian coordinate (1 for reals)
    pmut: torch.Tensor  # the margin's mutation probability of each integer
    q: torch.Tensor  # (choices, most options) probabilities, zero-padded
    Delta: float = 1.0  # the SNR-adapted inverse step of the categorical update
    delta: float = 1.0  # the categorical step of the next update
    gamma: float = 0.0
    s: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))
    iq_hist: list[float] = field(default_factory=list)
    fun_hist: list[float] = field(default_factory=list)
    g: int = 0  # generations of this run
    restarts: int = 0
    V: torch.Tensor | None = None  # the last draws' Gaussian coordinates (before repair)
    K: torch.Tensor | None = None  # the last draws' option indices
    calm: int = 0  # generations the discrete mode has stood still
    mode: torch.Tensor | None = None  # that mode (integers' cells, choices' options)
    sub: CatCMAState | None = None  # the focus phase: CMA-ES over the reals alone
    held: torch.Tensor | None = None  # the encoded point holding the discrete mode meanwhile
    held_f: float | None = None  # its value (None: not evaluated yet)
    probe: torch.Tensor | None = None  # the pending probe's points (the mode's moves)


@register(
    "catcma",
    family="population",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
    requires_bounds=True,
    dense_matrices=4,  # the CMA state of the encoded coordinates (C, BD, B, workspace)
    roles={"mixed": 1},
)
@dataclass(frozen=True)
class CatCMA(PopulationMethod):
    """CatCMA with margin (Hamano et al. 2024 / 2022) on mixed spaces, IPOP restarts.

    Args:
        popsize: first run's population; ``None``: ``4 + floor(3 ln(dimensions))`` counting a
            choice as one dimension.
        popsize_factor: growth of the population at each restart.
        max_restarts: most restarts (``None``: until the budget is spent).
        tolfun: a run stops when its best and worst values of the recent generations lie
            within this (a difference: unchanged by ``f + c``).
        focus: generations the discrete mode (integers' cells, choices' likeliest options)
            must stay unchanged, after the first, before the focus phase (``_catcma_focus``):
            single discrete moves probed at the mean's reals, then CMA-ES on the reals with
            the mode held, back to the mixed search when it converges; ``None``: never.
    """

    rank_based: ClassVar[bool] = True  # ranks and differences of values: f + c is the same

    popsize: int | None = param(None, ge=2)
    popsize_factor: float = param(2.0, gt=1)
    max_restarts: int | None = param(None, ge=0)
    tolfun: float = param(1e-12, ge=0)
    focus: int | None = param(2, ge=1)

    # -- set-up ---------------------------------------------------------------------------
    def _vars(self, ctx: RunContext) -> tuple[list[Var], list[Var]]:
        """The Gaussian's variables (reals, integers) and the categoricals."""
        vs = variables(ctx, self.info.name)
        return [v for v in vs if v.kind in ("real", "int")], [v for v in vs if v.kind == "cat"]

    def init(self, x0: torch.Tensor, ctx: RunContext) -> CatCMAState:
        gauss, cats = self._vars(ctx)
        n = max(len(gauss) + len(cats), 1)
        lam = self.popsize if self.popsize is not None else 4 + math.floor(3 * math.log(n))
        x = x0.detach().cpu().double().numpy().reshape(-1)
        m = np.array([min(max(x[v.start], v.lower), v.upper) for v in gauss])
        return self._fresh(lam, m, gauss, cats, restarts=0)

    def _fresh(
        self, lam: int, m: np.ndarray, gauss: list[Var], cats: list[Var], restarts: int
    ) -> CatCMAState:
        lo = np.array([v.lower for v in gauss])
        hi = np.array([v.upper for v in gauss])
        is_int = np.array([v.kind == "int" for v in gauss], dtype=bool)
        # CatCMAwM's spread for a mean at the centre (half the box over 6, over 5 for integers)
        # wherever the mean starts, so a start near a side does not shrink the search
        width = (hi - lo) / 2 / np.where(is_int, 5.0, 6.0)
        kmax = max((v.n for v in cats), default=0)
        q = np.zeros((len(cats), kmax))
        for i, v in enumerate(cats):
            q[i, : v.n] = 1.0 / v.n
        nsum = sum(v.n - 1 for v in cats)
        return CatCMAState(
            popsize=lam,
            mean=_t(m),
            sigma=1.0,
            C=_t(np.diag(width**2)),
            ps=_t(np.zeros(len(gauss))),
            pc=_t(np.zeros(len(gauss))),
            A=_t(np.ones(len(gauss))),
            pmut=_t(np.full(int(is_int.sum()), 0.5 - EPS)),
            q=_t(q),
            s=_t(np.zeros(nsum)),
            restarts=restarts,
        )

    # -- ask ------------------------------------------------------------------------------
    def ask(self, state: CatCMAState, ctx: RunContext) -> torch.Tensor:
        gauss, cats = self._vars(ctx)
        rng = ctx.rng
        if state.probe is not None:
            return state.probe.to(dtype=ctx.x0.dtype, device=ctx.x0.device)
        if state.sub is not None:  # the focus phase: reals drawn, the discrete mode held
            X = np.tile(state.held.numpy(), (state.sub.popsize, 1))
            _draw(state.sub, [v for v in gauss if v.kind == "real"], rng, X)
            return torch.as_tensor(X).to(dtype=ctx.x0.dtype, device=ctx.x0.device)
        lam = state.popsize
        lower = ctx.lower.detach().cpu().double().numpy().reshape(-1)  # type: ignore[union-attr]
        X = np.tile(lower, (lam, 1))  # fixed coordinates stay at their single value
        if gauss:
            _draw(state, gauss, rng, X)
        if cats:
            cum = np.cumsum(state.q.numpy(), axis=1)
            u = rng.random((lam, len(cats), 1))
            K = np.minimum((u >= cum[None]).sum(axis=2), np.array([v.n - 1 for v in cats]))
            for i, v in enumerate(cats):
                X[:, v.start : v.start + v.size] = 0.0
                X[np.arange(lam), v.start + K[:, i]] = 1.0
            state.K = torch.as_tensor(K)
        return torch.as_tensor(X).to(dtype=ctx.x0.dtype, device=ctx.x0.device)

    # -- tell -----------------------------------------------------------------------------
    def tell(
        self, state: CatCMAState, X: torch.Tensor, f: torch.Tensor, ctx: RunContext
    ) -> CatCMAState:
        gauss, cats = self._vars(ctx)
        fv = f.detach().cpu().double().numpy()
        sub = state.sub
        rows = state.popsize if sub is None else sub.popsize
        if fv.shape[0] < (rows if state.probe is None else state.probe.shape[0]):
            return state  # a trimmed last generation: nothing to learn
        if state.probe is not None:
            return self._probed(state, fv, gauss, cats)
        if sub is not None:
            if update(sub, fv, [v for v in gauss if v.kind == "real"], [], self.tolfun):
                leave(state, gauss)
            sub.g += 1
            return state
        stop = update(state, fv, gauss, cats, self.tolfun)
        state.g += 1
        reals = [v for v in gauss if v.kind == "real"]
        if (
            self.focus is not None
            and not stop
            and reals
            and settled(state, gauss, cats) >= self.focus
        ):  # the mode stood still: probe its single moves, the mode itself first
            lower = ctx.lower.detach().cpu().double().numpy().reshape(-1)  # type: ignore[union-attr]
            held = held_point(state, gauss, cats, lower)
            state.held, state.held_f = _t(held), None
            state.probe = _t(np.vstack([held, neighbours(held, gauss, cats)]))
        if not stop:
            return state
        if self.max_restarts is not None and state.restarts >= self.max_restarts:
            state.restarts += 1
            return state
        grow = min(state.restarts + 1, 9)
        n = max(len(gauss) + len(cats), 1)
        base = self.popsize if self.popsize is not None else 4 + math.floor(3 * math.log(n))
        lam = round(base * self.popsize_factor**grow)
        m = np.array([ctx.rng.uniform(v.lower, v.upper) for v in gauss])
        return self._fresh(lam, m, gauss, cats, restarts=state.restarts + 1)

    def _probed(
        self, state: CatCMAState, fv: np.ndarray, gauss: list[Var], cats: list[Var]
    ) -> CatCMAState:
        """Take the probe's best strict improvement on the mode and probe again, else start
        CMA-ES on the reals with the mode held."""
        X, held = state.probe.numpy(), state.held.numpy()  # type: ignore[union-attr]
        if state.held_f is None:  # the first probe evaluated the mode itself first
            state.held_f, X, fv = float(fv[0]), X[1:], fv[1:]
        b = int(np.argmin(fv)) if fv.size else -1
        if b >= 0 and fv[b] < state.held_f:
            take(state, gauss, cats, X[b])
            nxt = neighbours(X[b], gauss, cats)
            nxt = nxt[~np.all(nxt == held, axis=1)]  # not back to the point just left
            state.held, state.held_f = _t(X[b]), float(fv[b])
            if nxt.shape[0]:
                state.probe = _t(nxt)
                return state
        state.probe = None
        reals = [v for v in gauss if v.kind == "real"]
        lam = 4 + math.floor(3 * math.log(len(reals)))
        enter(state, gauss, self._fresh(lam, np.zeros(len(reals)), reals, [], 0))
        return state

    def converged(self, state: CatCMAState) -> bool:
        return self.max_restarts is not None and state.restarts > self.max_restarts

    def stop_message(self, state: CatCMAState, generation: int) -> str:
        return f"converged after {state.restarts} restarts ({generation} generations)"


def _draw(st: CatCMAState, gauss: list[Var], rng: np.random.Generator, X: np.ndarray) -> None:
    """Write ``N(m, sigma^2 A C A)`` draws of ``gauss`` into ``X`` (integers at their cell's
    coordinate, reals clipped to the box), orthogonal in blocks of up to ``n`` (a generation
    spreads over every direction); the raw draws go to ``st.V``."""
    D2, B = np.linalg.eigh(st.C.numpy())
    D = np.sqrt(np.where(D2 < 0, EPS, D2))
    Z = orthogonal_normal(rng, X.shape[0], len(gauss))
    V = st.mean.numpy() + st.sigma * st.A.numpy() * (Z * D) @ B.T
    for j, v in enumerate(gauss):
        if v.kind == "real":
            X[:, v.start] = np.clip(V[:, j], v.lower, v.upper)
        else:
            X[:, v.start] = v.values(v.index(V[:, j]))
    st.V = _t(V)
