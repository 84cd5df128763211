"""optarena.study when trials fail: the study stops on the objective's exception (stored
first, with its traceback) unless ``catch=`` expects it; a stopped study resumes."""

from __future__ import annotations

import math
import pickle
import textwrap
import traceback
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest
import torch

from _study_cases import SPACE, quadratic
from optarena.space import Choice, Real
from optarena.study import (
    TrialError,
    optimize,
    trial_traceback,
    trials_frame,
)
from optarena.study.trial import ImportedObjective, Outcome


def shape_bug(c: dict) -> float:
    return torch.nn.Linear(4, 1)(torch.randn(3, 5)).sum().item()


def test_an_exception_stops_the_study_after_storing_the_trial_with_its_traceback(
    tmp_path,
) -> None:
    path = tmp_path / "f.sqlite"
    with pytest.raises(TrialError, match="trial 0 failed with RuntimeError: mat1 and mat2") as e:
        optimize(shape_bug, SPACE, n_trials=50, seed=0, store=path, name="f")
    assert isinstance(e.value.__cause__, RuntimeError)  # the user's traceback is chained
    shown = "".join(traceback.format_exception(e.value))
    assert "in shape_bug" in shown and __file__ in shown
    study = e.value.study
    assert study is not None and study.n_failed == 1 and study.n_trials == 1
    frame = trials_frame(path, "f")
    assert frame.status.tolist() == ["failed"]
    assert frame.error[0].startswith("RuntimeError: mat1 and mat2") and "\n" not in frame.error[0]
    from optarena.bench.store import Store

    with Store(path) as st:  # the arena's run of the study says why it ended
        (run,) = st.runs()
    assert run["stop_reason"] == "error"
    assert run["message"].startswith("1 trials stored; trial 0 failed: RuntimeError: mat1")
    tb = trial_traceback(path, "f", 0)
    assert tb == study.traceback(0)
    assert tb.startswith("Traceback") and "in shape_bug" in tb and __file__ in tb
    # fixed, the same call resumes: the failed trial stays failed and is not run again
    again = optimize(quadratic, SPACE, n_trials=4, seed=0, store=path, name="f")
    assert again.resumed == 1 and (again.n_failed, again.n_complete) == (1, 3)
    assert again.traceback(0) == tb and again.traceback(1) is None


def test_catch_stores_the_expected_failures_and_goes_on_nan_never_stops() -> None:
    def f(c: dict, trial) -> float:
        if trial.number == 1:
            raise ValueError("diverged")
        return math.nan if trial.number == 2 else quadratic(c)

    for catch in (Exception, (ValueError,), [ArithmeticError, ValueError]):
        study = optimize(f, SPACE, n_trials=5, seed=0, catch=catch)
        assert (study.n_failed, study.n_complete) == (2, 3)
        assert "in f" in study.traceback(1) and study.traceback(2) is None
    with pytest.raises(TrialError, match="ValueError: diverged") as e:
        optimize(f, SPACE, n_trials=5, seed=0, catch=KeyError)  # not the one raised
    assert e.value.number == 1 and e.value.study.n_trials == 2
    nan = optimize(lambda c: math.nan, SPACE, n_trials=3, seed=0)
    assert nan.n_failed == 3 and "every trial failed" in nan.message
    with pytest.raises(TypeError, match=r"catch must be an exception class"):
        optimize(quadratic, SPACE, n_trials=1, catch="Exception")


def test_an_exception_from_a_worker_process_keeps_its_traceback(tmp_path) -> None:
    (tmp_path / "bad_objective.py").write_text(
        "def f(config):\n    return helper(config)\n\n\ndef helper(config):\n"
        "    raise ZeroDivisionError('in the worker')\n"
    )
    obj = ImportedObjective("bad_objective:f", str(tmp_path))
    with ProcessPoolExecutor(1) as ex, pytest.raises(TrialError, match="in the worker") as e:
        optimize(obj, SPACE, n_trials=3, executor=ex, seed=0)
    cause = e.value.__cause__
    assert isinstance(cause, ZeroDivisionError)
    shown = "".join(traceback.format_exception(e.value))
    assert "in helper" in shown and "bad_objective.py" in shown


class _NeedsTwo(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a} {b}")


def test_an_exception_that_pickle_cannot_rebuild_is_sent_back_as_its_traceback() -> None:
    e = _NeedsTwo(1, 2)
    out = Outcome(0, "failed", None, "_NeedsTwo: 1 2", 0.0, 0.0, 0.0, {}, "Traceback ...", True, e)
    back = pickle.loads(pickle.dumps(out))
    assert back.exc is None and back.traceback == "Traceback ..." and back.raised
    from optarena.study.errors import RemoteTraceback, trial_error

    err = trial_error("s", back)
    assert isinstance(err.__cause__, RemoteTraceback) and "Traceback ..." in str(err.__cause__)


def test_the_seconds_of_a_trial_are_the_objectives_own_not_its_import(tmp_path) -> None:
    (tmp_path / "slow_import_objective.py").write_text(
        "import time\ntime.sleep(1.5)\n\n\ndef f(config):\n    return config['x'] ** 2\n"
    )
    obj = ImportedObjective("slow_import_objective:f", str(tmp_path))
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as ex:
        study = optimize(obj, {"x": Real(-1.0, 1.0)}, n_trials=2, executor=ex, seed=0)
    assert study.n_complete == 2
    assert study.trials.seconds.max() < 1.0  # the import (1.5 s) is not the trial's time


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"direction": "maximize"}, "return -score from the objective"),
        ({"n_jobs": 4}, "in_flight=N and an executor: executor='local:N'"),
        ({"callbacks": [print]}, "a study has no callbacks"),
        ({"show_progress_bar": True}, "prints no progress bar"),
        ({"sampler": object()}, "the sampler is method="),
        ({"storage": "sqlite:///x.db"}, "the storage is store="),
    ],
)
def test_optunas_arguments_are_refused_with_what_to_write(kwargs, says) -> None:
    (key,) = kwargs
    with pytest.raises(TypeError, match=rf"optimize\(\) takes no {key}= \(an Optuna argument\)"):
        optimize(quadratic, SPACE, n_trials=2, **kwargs)
    with pytest.raises(TypeError, match=says.replace("(", r"\(").replace(")", r"\)")):
        optimize(quadratic, SPACE, n_trials=2, **kwargs)


def test_direction_minimize_is_accepted_and_timeout_returns_the_study() -> None:
    study = optimize(quadratic, SPACE, n_trials=2, seed=0, direction="minimize")
    assert study.n_complete == 2

    def slow(c: dict) -> float:
        import time

        time.sleep(0.15)
        return quadratic(c)

    timed = optimize(slow, SPACE, n_trials=200, seed=0, timeout=0.5)
    assert 1 <= timed.n_trials < 200 and timed.n_complete == timed.n_trials
    assert "timeout: 0.5 s reached" in timed.message
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
        optimize(quadratic, SPACE, n_trials=2, timeout=0)


def test_an_optuna_objective_calling_suggest_stops_with_the_dict_form() -> None:
    def objective(trial) -> float:
        return trial.suggest_float("x", -3, 3) ** 2

    def objective2(config, trial) -> float:
        return trial.suggest_int("n", 0, 5)

    for f in (objective, objective2):
        with pytest.raises(TrialError, match="the configuration arrives as a dict") as e:
            optimize(f, SPACE, n_trials=10, seed=0, catch=Exception)  # stops even so
        assert e.value.study.n_trials == 1 and "config['lr']" in str(e.value)


def test_a_misspelt_option_is_named_with_its_close_match_before_the_store(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    optimize(quadratic, SPACE, n_trials=2, seed=0, store=path, name="fresh")
    with pytest.raises(TypeError, match=r"'n_startup_trials' \(did you mean 'n_startup'\?\)"):
        optimize(quadratic, SPACE, n_trials=4, store=path, name="fresh", n_startup_trials=5)
    with pytest.raises(
        TypeError, match=r"unknown option\(s\) 'zzz': neither optimize\(\) nor method 'tpe'"
    ):
        optimize(quadratic, SPACE, n_trials=4, zzz=1)


def test_best_trial_get_trials_and_n_trials_as_the_studys_total(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    study = optimize(quadratic, SPACE, n_trials=4, seed=0, store=path, method="random_search")
    best = study.best_trial
    assert best is not None and best.number == study.best_number
    assert (best.params, best.value, best.state) == (study.best_config, study.best_value,
                                                     "complete")  # fmt: skip
    records = study.get_trials()
    assert [t.number for t in records] == [0, 1, 2, 3]
    assert [t.params for t in records] == study.result.configs()
    again = optimize(quadratic, SPACE, n_trials=3, store=path, method="random_search")
    assert again.n_trials == 4 and again.resumed == 4
    assert "n_trials counts the study's trials in all" in again.message
    assert "pass n_trials=7 for 3 more" in again.message


def test_a_pruner_given_to_an_objective_that_cannot_report_warns() -> None:
    with pytest.warns(UserWarning, match="never prunes: the objective takes only the config"):
        optimize(quadratic, SPACE, n_trials=2, seed=0, pruner="median")


def test_a_memory_study_takes_choices_json_cannot_hold(tmp_path) -> None:
    space = {"act": Choice([torch.nn.ReLU, torch.nn.Tanh]), "shape": Choice([(16, 16), (32,)])}
    seen: list[tuple] = []

    def f(c: dict) -> float:
        seen.append((c["act"], c["shape"]))
        return float(c["act"] is torch.nn.Tanh) + len(c["shape"])

    study = optimize(f, space, n_trials=4, seed=0, method="random_search")
    assert study.n_complete == 4
    assert all(a in (torch.nn.ReLU, torch.nn.Tanh) and s in ((16, 16), (32,)) for a, s in seen)
    assert study.best_config["act"] in (torch.nn.ReLU, torch.nn.Tanh)  # the objects
    assert "ReLU" in str(study.trials.params_act.iloc[0])  # the table shows their repr
    with pytest.raises(TypeError, match=r"write it as the list \[16, 16\]"):
        optimize(f, {"shape": space["shape"]}, n_trials=2, store=tmp_path / "s.sqlite")


def test_a_spec_with_in_flight_and_no_dask_key_says_to_add_the_key(tmp_path) -> None:
    from optarena.study.spec import run_spec

    (tmp_path / "q_objective.py").write_text("def f(config):\n    return config['x'] ** 2\n")
    spec = tmp_path / "q.toml"
    spec.write_text(
        textwrap.dedent("""\
        [study]
        objective = "q_objective:f"
        space = {x = {type = "real", lo = -1.0, hi = 1.0}}
        n_trials = 2
        in_flight = 2
        seed = 0
        """)
    )
    with pytest.warns(UserWarning) as caught:
        study = run_spec(spec)
    assert study.n_complete == 2
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and 'add dask = "local:2"' in messages[0]
    assert "executor=" not in messages[0]


def test_the_study_command_shows_the_objectives_traceback_and_a_spec_may_catch(
    tmp_path, capsys
) -> None:
    from optarena.cli import main

    (tmp_path / "div_objective.py").write_text(
        "def f(config):\n    return ratio(config)\n\n\ndef ratio(config):\n"
        "    return 1.0 / 0.0 if config['x'] < 0.5 else config['x']\n"
    )
    spec = tmp_path / "d.toml"
    base = (
        '[study]\nobjective = "div_objective:f"\nspace = {x = {type = "real", lo = 0.0, '
        'hi = 1.0}}\nn_trials = 6\nseed = 0\nmethod = "random_search"\nstore = "d.sqlite"\n'
    )
    spec.write_text(base)
    assert main(["study", str(spec)]) == 1
    out, err = capsys.readouterr()
    assert "Study('d'" in out and "1 failed" in out
    assert "in ratio" in err and "div_objective.py" in err and "ZeroDivisionError" in err
    spec.write_text(base.replace('"d.sqlite"', '"e.sqlite"') + 'catch = ["ZeroDivisionError"]\n')
    assert main(["study", str(spec)]) == 0
    frame = trials_frame(tmp_path / "e.sqlite")
    assert len(frame) == 6 and (frame.status == "failed").sum() == (frame.params_x < 0.5).sum()
    spec.write_text(base + 'catch = ["NoSuchError"]\n')
    assert main(["study", str(spec)]) == 1
    assert "'NoSuchError' is not an exception class" in capsys.readouterr().err
