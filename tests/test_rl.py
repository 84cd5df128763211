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
    return reference_module_returns(spec.module(x), seeds, env_id, spec.continuous)


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


def test_batched_pendulum_steps_exactly_as_gymnasium() -> None:
    """Pendulum-v1 is played by optarena's batched numpy implementation (gymnasium steps it one
    environment at a time): the same starts, states and observations, bit for bit, and the
    same rewards but for the rounding of the squares (gymnasium squares numpy scalars with
    pow / powf, which can be an ulp off the array's product: 1e-11 of a reward)."""
    from optarena.rl.batched import PendulumVectorEnv

    envs = rl.VectorEnvs("Pendulum-v1")
    assert envs.mode == "batched"
    assert rl.VectorEnvs("Pendulum-v1", g=9.81).mode == "batched"
    assert rl.VectorEnvs("Pendulum-v1", render_mode="rgb_array").mode == "sync"
    seeds = [3, 17, 2**31 + 5]
    env, obs = envs.reset(seeds)
    assert isinstance(env, PendulumVectorEnv)
    singles = [gym.make("Pendulum-v1") for _ in seeds]
    ref = np.stack([e.reset(seed=s)[0] for e, s in zip(singles, seeds, strict=True)])
    np.testing.assert_array_equal(obs, ref)
    rng = np.random.default_rng(0)
    for t in range(200):
        a = rng.uniform(-2.5, 2.5, size=(3, 1)).astype(np.float32)  # beyond the box: clipped
        obs, r, term, trunc, _ = env.step(a)
        for i, e in enumerate(singles):
            o1, r1, te1, tr1, _ = e.step(a[i])
            np.testing.assert_array_equal(obs[i], o1)
            np.testing.assert_array_equal(env.state[:, i], e.unwrapped.state)
            assert r[i] == pytest.approx(r1, rel=1e-9, abs=1e-12), t
            assert term[i] == te1 and trunc[i] == tr1, t
    assert trunc.all()
    with pytest.raises(ValueError, match="no batched"):
        rl.VectorEnvs("CartPole-v1", mode="batched")


def test_running_stats_merge_batches_as_one() -> None:
    from optarena.rl.normalize import RunningStats

    rng = np.random.default_rng(1)
    parts = [rng.normal(3.0, [0.5, 2.0, 1e-3], size=(n, 3)) for n in (1, 7, 50)]
    st = RunningStats(3)
    assert st.count == 0 and np.array_equal(st.stdev, np.ones(3))
    for p in parts:
        st.update(p)
    x = np.concatenate(parts)
    np.testing.assert_allclose(st.mean, x.mean(axis=0), rtol=1e-12)
    var = np.maximum(x.var(axis=0), 1e-2)  # a nearly constant entry is not blown up
    np.testing.assert_allclose(st.stdev, np.sqrt(var), rtol=1e-10)


def test_observation_normalization_uses_the_stats_of_earlier_batches() -> None:
    """With observation_normalization, a batch is played on observations normalized by the
    statistics of every observation of the batches before it; ``module(x)`` is that policy
    on raw observations (normalization first), and a reset forgets the statistics."""
    obj = rl.PolicyObjective(
        "Pendulum-v1", (8,), episodes=2, seed=5, observation_normalization=True
    )
    plain = rl.PolicyObjective("Pendulum-v1", (8,), episodes=2, seed=5)
    X = 0.5 * torch.randn(
        4, obj.policy.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    first = obj.evaluate_batch(X[:2])  # no statistics yet: raw observations
    np.testing.assert_array_equal(first, plain.evaluate_batch(X[:2]))
    assert obj.obs_stats.count == obj.env_steps == 2 * 2 * 200
    # the statistics are those of the observations the first batch's policies acted on
    seen = []
    for p in range(2):
        for s in rl.episode_seeds(5, p, 1, 2)[0]:
            env, net = gym.make("Pendulum-v1"), obj.policy.module(X[p])
            o, _ = env.reset(seed=int(s))
            for _ in range(200):
                seen.append(o)
                o = env.step(net(torch.as_tensor(o).double()).numpy().astype(np.float32))[0]
    np.testing.assert_allclose(
        obj.obs_stats.mean, np.mean(np.array(seen, np.float64), 0), rtol=1e-9
    )
    mods = [obj.module(X[2 + p]) for p in range(2)]  # with the first batch's statistics
    assert isinstance(mods[0][1], rl.ObsNorm)
    second = obj.evaluate_batch(X[2:])
    seeds = rl.episode_seeds(5, 2, 2, 2)
    for p in range(2):  # the second batch acted through the normalization of the first
        r, _ = reference_module_returns(mods[p], seeds[p])
        np.testing.assert_allclose(second[p], -r.mean(), rtol=1e-9)
    assert not np.allclose(second, plain.evaluate_batch(X[2:]))
    assert not isinstance(plain.module(X[0])[1], rl.ObsNorm)  # no normalization: the network
    obj.reset()
    assert obj.obs_stats.count == 0
    np.testing.assert_array_equal(obj.evaluate_batch(X[:2]), first)


def reference_module_returns(
    net: torch.nn.Module, seeds, env_id: str = "Pendulum-v1", continuous: bool = True
) -> tuple:
    """One module on ``gym.make(env_id)``, one episode per seed (observations as gymnasium
    gives them: the module takes them)."""
    env = gym.make(env_id)
    returns, steps = [], []
    for s in seeds:
        obs, _ = env.reset(seed=int(s))
        total, n, done = 0.0, 0, False
        while not done:
            with torch.no_grad():
                action = net(obs)  # numpy in: what env.step takes
            assert isinstance(action, np.ndarray if continuous else int), action
            obs, r, terminated, truncated, _ = env.step(action)
            total, n, done = total + float(r), n + 1, terminated or truncated
        returns.append(total)
        steps.append(n)
    return np.array(returns), np.array(steps)


def test_common_episodes_rank_a_batch_on_the_same_starts() -> None:
    """With common_episodes, every candidate of a batch plays the episodes of the batch's first
    evaluation (common random numbers), and the next batch draws new ones."""
    obj = rl.PolicyObjective("Pendulum-v1", (4,), episodes=2, seed=3, common_episodes=True)
    X = 0.5 * torch.randn(
        3, obj.policy.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    X[2] = X[0]
    values = obj.evaluate_batch(X)
    assert values[0] == values[2]  # the same policy on the same starts
    seeds = rl.episode_seeds(3, 0, 1, 2)[0]
    for p in range(3):
        r, _ = reference_returns("Pendulum-v1", obj.policy, X[p], seeds)
        np.testing.assert_allclose(values[p], -r.mean(), rtol=1e-9)
    nxt = obj.evaluate_batch(X[:1])  # evaluation 3: its own starts
    r, _ = reference_returns("Pendulum-v1", obj.policy, X[0], rl.episode_seeds(3, 3, 1, 2)[0])
    np.testing.assert_allclose(nxt[0], -r.mean(), rtol=1e-9)
    assert nxt[0] != values[0]


def test_a_policy_module_takes_observations_as_gymnasium_gives_them() -> None:
    """float32 numpy observations into a float64 policy: no dtype error, same action."""
    env = gym.make("CartPole-v1")
    spec = rl.policy_for(env.observation_space, env.action_space, hidden=(4,))
    x = torch.linspace(-1.0, 1.0, spec.dim, dtype=torch.float64)
    net = spec.module(x)
    obs, _ = env.reset(seed=3)
    assert obs.dtype == np.float32
    action = net(obs)
    assert int(action) == int(net(torch.as_tensor(obs, dtype=torch.float64)))
    assert int(action) in (0, 1)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_a_policy_module_acts_as_env_step_takes(env_id: str) -> None:
    """Was a tensor, which CartPole's step refuses (AssertionError: tensor(1) invalid)."""
    obj = rl.PolicyObjective(env_id, (4,), episodes=1, seed=0)
    x = 0.3 * torch.randn(obj.policy.dim, generator=torch.Generator().manual_seed(0))
    for net in (obj.policy.module(x), obj.module(x)):
        env = gym.make(env_id)
        obs, _ = env.reset(seed=1)
        for _ in range(3):
            obs, reward, *_ = env.step(net(obs))
        assert isinstance(float(reward), float)
        out = net(torch.as_tensor(obs))  # tensors stay tensors
        assert isinstance(out, torch.Tensor)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"episode": 3}, r"did you mean episodes= for episode=\?"),
        ({"hiden": (8,)}, r"did you mean hidden= for hiden=\?"),
        ({"hidden": 16}, r"hidden takes the hidden layers' sizes, e\.g\. \(16,\), got 16"),
    ],
)
def test_a_misspelled_keyword_is_named_not_passed_on_to_gymnasium(kw: dict, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        rl.PolicyObjective("CartPole-v1", **kw)
