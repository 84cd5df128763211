"""L-BFGS: torch.optim.LBFGS without bounds, a projected L-BFGS inside a box.

Without bounds, a run repeats ``optimizer.step(closure)`` of torch.optim.LBFGS (each doing up
to ``max_iter`` inner iterations, as in the usual training loop) until a step makes no
progress, so it follows torch's trajectory exactly. With bounds, torch has no answer; the run
is one lane of the family's quasi-Newton engine (``_quasi_newton.py``, which ``multistart``
runs with many lanes): the projected scheme of Kim, Sra & Dhillon (2010), the L-BFGS direction
on the free variables (those not held at a bound by the gradient) and, with
``line_search=None``, a backtracking Armijo search along the projection arc P(x + t d) from
the step ``lr``, halving it; with ``"strong_wolfe"``, when the first trial point x + t d lies in
the box, a strong Wolfe search along the segment up to where it meets the box (``_wolfe.py``,
as L-BFGS-B does), else the arc search, which can reach several bounds in one step. Every
evaluated point lies inside the box. Every closure call, line-search probes included, is one
counted evaluation. Both run states are plain tensors, so runs can be checkpointed and resumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ...core.evaluator import Evaluator
from .._base import GradientMethod, RunContext
from .._params import param
from .._registry import register
from ._quasi_newton import LimitedMemory, QuasiNewton
from ._torch import leaf, load_optimizer, save_optimizer, warm_up_torch_optim
from ._wolfe import largest_step, segment_wolfe

__all__ = ["LBFGS", "BoxState", "LBFGSState"]


@dataclass
class LBFGSState:
    """Run state without bounds: the iterate and the torch optimizer holding the pairs."""

    x: torch.Tensor
    optimizer: torch.optim.LBFGS
    steps: int = 0


@dataclass
class BoxState:
    """Run state of the projected L-BFGS: one lane of the quasi-Newton engine (iterate,
    value, gradient and curvature pairs, all tensors)."""

    qn: QuasiNewton
    steps: int = 0

    @property
    def x(self) -> torch.Tensor:
        """The iterate."""
        return self.qn.X[0]

    @property
    def f(self) -> float:
        """The value at the iterate."""
        return float(self.qn.F[0])

    @f.setter
    def f(self, value: float) -> None:
        self.qn.F[0] = value

    @property
    def g(self) -> torch.Tensor:
        """The gradient at the iterate."""
        return self.qn.G[0]

    @g.setter
    def g(self, value: torch.Tensor) -> None:
        self.qn.G[0] = value


@register(
    "lbfgs",
    family="gradient",
    needs_grad=True,
    supports_bounds=True,
    batched_lanes=True,
    quasi_newton="limited",
    roles={"local": 4, "from_x0": 1},
    role_options={"from_x0": {"line_search": "strong_wolfe"}},
)
@dataclass(frozen=True)
class LBFGS(GradientMethod):
    """Limited-memory BFGS (torch.optim.LBFGS); ``line_search="strong_wolfe"`` is safer.

    Without a line search a step has the fixed length ``lr`` along the quasi-Newton direction,
    which can diverge on non-convex functions (the run then ends with ``non_finite``).
    """

    checkpointable: ClassVar[bool] = True

    lr: float = param(1.0, "step length along the quasi-Newton direction", gt=0)
    max_iter: int = param(20, "inner iterations per optimizer step (torch's max_iter)", ge=1)
    max_eval: int | None = param(
        None, "evaluations per optimizer step (None: 1.25 max_iter, as torch)", ge=1
    )
    tolerance_grad: float = param(1e-7, "stop when the (projected) gradient is below this", ge=0)
    tolerance_change: float = param(1e-9, "stop when a step changes f or x less than this", ge=0)
    history_size: int = param(100, "curvature pairs kept", ge=1)
    line_search: str | None = param(
        None,
        "None: steps of length lr (in a box, halved until the value decreases enough); "
        "'strong_wolfe': a strong Wolfe search (in a box, up to the wall; the halving "
        "search when the first trial leaves the box)",
        choices=("strong_wolfe",),
        accepts="'strong_wolfe'",
    )

    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        low = ctx.x0.dtype in (torch.float16, torch.bfloat16)
        if low and ctx.lower is not None and ctx.upper is not None:
            raise ValueError(
                f"lbfgs in a box runs in float32 or float64 (torch's triangular solves have no "
                f"{ctx.x0.dtype} kernels): give x0 as x0.float()"
            )
        warm_up_torch_optim()

    def _optimizer(self, x: torch.Tensor) -> torch.optim.LBFGS:
        return torch.optim.LBFGS(
            [x],
            lr=self.lr,
            max_iter=self.max_iter,
            max_eval=self.max_eval,
            tolerance_grad=self.tolerance_grad,
            tolerance_change=self.tolerance_change,
            history_size=self.history_size,
            line_search_fn=self.line_search,
        )

    def init(self, x0: torch.Tensor, oracle: Evaluator, ctx: RunContext) -> LBFGSState | BoxState:
        if ctx.bounded:
            x = ctx.project(x0.detach().clone())
            f, g = oracle.value_and_grad(x)
            like = x.unsqueeze(0)
            model = LimitedMemory(1, self.history_size, x.numel(), like)
            # values in float64, as the oracle returns them (float32 would blur Armijo's test)
            qn = QuasiNewton(model, 1, like, ctx.lower, ctx.upper, value_dtype=torch.float64)
            qn.start(_lane(x), x.unsqueeze(0), _value(f, qn), g.unsqueeze(0))
            return BoxState(qn=qn)
        x = leaf(x0)
        return LBFGSState(x=x, optimizer=self._optimizer(x))

    def step(self, state: LBFGSState | BoxState, oracle: Evaluator, ctx: RunContext) -> bool:
        if isinstance(state, BoxState):
            return self._box_step(state, oracle)
        x = state.x

        def closure() -> torch.Tensor:
            f, g = oracle.value_and_grad(x)
            x.grad = g.clone()
            return torch.tensor(f, dtype=x.dtype)

        before_evals = oracle.nfev
        before_x = x.detach().clone()
        state.optimizer.step(closure)
        state.steps += 1
        moved = float((x.detach() - before_x).abs().max()) if x.numel() else 0.0
        return oracle.nfev - before_evals <= 1 or moved <= self.tolerance_change

    def rebase(self, state: Any, oracle: Evaluator) -> None:
        """The box state keeps the value and gradient of its iterate: evaluate them again on
        the new objective (torch's LBFGS re-evaluates at the start of every step itself)."""
        if isinstance(state, BoxState):
            f, g = oracle.value_and_grad(state.x.clone())
            state.f, state.g = f, g

    # -- checkpoints -----------------------------------------------------------------------
    def save_state(self, state: LBFGSState | BoxState) -> Any:
        if isinstance(state, BoxState):
            return super().save_state(state)
        return {
            "x": state.x.detach().clone(),
            "optimizer": save_optimizer(state.optimizer),
            "steps": state.steps,
        }

    def load_state(self, saved: Any, ctx: RunContext) -> LBFGSState | BoxState:
        if isinstance(saved, BoxState):
            return super().load_state(saved, ctx)
        x = leaf(saved["x"])
        opt = self._optimizer(x)
        load_optimizer(opt, saved["optimizer"])
        return LBFGSState(x=x, optimizer=opt, steps=saved["steps"])

    # -- projected L-BFGS inside a box: one lane of the engine -----------------------------
    def _box_step(self, state: BoxState, oracle: Evaluator) -> bool:
        qn = state.qn
        a = _lane(qn.X)
        pg = qn.projected_gradient(qn.X, qn.G)
        if float(pg.abs().max()) <= self.tolerance_grad:
            return True
        qn.direction(a)
        qn.t[a] = qn.first_step(a, self.lr)
        if self.line_search == "strong_wolfe":
            t_max = largest_step(qn.X[0], qn.D[0], qn.lower, qn.upper)  # type: ignore[arg-type]
            if t_max >= float(qn.t[0]):  # the first trial is inside: no wall in the way
                return self._wolfe_step(state, oracle, t_max)
        while True:
            T = qn.trial(a)
            f, g = oracle.value_and_grad(T[0])
            fT, gT = _value(f, qn), g.unsqueeze(0)
            if bool(qn.sufficient_decrease(a, T, fT, gT)):
                break
            qn.t[a] *= 0.5
            if float((T - qn.X).abs().max()) <= self.tolerance_change:
                return True
        s, f_old = T - qn.X, state.f
        qn.accept(a, T, fT, gT)
        state.steps += 1
        done = abs(f - f_old) <= self.tolerance_change * max(1.0, abs(f_old))
        return done or float(s.abs().max()) <= self.tolerance_change

    def _wolfe_step(self, state: BoxState, oracle: Evaluator, t_max: float) -> bool:
        """One step along the feasible segment x + t d (t <= t_max) chosen by a strong Wolfe
        search; True when the search found no decrease or the step changed little."""
        qn, a = state.qn, _lane(state.qn.X)
        x, d = qn.X[0], qn.D[0]
        seen: dict[float, tuple[torch.Tensor, float, torch.Tensor]] = {}

        def phi(t: float) -> tuple[float, float]:
            T = qn.project(x + t * d)  # inside the box: t <= t_max, clipped against rounding
            f, g = oracle.value_and_grad(T)
            seen[t] = (T, f, g)
            return f, float((g * d).sum())

        width = float(d.abs().max())
        f_old = state.f
        t = segment_wolfe(
            phi, float(qn.t[0]), t_max, f_old, float(qn.gd[0]), width, self.tolerance_change
        )
        if t <= 0.0:
            return True
        T, f, g = seen[t]
        qn.accept(a, T.unsqueeze(0), _value(f, qn), g.unsqueeze(0))
        state.steps += 1
        done = abs(f - f_old) <= self.tolerance_change * max(1.0, abs(f_old))
        return done or t * width <= self.tolerance_change


def _lane(like: torch.Tensor) -> torch.Tensor:
    """The index of the one lane, on ``like``'s device."""
    return torch.zeros(1, dtype=torch.long, device=like.device)


def _value(f: float, qn: QuasiNewton) -> torch.Tensor:
    """A lane's value as the engine keeps it."""
    return torch.tensor([f], dtype=qn.F.dtype, device=qn.F.device)
