"""optarena.study as a user coming from Optuna writes it: reports, returned values, process
pools, the names Optuna gives to the best configuration and the trials table."""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch

from _study_cases import SPACE, quadratic
from optarena.space import Choice, Int
from optarena.study import MedianPruner, TrialPruned, optimize
from optarena.study.trial import Trial


def test_report_refuses_steps_that_do_not_increase_and_values_that_are_not_numbers() -> None:
    t = Trial(0, {})
    t.report(3, 1.0)
    with pytest.raises(ValueError, match="reported step 1 after step 3: steps must increase"):
        t.report(1, 0.5)
    with pytest.raises(TypeError, match="report\\(\\) takes a number as the value"):
        t.report(4, "0.3")
    with pytest.raises(ValueError, match="the step comes first"):
        t.report(0.25, 4)  # Optuna's order: report(value, step)
    t.report(5, torch.tensor(0.5))
    t.report(6, np.float32(0.25))
    t.report(np.arange(8)[7], 0.125)  # a numpy int step
    assert t.reports == {3: 1.0, 5: 0.5, 6: 0.25, 7: 0.125} and not t.should_prune()
    assert all(type(k) is int for k in t.reports)


def test_should_prune_says_what_the_pruner_decided_at_the_last_report() -> None:
    def f(c: dict, trial) -> float:
        for step in range(3):
            try:
                trial.report(step, quadratic(c) + step)
            except TrialPruned:
                assert trial.should_prune()  # Optuna's habit, after catching it
                raise
            assert not trial.should_prune()
        return quadratic(c)

    study = optimize(f, SPACE, method="random_search", n_trials=12, seed=0,
                     pruner=MedianPruner(n_startup_trials=2))  # fmt: skip
    assert study.n_pruned > 0 and study.n_failed == 0


def test_a_tensor_of_several_elements_fails_the_trial_with_its_shape() -> None:
    f = lambda c: torch.tensor([1.0, c["x"]])  # noqa: E731
    study = optimize(f, SPACE, n_trials=2, seed=0, catch=TypeError)
    assert study.n_failed == 2
    assert "Tensor of shape (2,), not one number" in study.trials["error"].iloc[0]


def test_infinite_values_are_complete_but_the_summary_says_no_finite_value() -> None:
    study = optimize(lambda c: math.inf, SPACE, n_trials=2, seed=0)
    assert study.n_complete == 2 and "no finite value" in repr(study)


def test_optunas_names_for_the_best_configuration_and_the_trials_table() -> None:
    study = optimize(quadratic, SPACE, method="random_search", n_trials=6, seed=0)
    assert study.best_params == study.best_config is not None
    assert study.trials_dataframe() is study.trials
    assert {"params_x", "params_n", "params_act"} <= set(study.trials_dataframe().columns)


def test_a_process_pool_refuses_a_lambda_before_any_trial(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    with ProcessPoolExecutor(1) as ex, pytest.raises(TypeError, match="cannot be sent to a"):
        optimize(lambda c: c["x"], SPACE, n_trials=2, in_flight=2, executor=ex, store=path)


def test_optunas_trial_pruned_raised_by_a_ported_objective_prunes_the_trial() -> None:
    optuna = pytest.importorskip("optuna")

    def f(c: dict, trial) -> float:
        trial.report(0, c["x"])
        raise optuna.TrialPruned()

    study = optimize(f, SPACE, n_trials=2, seed=0)
    assert study.n_pruned == 2 and study.n_failed == 0


def test_the_arena_run_of_a_study_says_why_it_ended(tmp_path) -> None:
    from optarena.bench.store import Store

    path = tmp_path / "s.sqlite"
    optimize(quadratic, SPACE, n_trials=3, seed=0, store=path, name="ok")
    optimize(lambda c: math.nan, SPACE, n_trials=2, seed=0, store=path, name="nan")
    with Store(path) as st:
        sql = "SELECT problem, problem_params, stop_reason, message FROM runs"
        rows = {r["problem"]: r for r in st.query(sql)}
    # the report and the summary name a problem with its params: a study is "study:<name>"
    assert rows["study:ok"]["problem_params"] == "{}"
    assert rows["study:ok"]["stop_reason"] == "max_evals"
    assert rows["study:ok"]["message"] == "3 trials stored"
    assert rows["study:nan"]["stop_reason"] == "no_finite_value"


def test_a_spec_whose_objective_cannot_be_imported_names_the_key_and_the_folder(tmp_path) -> None:
    from optarena.study.spec import load_spec

    (tmp_path / "obj.py").write_text("def f(config):\n    return config['x']\n")
    spec = tmp_path / "s.toml"
    base = '[study]\nspace = {x = {type = "real", lo = 0.0, hi = 1.0}}\nn_trials = 2\n'
    spec.write_text(base + 'objective = "obj:g"\n')
    with pytest.raises(ValueError, match=r"\[study\] objective 'obj:g' cannot be imported from"):
        load_spec(spec)
    spec.write_text(base + 'objective = "nomodule:f"\n')
    with pytest.raises(ValueError, match="No module named 'nomodule'"):
        load_spec(spec)
    spec.write_text(base + 'objective = "obj:f"\n')
    assert load_spec(spec)["objective"].function()({"x": 0.5}) == 0.5


def test_ctrl_c_returns_the_study_so_far_and_a_call_again_resumes(tmp_path) -> None:
    from optarena.bench.store import Store

    path = tmp_path / "s.sqlite"
    calls: list[int] = []

    def f(c: dict, trial) -> float:
        calls.append(trial.number)
        if trial.number == 3 and calls.count(3) == 1:
            raise KeyboardInterrupt
        return quadratic(c)

    opts = {"method": "tpe", "n_startup": 2, "seed": 4, "store": path, "name": "s"}
    cut = optimize(f, SPACE, n_trials=6, **opts)
    assert cut.n_trials == 3 and "interrupted (Ctrl-C)" in cut.message
    with Store(path) as st:
        assert st.query("SELECT stop_reason FROM runs")[0][0] == "interrupted"
    again = optimize(f, SPACE, n_trials=6, **opts)
    assert again.resumed == 3 and again.n_complete == 6 and calls == [0, 1, 2, 3, 3, 4, 5]
    once = optimize(quadratic, SPACE, n_trials=6, **{**opts, "store": None})
    cols = ["number", "value", "params_x", "params_n", "params_act"]
    assert again.trials[cols].equals(once.trials[cols])


def test_a_study_whose_every_trial_failed_says_the_first_error() -> None:
    study = optimize(lambda c: c["width"], {"widht": Int(1, 4)}, n_trials=3, seed=0, catch=KeyError)
    assert study.n_failed == 3
    assert "every trial failed (the first error: KeyError: 'width')" in repr(study)


def test_a_study_of_an_exhausted_space_says_why_the_method_stopped() -> None:
    space = {"k": Int(0, 2), "c": Choice(["a", "b"])}
    study = optimize(lambda c: c["k"], space, method="random_search", n_trials=40, seed=0)
    assert study.n_trials < 40 and "the space looks exhausted" in study.message
