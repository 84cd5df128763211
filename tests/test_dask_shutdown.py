"""Closing a "local:N" cluster prints nothing: worker processes slow to exit (torch's teardown
on a loaded machine) are given time instead of being killed, and the kill of workers still
running cancelled tasks is silent. Real errors of a run still surface.

Each scenario runs as a user's script in its own process (its stderr and its workers' are the
test's file descriptor 2, read with capfd): logging handlers of a test process would write to
pytest's own capture instead."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from optarena.bench.dask_runner import _ShutdownNoise

NOISE = ("Traceback", "CommClosedError", "killing", "CancelledError", "Error", "WARNING")

PRELUDE = """
import sys, time
from optarena.bench import MethodEntry, ProblemEntry, Spec, Store
from optarena.bench.dask_runner import connect, run_plan_dask


def slow_exit(seconds):
    # this worker process takes `seconds` to exit, as torch's teardown does under load
    import atexit, time
    atexit.register(time.sleep, seconds)


def nap(seconds):
    import time
    time.sleep(seconds)
    return seconds

"""


def run_script(tmp_path: Path, body: str) -> None:
    script = tmp_path / "scenario.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, timeout=240)
    assert done.returncode == 0


def test_a_sweep_on_local_2_closes_without_a_word_even_when_workers_exit_slowly(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run_script(
        tmp_path,
        """
        if __name__ == "__main__":
            spec = Spec(problems=(ProblemEntry("sphere", {"dim": 2}),),
                        methods=(MethodEntry("random_search", {"batch_size": 10}),),
                        seeds=(0, 1, 2, 3), budget=30, name="shutdown")
            with Store("runs.sqlite") as st, connect("local:2") as client:
                # past the 4 s that distributed's own close waits before killing a worker
                client.run(slow_exit, 5.0)
                report = run_plan_dask(spec.plan(), st, client, progress=False)
            assert (report.ran, report.errors) == (4, 0), report
            assert client.status == "closed"
            print("closed")
        """,
    )
    out, err = capfd.readouterr()
    assert "closed" in out
    assert not [w for w in NOISE if w in err], err


def test_an_interrupted_run_closes_its_busy_workers_quickly_and_silently(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run_script(
        tmp_path,
        """
        if __name__ == "__main__":
            try:
                with connect("local:2") as client:
                    futures = [client.submit(nap, 60.0, pure=False) for _ in range(2)]
                    while sum(map(len, client.processing().values())) < 2:
                        time.sleep(0.05)
                    client.cancel(futures)  # what a sweep does on Ctrl-C
                    start = time.perf_counter()
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                print(f"closed in {time.perf_counter() - start:.1f} s")
        """,
    )
    out, err = capfd.readouterr()
    assert out.startswith("closed in ") and float(out.split()[2]) < 30.0  # killed, not awaited
    assert not [w for w in NOISE if w in err], err


def test_the_filter_passes_real_errors_and_is_removed_after_the_close() -> None:
    noise = _ShutdownNoise()

    def record(msg: str, exc: BaseException | None = None) -> logging.LogRecord:
        info = (type(exc), exc, None) if exc is not None else None
        return logging.LogRecord("distributed.nanny", logging.ERROR, "", 0, msg, (), info)

    assert not noise.filter(record("Worker process still alive after 4.0 seconds, killing"))
    from distributed.comm.core import CommClosedError

    assert not noise.filter(record("Failed to communicate", CommClosedError("closed")))
    assert noise.filter(record("Compute Failed", ValueError("a real error")))
    assert noise.filter(record("Worker is at 95% memory usage"))
    assert all(not isinstance(f, _ShutdownNoise) for f in logging.getLogger("distributed").filters)


def test_ctrl_c_in_a_terminal_reaches_the_workers_and_none_of_them_prints_a_traceback(
    tmp_path: Path,
) -> None:
    """Ctrl-C reaches the whole foreground process group, worker processes included: the
    parent handles it (cancels, closes), and no worker prints its own KeyboardInterrupt."""
    script = tmp_path / "scenario.py"
    script.write_text(
        PRELUDE
        + textwrap.dedent(
            """
            if __name__ == "__main__":
                try:
                    with connect("local:2") as client:
                        futures = [client.submit(nap, 60.0, pure=False) for _ in range(2)]
                        while sum(map(len, client.processing().values())) < 2:
                            time.sleep(0.05)
                        print("busy", flush=True)
                        time.sleep(120)
                except KeyboardInterrupt:
                    print("closed", flush=True)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "busy", proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0 and "closed" in out, (out, err)
    assert not [w for w in (*NOISE, "KeyboardInterrupt") if w in err], err
