"""The live progress line: composes with the user's callback, redraws on a clock not on every
iteration, closes on any end of the run, writes to stderr, and is nothing at all when off."""

from __future__ import annotations

import io
import os

import pytest
import torch

from optarena import Budget, minimize
from optarena.cli import main
from optarena.core.errors import ObjectiveError
from optarena.progress import (
    Progress,
    ProgressLine,
    finish,
    observe,
    wants_progress,
    wrap_callback,
)


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum()


X0 = torch.tensor([1.5, -2.0, 0.5], dtype=torch.float64)


def _last_line(text: str) -> str:
    """The last state of a line redrawn with carriage returns."""
    return [s for s in text.replace("\r", "\n").split("\n") if s.strip()][-1]


def test_off_is_the_callers_callback_itself() -> None:
    def mine(info: object) -> None:
        return None

    assert wrap_callback(mine, False, 100, "gd") is mine
    assert wrap_callback(None, None, 100, "gd") is None
    with observe(False, 100, "gd", mine) as cb:
        assert cb is mine
    with observe(False, 100, "gd") as cb:
        assert cb is None
    res = minimize(sphere, X0, "gd", budget=5, seed=0, lr=0.1)
    assert finish(mine, res) is res


def test_line_shows_evaluations_of_budget_best_and_label() -> None:
    out = io.StringIO()
    with observe(Progress(file=out, interval=0), 25, "random_search") as cb:
        res = finish(cb, minimize(sphere, X0, "random_search", budget=25, seed=3, callback=cb,
                                  bounds=(-3.0, 3.0)))  # fmt: skip
    last = _last_line(out.getvalue())
    assert res.nfev == 25
    assert last.startswith("random_search:")
    assert "25/25" in last
    assert f"best={res.fun:.6g}" in last
    assert "stop=max_evals" in last
    assert "eval/s" in last
    assert out.getvalue().endswith("\n")  # closed: the terminal's next line is free


def test_finish_shows_evaluations_made_after_the_last_iteration() -> None:
    """A population batch cut by the budget ends the run before any callback: the last
    iteration seen is behind, the Result is not."""
    seen: list[int] = []
    out = io.StringIO()
    with observe(Progress(file=out, interval=0), 25, "random_search", seen.append) as cb:
        # called through a plain function: minimize does not finish a line it does not see
        res = minimize(sphere, X0, "random_search", budget=25, seed=3,
                       callback=lambda info: cb(info), bounds=(-3.0, 3.0))  # fmt: skip
        behind = cb.nfev  # type: ignore[union-attr]
        finish(cb, res)
    assert behind < res.nfev == cb.nfev == 25  # type: ignore[union-attr]


def test_gradient_counts_shown_for_a_gradient_method() -> None:
    out = io.StringIO()
    with observe(Progress(file=out, interval=0), Budget(evals=50, grad_evals=40), "gd") as cb:
        res = minimize(sphere, X0, "gd", budget=Budget(evals=50, grad_evals=40), seed=0,
                       callback=cb, lr=0.1)  # fmt: skip
    last = _last_line(out.getvalue())
    assert f"grads={res.ngev}/40" in last
    assert f"{res.nfev}/50" in last


def test_best_is_the_lowest_reported_over_a_composites_sub_runs() -> None:
    seen: list[float] = []
    out = io.StringIO()
    with observe(Progress(file=out, interval=0), 400, "multistart", seen.append) as cb:
        res = minimize(sphere, X0, "multistart", budget=400, seed=1, callback=cb,
                       bounds=(-3.0, 3.0))  # fmt: skip
    assert isinstance(cb, ProgressLine)
    assert cb.best == min(i.best_f for i in seen)  # type: ignore[attr-defined]
    assert cb.best == res.fun


def test_a_checkpoint_is_wanted_only_by_a_users_callback() -> None:
    with observe(Progress(file=io.StringIO()), 10, "gd") as alone:
        assert not alone.wants_checkpoint  # type: ignore[union-attr]
    with observe(Progress(file=io.StringIO()), 10, "gd", print) as composed:
        assert composed.wants_checkpoint  # type: ignore[union-attr]


def test_user_callback_sees_every_iteration_and_can_stop_the_run() -> None:
    calls: list[int] = []

    def stop_at_third(info: object) -> bool:
        calls.append(info.iteration)  # type: ignore[attr-defined]
        return len(calls) == 3

    plain = minimize(sphere, X0, "gd", budget=100, seed=0, callback=stop_at_third, lr=0.1)
    plain_calls = list(calls)
    calls.clear()
    out = io.StringIO()
    with observe(Progress(file=out), 100, "gd", stop_at_third) as cb:
        shown = minimize(sphere, X0, "gd", budget=100, seed=0, callback=cb, lr=0.1)
    assert calls == plain_calls
    assert shown.stop_reason == plain.stop_reason == "callback"
    assert shown.nfev == plain.nfev
    assert torch.equal(shown.x, plain.x)


def test_redraws_follow_the_interval_not_the_iterations() -> None:
    """A redraw needs ``interval`` seconds since the last one: an hour-long interval gives the
    first iteration's draw and the closing one, whatever the number of iterations."""
    n_iter = []
    slow = io.StringIO()
    with observe(Progress(file=slow, interval=3600.0), 200, "gd", n_iter.append) as cb_slow:
        minimize(sphere, X0, "gd", budget=200, seed=0, callback=cb_slow, lr=0.01)
    assert len(n_iter) > 50
    assert cb_slow.draws == 2  # type: ignore[union-attr]
    every = io.StringIO()
    with observe(Progress(file=every, interval=0), 200, "gd") as cb_every:
        minimize(sphere, X0, "gd", budget=200, seed=0, callback=cb_every, lr=0.01)
    assert cb_every.draws == len(n_iter) + 1  # type: ignore[union-attr]


def test_closes_when_the_objective_raises() -> None:
    def bad(x: torch.Tensor) -> torch.Tensor:
        if bad.calls >= 5:  # type: ignore[attr-defined]
            raise RuntimeError("boom")
        bad.calls += 1  # type: ignore[attr-defined]
        return (x**2).sum()

    bad.calls = 0  # type: ignore[attr-defined]
    out = io.StringIO()
    shown = Progress(file=out, interval=0)
    with pytest.raises(ObjectiveError) as err, observe(shown, 100, "gd") as line:
        minimize(bad, X0, "gd", budget=100, seed=0, callback=line, lr=0.1)
    assert line.closed  # type: ignore[union-attr]
    assert out.getvalue().endswith("\n")
    last = _last_line(out.getvalue())
    assert f"{err.value.result.nfev}/100" in last and "stop=error" in last


def test_closes_on_ctrl_c_and_lets_it_through() -> None:
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt), observe(Progress(file=out), 100, "gd") as line:
        raise KeyboardInterrupt
    assert line.closed  # type: ignore[union-attr]
    assert out.getvalue().endswith("\n")


def test_ctrl_c_in_the_objective_ends_the_run_and_the_line() -> None:
    def interrupted(x: torch.Tensor) -> torch.Tensor:
        if interrupted.calls >= 7:  # type: ignore[attr-defined]
            raise KeyboardInterrupt
        interrupted.calls += 1  # type: ignore[attr-defined]
        return (x**2).sum()

    interrupted.calls = 0  # type: ignore[attr-defined]
    out = io.StringIO()
    with observe(Progress(file=out, interval=0), 100, "gd") as line:
        res = minimize(interrupted, X0, "gd", budget=100, seed=0, callback=line, lr=0.1)
        finish(line, res)
    assert res.stop_reason == "interrupted"
    assert "stop=interrupted" in _last_line(out.getvalue())
    assert line.closed  # type: ignore[union-attr]
    assert out.getvalue().endswith("\n")


def test_writes_to_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    with observe(True, 30, "gd") as cb:
        minimize(sphere, X0, "gd", budget=30, seed=0, callback=cb, lr=0.1)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "gd:" in captured.err and "/30" in captured.err


def test_bad_progress_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        Progress(interval=-1.0)
    with pytest.raises(TypeError, match="bool or a Progress"):
        wrap_callback(None, "yes", 10, "gd")  # type: ignore[arg-type]


def test_default_is_on_only_when_every_stream_is_a_terminal() -> None:
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty, io.StringIO() as plain:
        assert wants_progress(None, tty, tty)
        assert not wants_progress(None, tty, plain)
        assert wants_progress(True, plain)
        assert not wants_progress(False, tty)
    os.close(master)


def test_cli_run_shows_the_line_on_request_only(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "sphere", "-m", "random_search", "-b", "40", "--bounds", "always"]
    assert main([*args, "--progress"]) == 0
    shown = capsys.readouterr()
    assert "random_search:" in shown.err and "40/40" in _last_line(shown.err)
    assert "random_search:" not in shown.out
    assert main([*args, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    assert main(args) == 0  # captured streams are not terminals: off by default
    assert capsys.readouterr().err == ""


def test_composite_iterations_name_their_phase() -> None:
    """A chain's callback sees which phase each iteration belongs to, and the line shows it."""
    phases: list[str | None] = []
    res = minimize(sphere, X0, "cmaes>lbfgs", budget=300, seed=0, bounds=(-3.0, 3.0),
                   callback=lambda info: phases.append(info.phase))  # fmt: skip
    assert res.nfev == 300
    seen = [p for p in dict.fromkeys(phases) if p is not None]
    assert seen[:2] == ["cmaes", "lbfgs"]
    out = io.StringIO()
    minimize(sphere, X0, "cmaes>lbfgs", budget=300, seed=0, bounds=(-3.0, 3.0),
             progress=Progress(file=out, interval=0))  # fmt: skip
    assert "phase=cmaes" in out.getvalue() and "phase=lbfgs" in out.getvalue()
