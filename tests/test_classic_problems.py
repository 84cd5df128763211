"""Every registered problem keeps its promises; classic functions and variants in detail."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.problems import Problem, get, names
from optarena.problems._base import _PROBLEMS

# The library's own problems (other test modules may register helpers of their own).
NAMES = [n for n in names() if _PROBLEMS[n].__module__.startswith("optarena.")]
CLASSIC = [
    "sphere",
    "ellipsoid",
    "rastrigin",
    "ackley",
    "griewank",
    "schwefel",
    "levy",
    "styblinski_tang",
]


def tolerance(p: Problem) -> float:
    """Room for rounding in the problem's dtype."""
    return math.sqrt(torch.finfo(p.dtype).eps) * (1.0 + abs(p.f_opt or 0.0))


def sample_points(p: Problem, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points in the problem's box (around x0 when it has none), x0 and x_opt first."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, p.dim, generator=g, dtype=torch.float64)
    if p.bounds is not None:
        lo, hi = (b.double() for b in p.bounds)
        X = lo + u * (hi - lo)
    else:
        X = p.x0.double() + 4.0 * (u - 0.5)
    rows = [p.x0.double()[None]] + ([p.x_opt.double()[None]] if p.x_opt is not None else [])
    return torch.cat([*rows, X]).to(p.dtype)


def test_all_classic_functions_are_registered() -> None:
    assert set(CLASSIC) <= set(NAMES)
    assert {"step", "quantized_mlp_identity", "noisy"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_value_at_x_opt_is_f_opt(name: str) -> None:
    p = get(name)
    if p.f_opt is None or p.x_opt is None:
        pytest.skip(f"{name} has no known minimizer")
    assert float(p.fn(p.x_opt)) == pytest.approx(p.f_opt, abs=tolerance(p))


@pytest.mark.parametrize("name", NAMES)
def test_batched_equals_the_loop_of_the_function(name: str) -> None:
    batched, looped = get(name), get(name)  # fresh instances: same noise sequence if noisy
    if batched.batched is None:
        pytest.skip(f"{name} has no batched function")
    X = sample_points(batched, 20)
    with torch.no_grad():
        got = batched.batched(X)
        want = torch.stack([looped.fn(x).reshape(()) for x in X])
    assert got.shape == (X.shape[0],)
    eps = torch.finfo(batched.dtype).eps
    torch.testing.assert_close(got, want, rtol=100 * eps, atol=100 * eps)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_is_finite_at_x0(name: str) -> None:
    p = get(name)
    if not p.differentiable:
        assert p.objective().gradient == "none"
        return
    x = p.x0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(p.fn(x), x)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("name", NAMES)
def test_bounds_contain_x0_and_x_opt(name: str) -> None:
    p = get(name)
    if p.bounds is None:
        pytest.skip(f"{name} has no bounds")
    lo, hi = p.bounds
    assert lo.shape == hi.shape == p.x0.shape
    assert bool(((lo <= p.x0) & (p.x0 <= hi)).all())
    if p.x_opt is not None:
        assert bool(((lo <= p.x_opt) & (p.x_opt <= hi)).all())


@pytest.mark.parametrize("name", NAMES)
def test_no_sampled_point_beats_f_opt(name: str) -> None:
    p = get(name)
    if p.f_opt is None or p.constraints:
        pytest.skip("no unconstrained optimum to compare with")
    with torch.no_grad():
        f = torch.stack([p.fn(x).reshape(()) for x in sample_points(p, 300, seed=1)])
    assert float(f.min()) >= p.f_opt - tolerance(p)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_parameter_is_type_error(name: str) -> None:
    with pytest.raises(TypeError, match="unknown parameter"):
        get(name, not_a_parameter=1)


# -- classic functions ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", CLASSIC)
@pytest.mark.parametrize("dim", [1, 2, 7])
def test_classic_optimum_in_every_dimension(name: str, dim: int) -> None:
    p = get(name, dim=dim)
    assert p.dim == dim and p.params["dim"] == dim
    x = p.x_opt.clone().requires_grad_(True)
    f = p.fn(x)
    (g,) = torch.autograd.grad(f, x)
    assert f.detach().item() == pytest.approx(p.f_opt, abs=1e-9 * (1 + abs(p.f_opt)))
    assert float(g.abs().max()) < 1e-6  # a stationary point
    assert float(p.fn(p.x0)) > p.f_opt + 1e-3  # the start is not already optimal


@pytest.mark.parametrize(
    ("name", "x", "value"),
    [
        ("ellipsoid", [1.0, 1.0, 1.0], 1.0 + 1e3 + 1e6),
        ("rastrigin", [1.0, -1.0], 2.0),
        ("rastrigin", [0.5, 0.0], 20.25),
        ("ackley", [1.0, 1.0], 20.0 * (1 - math.exp(-0.2))),
        ("griewank", [math.pi, 0.0], 1.0 + math.pi**2 / 4000 + 1.0),
        ("schwefel", [0.0, 0.0], 2 * 418.9829),
        ("levy", [1.0, 5.0], 1.0 + math.sin(2 * math.pi * 2.0) ** 2),
        ("styblinski_tang", [0.0, 1.0], 0.5 * (1 - 16 + 5)),
        ("styblinski_tang", [2.0, 0.0], 0.5 * (16 - 64 + 10)),
    ],
)
def test_classic_values_at_hand_computed_points(name: str, x: list, value: float) -> None:
    p = get(name, dim=len(x))
    assert float(p.fn(torch.tensor(x, dtype=torch.float64))) == pytest.approx(value, rel=1e-12)


def test_schwefel_and_styblinski_tang_optima_scale_with_dimension() -> None:
    assert get("schwefel", dim=10).f_opt == pytest.approx(1.2727566266e-4, rel=1e-9)
    assert get("styblinski_tang", dim=3).f_opt == pytest.approx(-117.49849711131425)
    assert float(get("schwefel").x_opt[0]) == pytest.approx(420.9687, abs=1e-4)


def test_square_roots_have_finite_gradients_at_zero() -> None:
    for name in ("ackley", "schwefel"):
        x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(get(name, dim=4).fn(x), x)
        assert torch.isfinite(g).all(), name


@pytest.mark.parametrize("name", CLASSIC)
def test_classic_float32(name: str) -> None:
    p = get(name, dim=3, dtype=torch.float32)
    assert p.x0.dtype == p.bounds[0].dtype == p.x_opt.dtype == torch.float32
    assert p.fn(p.x0).dtype == torch.float32
    assert float(p.fn(p.x_opt)) == pytest.approx(p.f_opt, abs=1e-3 * (1 + abs(p.f_opt)))


@pytest.mark.parametrize("name", CLASSIC)
def test_classic_bad_dimension(name: str) -> None:
    with pytest.raises(ValueError, match="dim must be >= 1"):
        get(name, dim=0)
    with pytest.raises(TypeError, match="dim must be an int"):
        get(name, dim=2.0)
    with pytest.raises(TypeError, match="dtype"):
        get(name, dtype=torch.int64)


# -- step and quantized variants -----------------------------------------------------------------
def test_step_rounds_to_the_grid() -> None:
    p = get("step", base="rastrigin", h=0.25, base_params={"dim": 3})
    base = get("rastrigin", dim=3)
    x = torch.tensor([0.3, -1.2, 2.45], dtype=torch.float64)
    assert float(p.fn(x)) == float(base.fn(torch.tensor([0.25, -1.25, 2.5], dtype=torch.float64)))
    assert float(p.fn(x + 0.01)) == float(p.fn(x))  # piecewise constant
    assert not p.differentiable
    assert p.f_opt == 0.0 and torch.equal(p.x_opt, base.x_opt)
    assert p.params == {"base": "rastrigin", "h": 0.25, "base_params": {"dim": 3}}


def test_step_off_grid_optimum_is_unknown() -> None:
    p = get("step", base="styblinski_tang", h=0.5, base_params={"dim": 2})
    assert p.f_opt is None and p.x_opt is None


def test_quantized_mlp_identity() -> None:
    q, m = get("quantized_mlp_identity", h=0.125), get("mlp_identity")
    x = m.x0 + 0.03
    assert float(q.fn(x)) == float(m.fn(torch.round(x / 0.125) * 0.125))
    assert not q.differentiable
    assert q.bounds is not None and torch.equal(q.x0, m.x0)
    X = torch.stack([x, x + 0.2])
    assert torch.equal(q.batched(X), m.batched(torch.round(X / 0.125) * 0.125))


@pytest.mark.parametrize("h", [0.0, -0.1, math.nan, "0.1"])
def test_step_bad_grid(h) -> None:
    with pytest.raises(ValueError, match="h must be"):
        get("step", h=h)
    with pytest.raises(ValueError, match="h must be"):
        get("quantized_mlp_identity", h=h)


class CountingBase:
    """A base problem whose function counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return (x**2).sum()

    def problem(self) -> Problem:
        z = torch.zeros(2, dtype=torch.float64)
        return Problem(name="counted", fn=self, x0=z + 0.7, bounds=(z - 1, z + 1))


GRADIENT_METHODS = [i.name for i in oa.methods() if i.needs_grad]


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_gradient_methods_refuse_non_differentiable_variants(name: str) -> None:
    base = CountingBase()
    for p in (get("step", base=base.problem(), h=0.5), get("quantized_mlp_identity")):
        with pytest.raises(ValueError, match="needs a gradient"):
            oa.minimize(p, method=name, budget=10)
    assert base.calls == 0


def test_gradient_free_method_solves_step() -> None:
    p = get("step", h=0.5, base_params={"dim": 2})
    res = oa.minimize(p, method="differential_evolution", budget=600, seed=0)
    assert res.fun == 0.0


def test_base_params_need_a_name() -> None:
    with pytest.raises(ValueError, match="base_params"):
        get("step", base=CountingBase().problem(), base_params={"dim": 2})
    with pytest.raises(TypeError, match="base must be"):
        get("noisy", base=3)
    with pytest.raises(ValueError, match="unknown problem"):
        get("step", base="no_such_problem")


# -- noisy ---------------------------------------------------------------------------------------
def test_noise_is_reproducible_from_the_seed() -> None:
    x = torch.ones(10, dtype=torch.float64)
    first = float(get("noisy", seed=5).fn(x))
    p, q, r = get("noisy", seed=5), get("noisy", seed=5), get("noisy", seed=6)
    seq_p = [float(p.fn(x)) for _ in range(5)]
    assert seq_p == [float(q.fn(x)) for _ in range(5)]
    assert seq_p != [float(r.fn(x)) for _ in range(5)]
    assert first == seq_p[0]
    p.fn.noise.reset()
    assert [float(p.fn(x)) for _ in range(5)] == seq_p


def test_noise_is_fresh_at_every_evaluation_and_has_the_given_scale() -> None:
    p = get("noisy", scale=0.5, seed=1, base_params={"dim": 2})
    X = torch.zeros(4000, 2, dtype=torch.float64)
    z = p.batched(X).numpy() / 0.5
    assert len(np.unique(z)) == z.size
    assert abs(z.mean()) < 4 / math.sqrt(z.size)
    assert z.std() == pytest.approx(1.0, abs=0.05)
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.06


def test_noise_does_not_touch_the_global_rngs() -> None:
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    p = get("noisy", seed=2)
    p.fn(p.x0)
    p.batched(torch.stack([p.x0, p.x0]))
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_noisy_keeps_the_base_gradient_and_differentiability() -> None:
    p, base = get("noisy", base="rastrigin"), get("rastrigin")
    x = p.x0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(p.fn(x), x)
    y = base.x0.clone().requires_grad_(True)
    (gb,) = torch.autograd.grad(base.fn(y), y)
    assert torch.equal(g, gb)
    assert p.differentiable and p.noisy and p.objective().noisy
    assert p.f_opt is None and torch.equal(p.x_opt, base.x_opt)  # values at x_opt are random
    assert not get("noisy", base="step").differentiable
    assert get("step", base=p).noisy


def test_noisy_runs_are_reproducible() -> None:
    runs = [
        oa.minimize(get("noisy", seed=3), method="differential_evolution", budget=300, seed=0)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].history.f, runs[1].history.f)


@pytest.mark.parametrize(("key", "value"), [("scale", 0.0), ("scale", -1.0), ("seed", -1)])
def test_noisy_bad_parameters(key: str, value: float) -> None:
    with pytest.raises(ValueError, match=key):
        get("noisy", **{key: value})


def test_mlp_identity_batched_in_blocks_equals_the_function_row_by_row() -> None:
    """Populations above the block size go through the batched function block by block."""
    from optarena.problems.seeds import BLOCK

    p = get("mlp_identity")
    g = torch.Generator().manual_seed(3)
    X = p.x0 + 0.3 * torch.randn(2 * BLOCK + 7, 10, generator=g, dtype=p.dtype)
    with torch.no_grad():
        got = p.batched(X)
        want = torch.stack([p.fn(x) for x in X])
    assert got.shape == (X.shape[0],)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
