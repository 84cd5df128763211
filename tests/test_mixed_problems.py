"""Mixed-integer space problems: exact optima, their spaces, and refusal of bad input."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.problems import SpaceProblem, space_problem, space_problem_names
from optarena.problems.mixed import LEVELS, OFFSETS, X_OPT, Z_OPT, rotation
from optarena.space import Choice, Int, Real, Space

NAMES = space_problem_names()


def test_both_mixed_problems_are_registered() -> None:
    assert {"mixed_integer", "mixed_categorical"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_optimum_is_exact_and_matches_the_space(name: str) -> None:
    p = space_problem(name)
    assert isinstance(p, SpaceProblem)
    assert p(p.config_opt) == p.f_opt == 0.0
    assert set(p.config_opt) == set(p.space.names)
    # the optimum decodes back from its encoding to itself: it is a point of the space
    assert p.space.decode(p.space.encode(p.config_opt)) == p.config_opt
    assert p.solved(p.config_opt)
    # and the search's starting point (the centre of the box) is not the optimum
    centre = p.space.decode(p.space.encoding.centre)
    assert not p.solved(centre) and p(centre) > 1.0


def test_spaces_are_the_ones_the_issue_states() -> None:
    ints = space_problem("mixed_integer").space
    cats = space_problem("mixed_categorical").space
    reals = {f"x{i}": Real(-5.0, 5.0) for i in range(5)}
    integers = {f"z{i}": Int(-10, 10) for i in range(5)}
    assert ints == Space({**reals, **integers})
    assert cats == Space({**reals, **integers, **{f"c{j}": Choice(list(LEVELS)) for j in range(3)}})
    assert Space.from_json(json.dumps(json.loads(cats.to_json()))) == cats
    assert all(z != 0 for z in Z_OPT) and all(x != 0 for x in X_OPT)


def test_the_real_part_is_a_rotated_ellipsoid_of_the_stated_condition() -> None:
    p = space_problem("mixed_integer", condition=1e3, seed=0)
    rot = rotation(5, 0)
    np.testing.assert_allclose(rot @ rot.T, np.eye(5), atol=1e-12)
    # along each rotated axis, f grows as w_i t^2 with w from 1 to 1e3
    values = []
    for i in range(5):
        step = rot[i] * 0.25  # y = rot (x - x*) = 0.25 e_i
        cfg = dict(p.config_opt)
        cfg.update({f"x{k}": X_OPT[k] + step[k] for k in range(5)})
        values.append(p(cfg) / 0.0625)
    np.testing.assert_allclose(values, 1e3 ** (np.arange(5) / 4), rtol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_every_discrete_mistake_costs_at_least_one(name: str) -> None:
    p = space_problem(name)
    for n in p.space.discrete:
        param = p.space.params[n]
        options = range(param.lo, param.hi + 1) if isinstance(param, Int) else param.options
        for v in options:
            cfg = {**p.config_opt, n: v}
            assert (p(cfg) >= 1.0) == (v != p.config_opt[n]), (n, v)


def test_categorical_offsets_are_zero_one_three_ten() -> None:
    p = space_problem("mixed_categorical")
    for j in range(3):
        paid = sorted(p({**p.config_opt, f"c{j}": lvl}) for lvl in LEVELS)
        assert paid == list(OFFSETS)


def test_the_categorical_optimum_is_the_unique_best_discrete_point() -> None:
    p = space_problem("mixed_categorical")
    best = min(
        itertools.product(LEVELS, repeat=3),
        key=lambda c: p({**p.config_opt, "c0": c[0], "c1": c[1], "c2": c[2]}),
    )
    assert best == tuple(p.config_opt[f"c{j}"] for j in range(3))
    assert "a" not in best  # never the first option, which the box centre decodes to


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"z0": 11}, "outside"),
        ({"z0": 2.5}, "integer"),
        ({"x0": float("nan")}, "finite"),
        ({"x0": 6.0}, "outside"),
        ({"extra": 1}, "not parameters"),
    ],
)
def test_bad_configurations_are_refused(change: dict, match: str) -> None:
    p = space_problem("mixed_integer")
    with pytest.raises(ValueError, match=match):
        p({**p.config_opt, **change})


def test_missing_entries_and_unknown_levels_are_refused() -> None:
    p = space_problem("mixed_categorical")
    cfg = dict(p.config_opt)
    del cfg["z3"]
    with pytest.raises(ValueError, match="missing"):
        p(cfg)
    with pytest.raises(ValueError, match="not one of the options"):
        p({**p.config_opt, "c1": "e"})


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="condition"):
        space_problem("mixed_integer", condition=0.5)
    with pytest.raises(TypeError, match="seed"):
        space_problem("mixed_integer", seed=1.5)
    with pytest.raises(TypeError, match="unknown parameter"):
        space_problem("mixed_integer", dim=3)
    with pytest.raises(ValueError, match="Did you mean"):
        space_problem("mixed_integr")


def test_a_space_search_runs_on_it_and_reports_a_value_it_saw() -> None:
    p = space_problem("mixed_categorical")
    res = oa.minimize(p, space=p.space, method="random_search", budget=50, seed=0)
    assert res.fun == p(res.config) and res.fun >= p.f_opt
    assert res.nfev == 50


# -- the benchmark's digits task and its peer adapters (benchmarks/hpo_task.py, hpo.py) -------
ROOT = Path(__file__).resolve().parents[1]


def _bench(name: str) -> Any:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_the_digits_split_is_fixed_and_the_loss_a_function_of_the_configuration() -> None:
    pytest.importorskip("sklearn")
    task = _bench("hpo_task")
    parts = task.split()
    assert [parts[k][0].shape[0] for k in ("train", "val", "test")] == [1078, 359, 360]
    assert sorted(task.SPACE.names) == sorted(
        ["lr", "weight_decay", "width", "depth", "activation", "batch_size", "optimizer"]
    )
    cfg = {"lr": 0.01, "weight_decay": 1e-4, "width": 8, "depth": 1, "activation": "gelu",
           "batch_size": 128, "optimizer": "adam"}  # fmt: skip
    state = torch.get_rng_state()
    first = task.validation_loss(cfg)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is left as it was
    assert task.validation_loss(dict(reversed(cfg.items()))) == first  # order does not matter
    assert 0.0 < first < math.log(10) * 2
    other = task.validation_loss({**cfg, "optimizer": "sgd"})
    assert other != first
    with pytest.raises(ValueError, match="outside"):
        task.validation_loss({**cfg, "width": 512})


@pytest.mark.parametrize("peer", ["run_catcma", "run_ngopt", "run_optuna"])
def test_peer_adapters_hand_the_function_valid_configurations(peer: str) -> None:
    hpo = _bench("hpo")
    p = space_problem("mixed_categorical")
    seen: list[dict] = []

    def f(config: dict) -> float:
        seen.append(config)
        return p(config)  # raises on any configuration outside the space or of a wrong type

    if peer == "run_catcma":
        pytest.importorskip("cmaes")
        trace = hpo.run_catcma(f, p.space, 30, 0)
    elif peer == "run_ngopt":
        pytest.importorskip("nevergrad")
        trace = hpo.run_ngopt(f, p.space, 30, 0)
    else:
        pytest.importorskip("optuna")
        trace = hpo.run_optuna("tpe", f, p.space, 30, 0)
    assert len(trace) == 30 and [c for _, c in trace] == seen[:30]
    assert all(type(c["z0"]) is int and type(c["x0"]) is float for c in seen)
    assert all(v == p(c) for v, c in trace)
