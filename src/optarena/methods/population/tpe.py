"""Tree-structured Parzen Estimator (Bergstra et al., NeurIPS 2011), Optuna's defaults.

After ``n_startup`` uniform draws (the native random search of the space), the observations
are split by rank: the best ``gamma(n) = min(ceil(0.1 n), 25)`` form ``l``, the others ``g``;
each is a Parzen mixture (:mod:`._parzen`) and the next point is the best of ``n_candidates``
draws from ``l`` by ``log l(x) - log g(x)`` (expected improvement). ``multivariate=True`` (the
default, Optuna's ``multivariate=True``) models the variables of a group jointly with one
kernel per observation; ``False`` draws each variable on its own.

Variables come from the space (:mod:`._mixed`): reals and integers (log scales as encoded,
integers by the mass of their cell), unordered choices as categorical distributions. The
parameters under one option of a choice form a group fitted only on the trials where that
option was taken, drawn after their parent. On a plain box every coordinate is a real.

``popsize`` candidates are proposed per generation (default 1: sequential). With more, each one
already proposed in the generation joins ``g`` as a pending trial before the next is drawn
(Optuna's ``constant_liar``: a pending trial is assumed as bad as any), so a batch spreads out.
:meth:`TPE.ask_more` does the same for candidates in flight outside a generation: the ask/tell
Optimizer hands out as many as asked, each told value joining the model at once.
Only ranks of values are used: ``f + c`` proposes the same points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from .._base import PopulationMethod, RunContext
from .._params import param
from .._registry import register
from ._mixed import Var, active, variables
from ._parzen import Parzen

__all__ = ["TPE", "TPEState"]


@dataclass
class TPEState:
    """Run state: every evaluated point (encoded, float64) and its value, in trial order."""

    X: torch.Tensor
    f: torch.Tensor


@register(
    "tpe",
    family="population",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
    requires_bounds=True,
)
@dataclass(frozen=True)
class TPE(PopulationMethod):
    """Tree-structured Parzen Estimator on boxes and mixed spaces (Optuna's defaults).

    Args:
        n_startup: uniform random trials before the model is used.
        n_candidates: draws from ``l`` compared by expected improvement per proposal.
        multivariate: one joint kernel per observation over a group's variables.
        prior_weight: weight of the prior kernel (the uniform-ish wide one).
        popsize: candidates per generation; pending ones are told to the model as liars.
    """

    rank_based: ClassVar[bool] = True  # only the ranks of values split the observations

    n_startup: int = param(10, ge=1)
    n_candidates: int = param(24, ge=1)
    multivariate: bool = param(True)
    prior_weight: float = param(1.0, gt=0)
    popsize: int = param(1, ge=1)

    def init(self, x0: torch.Tensor, ctx: RunContext) -> TPEState:
        variables(ctx, self.info.name)  # refuses a box that is not finite before any evaluation
        dim = x0.numel()
        return TPEState(torch.zeros((0, dim), dtype=torch.float64), torch.zeros(0))

    def ask(self, state: TPEState, ctx: RunContext) -> torch.Tensor:
        return self.ask_more(state, ctx, ctx.x0.new_empty((0, ctx.x0.numel())), self.popsize)

    def ask_more(
        self, state: TPEState, ctx: RunContext, pending: torch.Tensor, k: int
    ) -> torch.Tensor:
        """``k`` candidates while the rows ``pending`` (handed out, not told yet) are out:
        they join ``g`` as liars, as the earlier rows of a generation do, so the ask/tell
        Optimizer can hand out any number of candidates, one at a time or together."""
        vs = variables(ctx, self.info.name)
        X = state.X.numpy()
        f = state.f.double().numpy()
        rows: list[np.ndarray] = list(pending.detach().cpu().double().numpy())
        first = len(rows)
        for _ in range(k):
            if X.shape[0] + len(rows) < self.n_startup:
                rows.append(self._uniform(vs, ctx))
            else:
                pend = np.array(rows).reshape(len(rows), X.shape[1])
                rows.append(self._propose(vs, X, f, pend, ctx))
        out = torch.as_tensor(np.array(rows[first:])).reshape(k, X.shape[1])
        return out.to(dtype=ctx.x0.dtype, device=ctx.x0.device)

    def tell(self, state: TPEState, X: torch.Tensor, f: torch.Tensor, ctx: RunContext) -> TPEState:
        Xd = X.detach().cpu().double()
        fd = f.detach().cpu().double()
        return TPEState(torch.cat([state.X, Xd]), torch.cat([state.f.double(), fd]))

    # -- proposals ------------------------------------------------------------------------
    def _blank(self, vs: tuple[Var, ...], ctx: RunContext) -> np.ndarray:
        lo = ctx.lower.detach().cpu().double().numpy().reshape(-1)  # type: ignore[union-attr]
        hi = ctx.upper.detach().cpu().double().numpy().reshape(-1)  # type: ignore[union-attr]
        x = (lo + hi) / 2
        for v in vs:
            if v.kind == "cat":
                x[v.start : v.start + v.size] = 0.0
                x[v.start] = 1.0
            elif v.kind == "int":
                x[v.start] = v.values(v.index(x[v.start]))
            elif v.kind == "fixed":
                x[v.start : v.start + v.size] = lo[v.start : v.start + v.size]
        return x

    def _uniform(self, vs: tuple[Var, ...], ctx: RunContext) -> np.ndarray:
        """A uniform point of the box: the space's native random draw."""
        x = self._blank(vs, ctx)
        for v in vs:
            if v.kind == "real":
                x[v.start] = ctx.rng.uniform(v.lower, v.upper)
            elif v.kind == "int":
                x[v.start] = v.values(v.index(ctx.rng.uniform(v.lower, v.upper)))
            elif v.kind == "cat":
                _put(x, v, int(ctx.rng.integers(v.n)))
        return x

    def _propose(
        self,
        vs: tuple[Var, ...],
        X: np.ndarray,
        f: np.ndarray,
        pending: np.ndarray,
        ctx: RunContext,
    ) -> np.ndarray:
        n = X.shape[0]
        order = np.argsort(f, kind="stable")  # +inf (failed) ranks last
        nb = min(math.ceil(0.1 * n), 25)
        below = np.sort(order[:nb])  # trial order: the age weights apply
        above = np.sort(order[nb:])
        Xb, Xa = X[below], np.concatenate([X[above], pending])
        act_b, act_a = active(Xb, vs), active(Xa, vs)
        x = self._blank(vs, ctx)
        groups: dict[tuple[int, int] | None, list[int]] = {}
        for i, v in enumerate(vs):
            if v.kind != "fixed":
                groups.setdefault(v.parent, []).append(i)
        todo: list[tuple[int, int] | None] = [None]
        while todo:
            key = todo.pop(0)
            idx = groups.get(key, [])
            parts = [idx] if self.multivariate else [[i] for i in idx]
            for part in parts:
                self._draw(vs, part, Xb, Xa, act_b, act_a, x, ctx)
            for i in idx:  # the options taken open their sub-groups
                if vs[i].kind in ("cat", "int"):
                    opt = int(vs[i].option(x[None])[0])
                    if (i, opt) in groups:
                        todo.append((i, opt))
        return x

    def _draw(
        self,
        vs: tuple[Var, ...],
        part: list[int],
        Xb: np.ndarray,
        Xa: np.ndarray,
        act_b: np.ndarray,
        act_a: np.ndarray,
        x: np.ndarray,
        ctx: RunContext,
    ) -> None:
        """Choose the variables ``part`` of ``x`` by expected improvement over ``l`` draws,
        fitting on the trials where they are active."""
        sub = [vs[i] for i in part]
        lb = Parzen(Xb[act_b[:, part[0]]], sub, self.prior_weight)
        ga = Parzen(Xa[act_a[:, part[0]]], sub, self.prior_weight)
        Y = lb.sample(ctx.rng, self.n_candidates)
        score = lb.log_pdf(Y) - ga.log_pdf(Y)
        best = Y[int(np.argmax(score))]
        for v, y in zip(sub, best, strict=True):
            if v.kind == "cat":
                _put(x, v, int(y))
            else:
                x[v.start] = y


def _put(x: np.ndarray, v: Var, option: int) -> None:
    """Write option ``option`` of the unordered choice ``v`` as its one-hot coordinates."""
    x[v.start : v.start + v.size] = 0.0
    x[v.start + option] = 1.0
