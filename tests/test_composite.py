"""The composite family: inner methods chosen by flags and roles (never by name), a method
added later found without any other edit, and the Scope every sub-run goes through."""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.budget import Budget
from optarena.core.evaluator import Evaluator
from optarena.core.oracle import Oracle
from optarena.core.scope import CAP_SPENT, Scope, ScopeEnded, sub_seed
from optarena.methods import Facts, PopulationMethod, RunContext, get_method_class, method_infos
from optarena.methods._params import param
from optarena.methods._registry import register, unregister
from optarena.methods.composite import auto
from optarena.methods.composite._merit import Quadratic
from optarena.methods.composite._subrun import run_scoped
from optarena.methods.composite.chain import Chain, choose_local
from optarena.methods.composite.constrained import AugmentedLagrangian, Penalty
from optarena.methods.composite.multistart import MultiStart

F64 = torch.float64
COMPOSITE = Path(oa.__file__).resolve().parent / "methods" / "composite"


# -- (a) composite code names no registered method -------------------------------------------
def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef))]
    out = set()
    for node in nodes:
        body = getattr(node, "body", [])
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            out.add(id(body[0].value))
    return out


def _own_names(tree: ast.AST) -> set[int]:
    """The name a ``register(...)`` call gives the module's own method."""
    return {
        id(call.args[0])
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "register" and call.args
    }


def _option_values(module: str) -> set[str]:
    """String choices of the options declared by the methods the module registers (an option
    value such as multistart's ``sampling="auto"`` is not a method name)."""
    out: set[str] = set()
    for info in method_infos():
        cls = get_method_class(info.name)
        if cls.__module__ == module:
            for p in info.options:
                out |= {c for c in p.choices or () if isinstance(c, str)}
    return out


def named_methods(path: Path, names: set[str]) -> list[str]:
    """String constants in ``path`` equal to a registered method's name."""
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree) | _own_names(tree)
    allowed = _option_values(f"optarena.methods.composite.{path.stem}")
    return [
        f"{path.name}:{node.lineno} names {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in names - allowed
        and id(node) not in skip
    ]


def test_composite_code_names_no_registered_method() -> None:
    names = {i.name for i in oa.methods()}
    files = sorted(COMPOSITE.glob("*.py"))
    assert len(files) >= 6
    bad = [hit for p in files for hit in named_methods(p, names)]
    assert not bad, "composite code naming registered methods:\n  " + "\n  ".join(bad)


def test_the_name_check_catches_a_name(tmp_path: Path) -> None:
    src = tmp_path / "probe.py"
    src.write_text('"""cmaes"""\nPREFERENCE = ("cmaes", "not_a_method")\n')
    assert named_methods(src, {"cmaes"}) == ["probe.py:2 names 'cmaes'"]


def test_composites_are_their_own_family() -> None:
    family = {i.name: i.family for i in oa.methods()}
    for cls in (Chain, MultiStart, auto.Auto, Penalty, AugmentedLagrangian):
        assert family[cls.info.name] == "composite"


# -- the choices made by flags and roles are today's ---------------------------------------
def test_roles_reproduce_the_choices_made_before() -> None:
    grad, box = Facts(gradient="autograd"), Facts(gradient="autograd", bounded=True)
    free = Facts(gradient="none", bounded=True)
    assert [choose_local(True, False), choose_local(True, True), choose_local(False, True)] == [
        "bfgs",
        "slsqp",
        "powell",
    ]
    assert auto.candidates(grad, "constrained")[0] == "slsqp"
    assert auto.candidates(Facts(gradient="none"), "constrained")[0] == "cobyla"
    assert auto.candidates(box, "global")[:4] == [
        "cmaes",
        "differential_evolution",
        "pso",
        "dual_annealing",
    ]
    cmaes = get_method_class("cmaes").info
    assert cmaes.options_for("global") == {"restarts": "bipop", "sigma0_width": 0.3}
    assert auto.candidates(grad, "dense_lanes") == ["bfgs"]
    assert auto.candidates(Facts(gradient="fd"), "dense_lanes") == ["bfgs"]
    assert auto.candidates(free, "dense_lanes") == []
    assert auto.candidates(grad, "limited_lanes") == ["lbfgs"]
    assert auto.candidates(grad, "from_x0") == ["lbfgs"]
    assert get_method_class("lbfgs").info.options_for("from_x0") == {"line_search": "strong_wolfe"}
    assert auto.candidates(grad, "restarts") == ["multistart"]
    # a wrapper's inner method is chosen for the problem: lbfgsb with a gradient, else the
    # first derivative-free "local" method
    assert Penalty().inner is None and Penalty().inner_method().name == "lbfgsb"
    assert AugmentedLagrangian().inner_method(grad) == get_method_class("lbfgsb")()
    assert Penalty().inner_method(free).name == "powell"
    # multistart's local method too: the lanes' lbfgs with a gradient, else a derivative-free one
    assert (
        MultiStart().local is None
        and MultiStart().local_method(grad) == MultiStart("lbfgs").local_method()
    )
    assert MultiStart().local_method(free).name == "powell" and MultiStart("bfgs").batched
    assert not MultiStart("slsqp").batched
    assert Chain() == Chain("cmaes", "local") and Chain().label == "cmaes>local"
    with pytest.raises(ValueError, match="unknown role"):
        auto.candidates(grad, "fastest")


def test_registering_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        register("nope", family="population", needs_grad=False, supports_bounds=True,
                 roles={"fastest": 1})  # fmt: skip


def test_options_are_declared_and_validated() -> None:
    listed = {i.name: {p.name for p in i.options} for i in oa.methods()}
    assert {"switch", "window", "rtol", "max_global", "polish", "phases"} <= listed["chain"]
    assert {"local", "starts", "lanes", "race", "sampling"} <= listed["multistart"]
    assert {"dense_max", "lanes", "race", "patience", "linear_above"} == listed["auto"]
    assert {"inner", "rho0", "factor", "box_shrink", "ftol"} <= listed["penalty"]
    for bad in ({"lanes": 1}, {"race": 0}, {"dense_max": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            auto.Auto(**bad)
    with pytest.raises(ValueError, match="inner"):
        Penalty(inner=3)
    with pytest.raises(ValueError, match="max_outer"):
        Penalty(max_outer=None)
    with pytest.raises(ValueError, match="phases"):
        Chain(phases="cmaes>lbfgs")


# -- (b) a population method added later: one definition, no other edit ------------------------
@dataclass(frozen=True)
class RandomWalk(PopulationMethod):
    """Seeded Gaussian random walk in the box: each generation steps around the best point."""

    popsize: int = param(6, "points per generation", ge=1)
    step: float = param(0.2, "step, as a fraction of the box width", gt=0)

    def init(self, x0: torch.Tensor, ctx: RunContext) -> dict[str, Any]:
        return {"center": x0.clone(), "best": math.inf}

    def ask(self, state: dict[str, Any], ctx: RunContext) -> torch.Tensor:
        assert ctx.lower is not None and ctx.upper is not None
        c = state["center"]
        z = torch.randn(self.popsize, c.numel(), generator=ctx.generator, dtype=c.dtype)
        return ctx.project(c + self.step * (ctx.upper - ctx.lower) * z)

    def tell(
        self, state: dict[str, Any], X: torch.Tensor, f: torch.Tensor, ctx: RunContext
    ) -> dict[str, Any]:
        i = int(torch.argmin(f))
        if float(f[i]) < state["best"]:
            state = {"center": X[i].clone(), "best": float(f[i])}
        return state


@pytest.fixture
def walk() -> Iterator[str]:
    """``random_walk`` in the registry for one test, preferred for auto's global role."""
    register(
        "random_walk",
        family="population",
        needs_grad=False,
        supports_bounds=True,
        requires_bounds=True,
        stochastic=True,
        is_global=True,
        roles={"global": 0},
    )(RandomWalk)
    yield "random_walk"
    unregister("random_walk")


class Recording:
    def __init__(self, noise: float = 0.0) -> None:
        self.points: list[np.ndarray] = []
        self.noise = noise

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.points.append(x.detach().numpy().copy())
        return ((x - 0.3) ** 2).sum() + self.noise * torch.sin(1e3 * x).sum()


def test_an_added_population_method_runs_with_the_contract(walk: str) -> None:
    assert walk in [i.name for i in oa.methods()]
    fn = Recording()
    lo, hi = -1.0, 2.0
    res = oa.minimize(oa.Objective(fn, vectorize=False), torch.tensor([1.5, -0.5, 0.5]),
                      walk, bounds=(lo, hi), budget=101, seed=3)  # fmt: skip
    pts = np.array(fn.points)
    assert res.nfev == len(pts) == 101  # the last generation trimmed to the budget
    assert (pts >= lo).all() and (pts <= hi).all()
    hit = np.flatnonzero((pts == res.x.numpy()).all(axis=1))
    assert hit.size and res.fun == pytest.approx(float(((res.x - 0.3) ** 2).sum()))
    assert res.fun == float(np.min(res.history.f)) < float(res.history.f[0])
    again = oa.minimize(oa.Objective(Recording(), vectorize=False), torch.tensor([1.5, -0.5, 0.5]),
                        walk, bounds=(lo, hi), budget=101, seed=3)  # fmt: skip
    np.testing.assert_array_equal(res.history.f, again.history.f)


def test_auto_finds_an_added_method_when_its_flags_fit(walk: str) -> None:
    assert auto.candidates(Facts(gradient="none", bounded=True), "global")[0] == walk
    assert walk not in auto.candidates(Facts(gradient="none", bounded=False), "global")
    noisy = oa.Objective(Recording(noise=1e-3), noisy=True, vectorize=False)
    x0 = torch.full((2,), 0.9, dtype=F64)
    res = oa.minimize(noisy, x0, "auto", bounds=(-1, 1), budget=120, seed=0)
    assert res.info["auto"]["method"] == walk and res.nfev == 120
    res = oa.minimize(noisy, x0, "auto", budget=120, seed=0)  # no box: it does not fit
    assert res.info["auto"]["method"] == "cmaes"
    assert Chain().phases[0] == "cmaes"  # a chain's default first phase needs no box


def test_auto_takes_a_linear_memory_method_above_linear_above() -> None:
    register("linear_walk", family="population", needs_grad=False, supports_bounds=True,
             requires_bounds=True, stochastic=True, is_global=True, linear_memory=True,
             roles={"large_scale": 0})(RandomWalk)  # fmt: skip
    try:
        assert auto.candidates(Facts(gradient="none", bounded=True), "large_scale")[0] == (
            "linear_walk"
        )
        fn = Recording()
        obj = oa.Objective(fn, gradient="none", vectorize=False)
        x0 = torch.full((6,), 0.9, dtype=F64)
        big = auto.Auto(linear_above=5)
        res = oa.minimize(obj, x0, big, bounds=(-1, 1), budget=150, seed=0)
        assert res.info["auto"]["method"] == "linear_walk" and res.nfev == len(fn.points) == 150
        assert "linear-memory" in res.info["auto"]["reason"]
        small = oa.minimize(obj, x0[:5], big, bounds=(-1, 1), budget=150, seed=0)
        assert "linear_walk" not in small.info["auto"]["method"]  # d = 5: the ordinary plans
        noisy = oa.Objective(Recording(noise=1e-3), noisy=True, vectorize=False)
        res = oa.minimize(noisy, x0, big, bounds=(-1, 1), budget=60, seed=0)
        assert res.info["auto"]["method"] == "linear_walk"
    finally:
        unregister("linear_walk")


def test_unregister_removes_the_method_everywhere() -> None:
    register("random_walk", family="population", needs_grad=False, supports_bounds=True,
             requires_bounds=True, roles={"global": 0})(RandomWalk)  # fmt: skip
    unregister("random_walk")
    assert "random_walk" not in [i.name for i in oa.methods()]
    assert auto.candidates(Facts(gradient="none", bounded=True), "global")[0] == "cmaes"
    with pytest.raises(ValueError, match="unknown method"):
        get_method_class("random_walk")
    with pytest.raises(ValueError, match="no method named"):
        unregister("random_walk")


# -- (c) the Scope ---------------------------------------------------------------------------
def sphere(x: torch.Tensor) -> torch.Tensor:
    return ((x - 0.3) ** 2).sum() + torch.sin(x).prod()


def oracle(constraints: tuple = (), budget: int = 1000, gradient: str = "autograd") -> Oracle:
    obj = oa.Objective(sphere, gradient=gradient)
    return Oracle(obj, torch.zeros(3, dtype=F64), Budget(evals=budget), constraints=constraints)


def points(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, dtype=F64, generator=torch.Generator().manual_seed(seed))


def test_a_scope_is_an_evaluator_and_methods_run_on_it() -> None:
    o = oracle()
    s = Scope(o, cap=50)
    assert isinstance(s, Evaluator) and isinstance(Scope(s), Evaluator)
    lbfgs = get_method_class("lbfgs")()
    ctx = RunContext(x0=torch.ones(3, dtype=F64), lower=None, upper=None, constraints=(), seed=0)
    ended = run_scoped(lbfgs, s, ctx)
    assert ended in ("converged", CAP_SPENT) and o.nfev == s.used <= 50
    assert s.best_f == o.best_f and torch.equal(s.best_x, o.best_x)


def test_the_cap_ends_the_sub_run_and_trims_a_batch() -> None:
    o = oracle()
    o.value(torch.ones(3, dtype=F64))  # evaluations before the scope are not its own
    s = Scope(o, cap=5)
    for x in points(3):
        s.value(x)
    assert s.values(torch.zeros(0, 3, dtype=F64)).shape == (0,)  # an empty batch costs nothing
    assert s.remaining_evals() == 2
    with pytest.raises(ScopeEnded) as end:
        s.values(points(4, seed=1))
    assert end.value.why == CAP_SPENT and end.value.scope is s
    assert o.nfev == 6 and s.used == 5 and len(o.history) == 6
    with pytest.raises(ScopeEnded):
        s.value_and_grad(torch.zeros(3, dtype=F64))
    with pytest.raises(ScopeEnded):
        s.values_and_grads(points(2))
    assert o.nfev == 6
    inner = Scope(Scope(o, cap=10), cap=100)  # an enclosing cap holds too
    assert inner.remaining_evals() == 10


def test_fd_gradients_are_capped_by_whole_rows() -> None:
    o = oracle(gradient="fd")
    s = Scope(o, cap=9)  # two rows of 1 + d = 4 evaluations fit, not three
    with pytest.raises(ScopeEnded):
        s.fd_values_and_grads(points(3))
    assert o.nfev == 8 and o.ngev == 2


def test_the_watch_ends_the_sub_run_after_the_evaluation_is_recorded() -> None:
    o = oracle()

    def watch(view: Scope) -> None:
        if view.used >= 3:
            raise ScopeEnded("enough", view)

    s = Scope(o, watch=watch)
    s.values(points(2))
    with pytest.raises(ScopeEnded, match="enough"):
        s.value(torch.zeros(3, dtype=F64))
    assert o.nfev == 3 and len(o.history) == 3
    assert s.first_f == float(o.history.f[:2].min())


def test_counts_best_and_history_are_only_the_parents() -> None:
    o = oracle()
    s = Scope(o)
    X = points(5)
    s.values(X)
    s.value_and_grad(X[0])
    s.values_and_grads(X[1:3])
    assert o.nfev == s.nfev == 8 and o.ngev == s.ngev == 3 and len(o.history) == 8
    assert s.history is o.history and s.budget is o.budget
    for name in ("nfev", "ngev", "elapsed"):
        with pytest.raises(AttributeError):
            setattr(s, name, 0)
    # the scope keeps its own best; the run's best is the Oracle's
    o.value(torch.full((3,), 0.3, dtype=F64))
    assert o.best_f < s.best_f and s.best_eval is not None and s.best_eval <= 8
    assert s.best()[1] == s.best_f


def test_a_transformed_scope_sees_the_merit_function() -> None:
    con = oa.Ineq(lambda x: 1.0 - x.sum())  # x1 + x2 + x3 <= 1
    o = oracle((con,))
    merit = Quadratic(("ineq",), rho=10.0)
    s = Scope(o, transform=merit)
    assert not s.constraints and s.constraint_values(torch.zeros(3)) == []
    assert s.best_feasible

    def m(x: torch.Tensor) -> torch.Tensor:
        return sphere(x) + 10.0 * torch.clamp(x.sum() - 1.0, min=0) ** 2

    X = points(4) + 0.8  # some rows feasible, some not
    f = s.values(X)
    want = torch.stack([m(x) for x in X])
    torch.testing.assert_close(f, want)
    assert s.value(X[0]) == pytest.approx(float(want[0]), rel=1e-14)
    for x in X[:2]:
        xg = x.clone().requires_grad_(True)
        (g_want,) = torch.autograd.grad(m(xg), xg)
        fx, g = s.value_and_grad(x)
        assert fx == pytest.approx(float(m(x)), rel=1e-14)
        torch.testing.assert_close(g, g_want)
    F, G = s.values_and_grads(X)
    torch.testing.assert_close(F, want)
    G_want = torch.stack([_grad(m, x) for x in X])
    torch.testing.assert_close(G, G_want)
    Ffd, Gfd = s.fd_values_and_grads(X)
    torch.testing.assert_close(Ffd, want)
    torch.testing.assert_close(Gfd, G_want, rtol=1e-5, atol=1e-5)
    _, Gf0 = s.fd_values_and_grads(X, f0=want)  # known merit values: d probes a row
    torch.testing.assert_close(Gf0, G_want, rtol=1e-5, atol=1e-5)
    # the run records the true objective (the merit is the scope's only), feasibility first
    raw = [float(sphere(torch.tensor(x))) for x in o.history.x]
    np.testing.assert_allclose(o.history.f, raw, rtol=1e-14)
    feasible = [f for f, x in zip(raw, o.history.x, strict=True) if x.sum() <= 1.0]
    assert o.best_feasible and o.best_f == pytest.approx(min(feasible), rel=1e-14)


def _grad(fn: Any, x: torch.Tensor) -> torch.Tensor:
    xg = x.clone().requires_grad_(True)
    return torch.autograd.grad(fn(xg), xg)[0]


def test_a_transform_needs_a_parent_with_constraints() -> None:
    class Bare:
        def __init__(self, o: Oracle) -> None:
            self.o = o

        def __getattr__(self, name: str) -> Any:
            if name.startswith("constraint"):
                raise AttributeError(name)
            return getattr(self.o, name)

    with pytest.raises(TypeError, match="constraints"):
        Scope(Bare(oracle()), transform=Quadratic((), 1.0))


def test_nested_scopes_end_only_their_own_sub_run() -> None:
    o = oracle()
    outer = Scope(o, cap=4)
    inner = Scope(outer, cap=100)
    cmaes = get_method_class("cmaes")(popsize=3)
    ctx = RunContext(x0=torch.ones(3, dtype=F64), lower=None, upper=None, constraints=(), seed=0)
    with pytest.raises(ScopeEnded) as end:
        run_scoped(cmaes, inner, ctx)  # the outer cap is spent: not the inner's end
    assert end.value.scope is outer and o.nfev == 4


def test_sub_seeds_are_the_formula_seeded_results_depend_on() -> None:
    for seed, salt in ((0, 1), (7, 1000), (2**62, 3), (123456789, 10_000)):
        assert sub_seed(seed, salt) == (seed * 1_000_003 + salt) % (2**63)


def test_composites_nest_through_scopes() -> None:
    """A chain as the inner method of a penalty: its phases are Scopes of the merit Scope."""
    p = oa.problems.get("flower_constrained", dtype=F64)
    res = oa.minimize(p, method=Penalty("cmaes>lbfgs"), budget=600, seed=0)
    assert res.nfev <= 600 and res.feasible
    assert res.fun == pytest.approx(p.f_opt, abs=1e-2)
