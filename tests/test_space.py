"""Search spaces: building, printing, JSON, the box encoding, and minimize(space=...).

The methods are found through the registry (by family and flags), so a method added later is
checked on spaces without any edit here.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optarena as oa
from optarena.space import Choice, Fixed, Int, Real, Space, SpaceResult
from optarena.space.params import Param

POPULATION = [i.name for i in oa.methods() if i.family == "population" and not i.needs_grad]
GRADIENT_FREE_SCIPY = [i.name for i in oa.methods() if i.family == "external" and not i.needs_grad]
NEEDS_GRAD = [i.name for i in oa.methods() if i.needs_grad]

MIXED = {
    "lr": Real(1e-4, 1e-1, log=True),
    "decay": Real(0.0, 0.5),
    "width": Int(8, 256, log=True),
    "depth": Int(1, 3),
    "act": Choice(["relu", "tanh", "gelu"]),
    "size": Choice([16, 32, 64], ordered=True),
    "opt": Choice({"adam": {"beta1": Real(0.8, 0.99)}, "sgd": {"momentum": Real(0.0, 0.99)}}),
    "epochs": 10,
}


# -- random spaces --------------------------------------------------------------------------
@st.composite
def params(draw: st.DrawFn, depth: int = 0, prefix: str = "p") -> Param:
    kind = draw(st.sampled_from(["real", "int", "choice", "fixed"] + ["cond"] * (depth == 0)))
    if kind == "real":
        log = draw(st.booleans())
        lo = draw(st.floats(1e-6 if log else -1e3, 1e3))
        return Real(
            lo, lo * draw(st.floats(1.5, 1e3)) if log else lo + draw(st.floats(0.1, 1e3)), log
        )
    if kind == "int":
        log = draw(st.booleans())
        lo = draw(st.integers(1 if log else -50, 50))
        return Int(lo, lo + draw(st.integers(1, 300)), log)
    if kind == "fixed":
        return Fixed(draw(st.one_of(st.integers(), st.text(max_size=3), st.none())))
    opts = draw(
        st.lists(
            st.one_of(st.text(max_size=4), st.integers(-9, 9)),
            min_size=1,
            max_size=4,
            unique_by=lambda v: (type(v), v),
        )
    )
    ordered = draw(st.booleans())
    if kind == "choice":
        return Choice(opts, ordered=ordered)
    subs = {
        opt: {f"{prefix}_{j}_{k}": draw(params(depth + 1)) for k in range(draw(st.integers(0, 2)))}
        for j, opt in enumerate(opts)
    }
    return Choice(subs, ordered=ordered)


@st.composite
def spaces(draw: st.DrawFn) -> Space:
    n = draw(st.integers(1, 4))
    sp = {f"p{i}": draw(params(prefix=f"p{i}")) for i in range(n)}
    sp["anchor"] = Real(0.0, 1.0)  # at least one coordinate
    return Space(sp)


def check_config(space: Space, config: dict[str, Any]) -> None:
    """Every active parameter present with its native type and in range; no other key."""
    expected: set[str] = set()

    def walk(sp: Space) -> None:
        for name, p in sp.params.items():
            expected.add(name)
            assert name in config, (name, config)
            v = config[name]
            if isinstance(p, Real):
                assert type(v) is float and p.lo <= v <= p.hi, (name, v, p)
            elif isinstance(p, Int):
                assert type(v) is int and p.lo <= v <= p.hi, (name, v, p)
            elif isinstance(p, Fixed):
                assert v is p.value
            else:
                idx = p.index(v)
                assert v is p.options[idx]
                if p.branches is not None:
                    walk(p.branches[idx])

    walk(space)
    assert set(config) == expected, (sorted(config), sorted(expected))


def recorder(space: Space, seen: list[dict[str, Any]]):
    def f(config: dict[str, Any]) -> float:
        seen.append(dict(config))
        x = space.encode(config)
        return float(np.sum((x - space.encoding.centre) ** 2))

    return f


# -- minimize over every population method ----------------------------------------------------
@pytest.mark.parametrize("method", POPULATION)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=spaces(), seed=st.integers(0, 2**31))
def test_population_methods_keep_types_and_ranges(method: str, space: Space, seed: int) -> None:
    seen: list[dict[str, Any]] = []
    res = oa.minimize(recorder(space, seen), space=space, method=method, budget=100, seed=seed)
    assert seen, "f was never called"
    for config in seen:
        check_config(space, config)
    check_config(space, res.config)
    assert isinstance(res, SpaceResult) and res.nfev <= 100
    assert len(seen) == res.nfev - res.cache_hits == res.info["space"]["calls"]


@pytest.mark.parametrize("method", POPULATION + GRADIENT_FREE_SCIPY)
def test_gradient_free_methods_on_the_mixed_space(method: str) -> None:
    space = Space(MIXED)
    seen: list[dict[str, Any]] = []
    res = oa.minimize(recorder(space, seen), space=space, method=method, budget=60, seed=1)
    for config in seen:
        check_config(space, config)
        assert ("beta1" in config) == (config["opt"] == "adam")
        assert ("momentum" in config) == (config["opt"] == "sgd")
    assert res.config == space.decode(res.x)
    assert res.fun == min(res.history.f)


# -- the cache ------------------------------------------------------------------------------
def test_a_configuration_is_evaluated_once_and_repeats_are_counted() -> None:
    space = Space({"k": Int(0, 2), "c": Choice(["a", "b"]), "fixed": "z"})  # 6 configurations
    calls: list[tuple[int, str]] = []

    def f(config: dict[str, Any]) -> float:
        calls.append((config["k"], config["c"]))
        return config["k"] + (config["c"] == "b")

    res = oa.minimize(f, space=space, method="random_search", budget=60, seed=0)
    assert len(calls) == len(set(calls)) <= 6
    assert res.nfev == 60 and res.cache_hits == 60 - len(calls)
    assert res.info["space"] == {"calls": len(calls), "cache_hits": res.cache_hits}
    assert f"{res.cache_hits} of 60 candidates" in res.message
    frame = res.to_pandas()
    assert int(frame["cached"].sum()) == res.cache_hits
    assert list(frame.columns) == ["evals", "seconds", "f", "best_f", "cached", "k", "c"]
    assert res.config == {"k": 0, "c": "a", "fixed": "z"} and res.fun == 0


def test_the_frame_has_one_column_per_parameter_inactive_ones_empty() -> None:
    space = Space(MIXED)
    res = oa.minimize(lambda c: c["decay"], space=space, method="random_search", budget=30, seed=2)
    frame = res.to_pandas()
    assert list(frame.columns[5:]) == [n for n in space.names if n != "epochs"]
    for row, config in zip(frame.itertuples(), res.configs(), strict=True):
        assert row.act == config["act"] and row.width == config["width"]
        assert pd_missing(row.beta1) == (config["opt"] != "adam")
    assert str(frame["width"].dtype) == "Int64" and str(frame["lr"].dtype) == "float64"


def pd_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


# -- the encoding ---------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(space=spaces(), seed=st.integers(0, 2**31))
def test_decode_of_any_box_point_is_valid_and_encode_inverts_it(space: Space, seed: int) -> None:
    enc = space.encoding
    rng = np.random.default_rng(seed)
    for u in [rng.uniform(enc.lower, enc.upper), enc.lower, enc.upper, enc.centre]:
        config = space.decode(u)
        check_config(space, config)
        again = space.decode(space.encode(config))
        assert again.keys() == config.keys()
        for k, v in config.items():
            assert type(v) is type(again[k])
            assert v == (pytest.approx(again[k], rel=1e-12) if type(v) is float else again[k])
    for config in space.sample(rng, 5):
        check_config(space, config)


def test_uniform_points_of_the_box_decode_to_the_native_law() -> None:
    """Random search samples the space natively by drawing uniformly in the box: log-integers
    get log((k + 1/2) / (k - 1/2)) of the mass, every option of a Choice the same."""
    space = Space({"w": Int(1, 6, log=True), "c": Choice(["a", "b", "c"]), "o": Int(0, 3)})
    enc, n = space.encoding, 40000
    rng = np.random.default_rng(0)
    boxed = [space.decode(u) for u in rng.uniform(enc.lower, enc.upper, size=(n, enc.dim))]
    native = space.sample(rng, n)
    z = math.log(6.5 / 0.5)
    law = {
        "w": {k: math.log((k + 0.5) / (k - 0.5)) / z for k in range(1, 7)},
        "c": dict.fromkeys("abc", 1 / 3),
        "o": dict.fromkeys(range(4), 1 / 4),
    }
    for draws in (boxed, native):
        for name, probs in law.items():
            counts = Counter(d[name] for d in draws)
            assert set(counts) == set(probs)
            for v, p in probs.items():
                assert abs(counts[v] / n - p) < 5 * math.sqrt(p * (1 - p) / n), (name, v)


def test_the_layout_of_the_box() -> None:
    enc = Space(MIXED).encoding
    lo, hi = enc.lower, enc.upper
    np.testing.assert_allclose(lo[:4], [-4, 0, math.log10(7.5), 0.5])
    np.testing.assert_allclose(hi[:4], [-1, 0.5, math.log10(256.5), 3.5])
    assert enc.dim == 4 + 3 + 1 + 2 + 2  # reals/ints, act one-hot, ordered size, opt, branches
    assert Space(MIXED).decode(enc.centre)["opt"] == "adam"


# -- printing, comparing, JSON ----------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(space=spaces())
def test_a_space_round_trips_through_json(space: Space) -> None:
    text = space.to_json()
    back = Space.from_json(text)
    assert back == space and repr(back) == repr(space)
    assert json.loads(back.to_json()) == json.loads(text)


def test_spaces_print_and_compare() -> None:
    sp = Space(MIXED)
    assert repr(sp).startswith("Space({'lr': Real(0.0001, 0.1, log=True), 'decay': Real(0.0, 0.5)")
    assert "'opt': Choice({'adam': {'beta1': Real(0.8, 0.99)}" in repr(sp)
    assert "'epochs': 10}" in repr(sp)
    assert sp == MIXED and sp == Space(dict(MIXED))
    assert Space({"a": Real(0, 1), "b": 2}) != Space({"b": 2, "a": Real(0, 1)})  # order: layout
    assert Choice([1, 2]) != Choice([1, 2], ordered=True) and Choice([1]) != Choice([True])
    assert Real(1, 2) == Real(1.0, 2.0) and Int(1, 5, log=True) != Int(1, 5)


def test_objects_as_options_and_their_json_refusal() -> None:
    sp = Space({"act": Choice([torch.nn.ReLU, torch.nn.Tanh]), "x": Real(0, 1)})
    res = oa.minimize(
        lambda c: c["x"] + (c["act"] is torch.nn.Tanh), space=sp, method="cmaes", budget=40, seed=0
    )
    assert res.config["act"] is torch.nn.ReLU
    with pytest.raises(TypeError, match=r"option of 'act'.*cannot be written to JSON"):
        sp.to_json()
    with pytest.raises(TypeError, match="as a list"):
        Space({"t": Choice([(1, 2)])}).to_json()


BAD_SPACES = [
    (lambda: Real(1, 1), ValueError, r"lo must be below hi"),
    (lambda: Real(2, 1), ValueError, r"lo must be below hi"),
    (lambda: Real(0, 1, log=True), ValueError, r"log scale needs lo > 0"),
    (lambda: Real(0, math.inf), ValueError, r"finite"),
    (lambda: Real("0", 1), TypeError, r"real number"),
    (lambda: Int(0, 1.5), TypeError, r"integer"),
    (lambda: Int(0, 10, log=True), ValueError, r"lo >= 1"),
    (lambda: Int(3, 3), ValueError, r"lo must be below hi"),
    (lambda: Choice([]), ValueError, r"at least one option"),
    (lambda: Choice({}), ValueError, r"at least one option"),
    (lambda: Choice(["a", "a"]), ValueError, r"'a' is given twice"),
    (lambda: Choice("abc"), TypeError, r"list of options"),
    (lambda: Choice({"a": 3}), TypeError, r"maps to its sub-space"),
    (lambda: Space({"a": {"b": Real(0, 1)}}), TypeError, r"dict, which is ambiguous"),
    (lambda: Space({"a": [1, 2]}), TypeError, r"Choice\(\[1, 2\]\)"),
    (lambda: Space({1: Real(0, 1)}), TypeError, r"non-empty strings"),
    (lambda: Space([Real(0, 1)]), TypeError, r"dict of parameters"),
    (
        lambda: Space({"m": Real(0, 1), "o": Choice({"a": {"m": Real(0, 2)}})}),
        ValueError,
        r"'m' under option 'a' of 'o'",
    ),
    (
        lambda: Space.from_dict({"version": 1, "params": {"a": {"type": "reel"}}}),
        ValueError,
        "type",
    ),
    (
        lambda: Space.from_dict(
            {"version": 1, "params": {"a": {"type": "real", "lo": 0, "hi": 1, "step": 2}}}
        ),
        ValueError,
        r"unknown key\(s\) \['step'\]",
    ),
    (lambda: Space.from_dict({"params": {}}), ValueError, r"version"),
    (lambda: Space.from_dict({"version": 1, "params": {}, "x": 1}), ValueError, r"unknown key"),
]


@pytest.mark.parametrize(("build", "error", "match"), BAD_SPACES)
def test_bad_spaces_are_refused_with_clear_messages(build, error, match) -> None:
    with pytest.raises(error, match=match):
        build()


def test_options_of_one_choice_may_share_names() -> None:
    sp = Space({"o": Choice({"a": {"m": Real(0, 1)}, "b": {"m": Int(0, 3)}})})
    assert sp.names == ["o", "m"]
    assert type(sp.decode([0, 1, 0.5, 0.4])["m"]) is int


def test_bad_configurations_are_refused() -> None:
    sp = Space(MIXED)
    good = sp.sample(0)[0]
    for change, match in [
        ({"width": 3}, "outside"),
        ({"depth": 1.5}, "integer"),
        ({"act": "elu"}, "not one of the options"),
        ({"extra": 1}, "not parameters"),
        ({"epochs": 11}, "fixed"),
    ]:
        with pytest.raises(ValueError, match=match):
            sp.encode({**good, **change})
    with pytest.raises(ValueError, match="'lr' is missing"):
        sp.encode({k: v for k, v in good.items() if k != "lr"})


# -- minimize(space=...) --------------------------------------------------------------------
@pytest.mark.parametrize("method", NEEDS_GRAD)
def test_gradient_methods_refuse_discrete_spaces_naming_those_that_fit(method: str) -> None:
    def never(config: dict[str, Any]) -> float:
        raise AssertionError("f must not run")

    with pytest.raises(ValueError, match=r"needs a gradient.*'width'.*'act'") as err:
        oa.minimize(never, space=MIXED, method=method, budget=20)
    for name in POPULATION + GRADIENT_FREE_SCIPY:
        assert name in str(err.value)


def test_a_space_of_reals_takes_gradient_methods_with_differences() -> None:
    sp = {"a": Real(-2, 2), "b": Real(1e-3, 10, log=True)}
    res = oa.minimize(
        lambda c: (c["a"] - 1) ** 2 + math.log10(c["b"]) ** 2, space=sp, method="lbfgsb", budget=200
    )
    assert res.config["a"] == pytest.approx(1, abs=1e-4)
    assert res.config["b"] == pytest.approx(1, rel=1e-3)


def test_x0_is_a_configuration_or_the_centre() -> None:
    sp = Space(MIXED)
    start = {**sp.sample(3)[0], "opt": "sgd", "momentum": 0.5}
    start.pop("beta1", None)
    first: list[dict] = []
    oa.minimize(
        lambda c: first.append(c) or 0.0,
        space=sp,
        x0=start,
        method="random_search",
        budget=5,
        seed=0,
    )
    assert {k: first[0][k] for k in ("width", "act", "opt", "momentum")} == {
        k: start[k] for k in ("width", "act", "opt", "momentum")
    }
    first.clear()
    oa.minimize(lambda c: first.append(c) or 0.0, space=sp, method="random_search", budget=2)
    assert first[0] == sp.decode(sp.encoding.centre)


def test_an_error_in_f_carries_a_space_result() -> None:
    def f(config: dict[str, Any]) -> float:
        if config["x"] > 0.9:
            raise RuntimeError("diverged")
        return config["x"]

    with pytest.raises(oa.ObjectiveError) as err:
        oa.minimize(f, space={"x": Real(0, 1)}, method="random_search", budget=200, seed=0)
    assert isinstance(err.value.result, SpaceResult)
    assert err.value.result.config["x"] == err.value.result.fun


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bounds": (0, 1)}, "sets the bounds"),
        ({"x0": [0.5]}, "configuration dict"),
        ({"executor": object()}, "executor"),
        ({"reevaluate": 2}, "reevaluate"),
        ({"constraints": [oa.Ineq(lambda x: x[0])]}, "constraints"),
        ({"space": {"a": 1}}, "nothing to search"),
    ],
)
def test_minimize_refuses_what_a_space_run_cannot_take(kwargs: dict, match: str) -> None:
    args = {"space": {"x": Real(0, 1)}, "method": "cmaes", "budget": 10, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        oa.minimize(lambda c: 0.0, **args)


def test_space_and_its_parts_are_exported() -> None:
    for name in ("Space", "Real", "Int", "Choice", "Fixed"):
        assert getattr(oa, name) is getattr(oa.space, name)


def test_a_space_without_method_runs_auto() -> None:
    """minimize(space=...) without method= used lbfgs, which a space of integers and
    categories refuses (Optuna picks a sampler by itself)."""
    space = {"n": Int(1, 10), "c": Choice(["a", "b"]), "x": Real(-1, 1)}
    res = oa.minimize(
        lambda c: (c["n"] - 3) ** 2 + (c["c"] == "b") + c["x"] ** 2, space=space, budget=60, seed=0
    )
    assert res.method == "auto" and res.nfev == 60 and res.config["n"] == 3


def test_sample_takes_a_torch_generator_reproducibly() -> None:
    space = Space({"n": Int(1, 10), "c": Choice(["a", "b"]), "x": Real(-1, 1)})
    a = space.sample(torch.Generator().manual_seed(3), n=4)
    b = space.sample(torch.Generator().manual_seed(3), n=4)
    assert a == b and len(a) == 4 and space.sample(np.int64(5)) == space.sample(5)


def test_constraints_with_a_space_say_how_to_write_them() -> None:
    with pytest.raises(ValueError, match="add a penalty for the violation"):
        oa.minimize(
            lambda c: c["x"], space={"x": Real(0, 1)}, constraints=[oa.Ineq(lambda x: x[0])]
        )
