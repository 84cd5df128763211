"""Policy search on gymnasium environments: the parameter layout, batched episodes against a
one-policy-at-a-time gymnasium loop, exact environment-step counts, seeding, and a search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium")

from optarena import rl  # noqa: E402

SPECS = [
    rl.PolicySpec((4, 2)),
    rl.PolicySpec((4, 16, 2)),
    rl.PolicySpec((3, 16, 1), (-2.0,), (2.0,)),
    rl.PolicySpec((5, 7, 3, 2), (-1.0, 0.0), (1.0, 3.0)),
]


def reference_returns(env_id: str, spec: rl.PolicySpec, x: torch.Tensor, seeds) -> tuple:
    """One policy, one episode at a time, on ``gym.make(env_id)`` reset with each seed."""
    env = gym.make(env_id)
    net = spec.module(x)
    returns, steps = [], []
    for s in seeds:
        obs, _ = env.reset(seed=int(s))
        total, n, done = 0.0, 0, False
        while not done:
            with torch.no_grad():
                a = net(torch.as_tensor(obs).to(x.dtype)).numpy()
            action = a.astype(np.float32) if spec.continuous else int(a)
            obs, r, terminated, truncated, _ = env.step(action)
            total += float(r)
            n += 1
            done = terminated or truncated
        returns.append(total)
        steps.append(n)
    env.close()
    return np.array(returns), np.array(steps)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(map(str, s.sizes)))
def test_policy_has_d_parameters_and_round_trips(spec: rl.PolicySpec) -> None:
    sizes = spec.sizes
    expected = sum(o * i + o for i, o in itertools.pairwise(sizes))
    assert spec.dim == expected
    x = torch.randn(spec.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    net = spec.module(x)
    assert sum(p.numel() for p in net.parameters()) == spec.dim
    assert torch.equal(spec.vector(net), x)
    first = next(m for m in net if isinstance(m, torch.nn.Linear))
    assert torch.equal(first.weight.reshape(-1), x[: sizes[1] * sizes[0]])  # nn.Linear order
    # the batched forward of a population acts as each row's module does
    X = torch.randn(3, spec.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    obs = torch.randn(
        3, 5, sizes[0], dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    acts = spec.act(X, obs)
    for p in range(3):
        one = spec.module(X[p])(obs[p])
        if spec.continuous:
            torch.testing.assert_close(acts[p], one)
            assert (acts[p] >= torch.tensor(spec.low, dtype=torch.float64)).all()
            assert (acts[p] <= torch.tensor(spec.high, dtype=torch.float64)).all()
        else:
            assert torch.equal(acts[p], one)
    with pytest.raises(ValueError, match="parameters"):
        spec.module(torch.zeros(spec.dim + 1))


def test_policy_spec_refuses_bad_layouts() -> None:
    with pytest.raises(ValueError, match="sizes"):
        rl.PolicySpec((4,))
    with pytest.raises(ValueError, match="both"):
        rl.PolicySpec((3, 1), (-2.0,), None)
    with pytest.raises(ValueError, match="entries"):
        rl.PolicySpec((3, 2), (-2.0,), (2.0,))
    with pytest.raises(ValueError, match="low <= high"):
        rl.PolicySpec((3, 1), (2.0,), (-2.0,))
    with pytest.raises(ValueError, match="episodes"):
        rl.PolicyObjective("CartPole-v1", episodes=0)


@pytest.mark.parametrize(
    ("env_id", "hidden", "mode"),
    [
        ("CartPole-v1", (), "auto"),
        ("CartPole-v1", (16,), "auto"),
        ("CartPole-v1", (16,), "sync"),
        ("Pendulum-v1", (8,), "auto"),
    ],
)
def test_batched_objective_equals_one_policy_at_a_time(env_id, hidden, mode) -> None:
    obj = rl.PolicyObjective(env_id, hidden, episodes=3, seed=7, mode=mode)
    if env_id == "CartPole-v1":
        assert obj.envs.mode == ("vector_entry_point" if mode == "auto" else "sync")
    P = 5
    X = 0.5 * torch.randn(
        P, obj.policy.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    values = obj.evaluate_batch(X)  # one batch: P policies x 3 episodes in one vector env
    seeds = rl.episode_seeds(7, 0, P, 3)
    ref = [reference_returns(env_id, obj.policy, X[p], seeds[p]) for p in range(P)]
    ref_returns = np.stack([r for r, _ in ref])
    ref_steps = np.stack([s for _, s in ref])
    if obj.policy.continuous:  # the module and the batched product may round differently
        np.testing.assert_allclose(values, -ref_returns.mean(axis=1), rtol=1e-9)
    else:
        np.testing.assert_array_equal(values, -ref_returns.mean(axis=1))
    assert obj.env_steps == int(ref_steps.sum())  # every step of every episode, no more
    assert obj.evaluations == P and obj.episodes_played == 3 * P
    assert len(set(np.unique(ref_steps))) > 1 or env_id == "Pendulum-v1"  # unequal lengths
    # the same evaluations one at a time continue the sequence: evaluation e, not the batch
    obj.reset()
    singles = [obj.evaluate(X[p]) for p in range(P)]
    np.testing.assert_array_equal(singles, values)


def test_a_run_counts_every_env_step_and_replays_its_history() -> None:
    obj = rl.PolicyObjective("CartPole-v1", episodes=2)
    res = rl.minimize_policy(obj, "random_search", seed=3, budget=40, record_x=True, bounds=(-1, 1))
    assert res.nfev == 40 == obj.evaluations
    steps = 0
    for e, (x, f) in enumerate(zip(res.history.x, res.history.f, strict=True)):
        r, s = reference_returns(
            "CartPole-v1", obj.policy, torch.tensor(x), rl.episode_seeds(3, e, 1, 2)[0]
        )
        assert f == -r.mean()
        steps += int(s.sum())
    assert res.info["env_steps"] == steps == obj.env_steps
    assert res.info["episodes"] == 80


def test_same_seed_same_run_and_cmaes_improves_cartpole() -> None:
    obj = rl.PolicyObjective("CartPole-v1", episodes=1, max_episode_steps=100)  # a quick test
    start = obj.returns(torch.zeros(obj.policy.dim), episodes=10, seed=99).mean()
    a = rl.minimize_policy(obj, "cmaes", seed=1, budget=200)
    b = rl.minimize_policy(obj, "cmaes", seed=1, budget=200)
    np.testing.assert_array_equal(a.history.f, b.history.f)
    assert torch.equal(a.x, b.x) and a.info["env_steps"] == b.info["env_steps"]
    c = rl.minimize_policy(obj, "cmaes", seed=2, budget=200)
    assert not np.array_equal(a.history.f, c.history.f)
    assert "noise" in a.info  # declared noisy: the best point was re-evaluated
    after = obj.returns(a.x, episodes=10, seed=99).mean()
    assert start < 20 and after > start + 50, (start, after)


def centre_solves_cartpole(method: str, hidden: tuple[int, ...], seed: int) -> bool:
    """Whether the search distribution's centre scores 500 over 10 test episodes (checked
    every generation) within 2,000 search episodes of CartPole-v1."""
    obj = rl.PolicyObjective("CartPole-v1", hidden)
    test = rl.PolicyObjective("CartPole-v1", hidden)
    solved: list[int] = []

    def callback(info) -> bool:
        mean = info.checkpoint.state.mean
        if test.returns(mean, episodes=10, seed=12345).mean() >= 500:
            solved.append(obj.episodes_played)
            return True
        return False

    rl.minimize_policy(obj, method, seed=seed, budget=2000, callback=callback, reevaluate_elite=0)
    return bool(solved)


@pytest.mark.parametrize("seed", [0, 3])
def test_openai_es_centre_solves_cartpole_with_a_linear_policy(seed: int) -> None:
    """The best sample of a run reaches CartPole's bound (500) long before the centre does;
    OpenAI-ES used to shrink sigma whenever the best value stalled, which stopped the search
    (no centre at 500 within 2,000 episodes on these seeds). Its stagnation test now follows
    the generations' median value."""
    assert centre_solves_cartpole("openai_es", (), seed)


def test_pgpe_centre_solves_cartpole_with_an_mlp() -> None:
    """PGPE's ClipUp speed limit was 0.05 of the sampling radius: on the 4-16-2 MLP the centre
    moved too slowly to score 500 within 2,000 episodes (seeds 0 and 1; 414 episodes now)."""
    assert centre_solves_cartpole("pgpe", (16,), 1)
