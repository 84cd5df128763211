"""Evaluation on workers: a real Dask LocalCluster (2 processes on 127.0.0.1) and process pools.

A seeded run gives the History of the same run without executor whatever the number of chunks;
an objective raising on a worker is the local ObjectiveError; a worker killed mid-generation
is retried and counted; a worker that always dies ends the run with ExecutorError; a sweep of
40 runs over the cluster lands every run exactly once in the store, with the numbers of a
local sweep.
"""

from __future__ import annotations

import _thread
import math
import multiprocessing as mp
import os
import pickle
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.bench import MethodEntry, ProblemEntry, Spec, Store, run_plan
from optarena.core.objective import RowError
from optarena.parallel import ExecutorError, Parallel, RemoteTraceback

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
import dask  # noqa: E402

from optarena.bench.dask_runner import connect, run_plan_dask  # noqa: E402

# Workers receive this module's functions by value: they need not import the test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

POPULATION = [i.name for i in oa.methods() if i.family == "population"]
BOUNDED = {i.name for i in oa.methods() if i.supports_bounds}
BOX = (-2.0, 2.0)
BUDGET = 150


def bumpy(x: torch.Tensor) -> torch.Tensor:
    return ((x - 0.3) ** 2).sum() + 1.0 + 0.5 * torch.sin(3 * x).sum() ** 2


def x0() -> torch.Tensor:
    return torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)


#: The swarm size the chunk arithmetic of these tests assumes (40 points per generation).
SWARM = 40


def run(name: str, fn=bumpy, budget: int = BUDGET, **kw) -> oa.Result:
    if name == "pso":
        kw.setdefault("popsize", SWARM)
    obj = fn if isinstance(fn, oa.Objective) else oa.Objective(fn)
    bounds = BOX if name in BOUNDED else None
    return oa.minimize(obj, x0(), name, bounds=bounds, budget=budget, seed=11, **kw)


def assert_same_run(a: oa.Result, b: oa.Result) -> None:
    np.testing.assert_array_equal(a.history.f, b.history.f)
    np.testing.assert_array_equal(a.history.x, b.history.x)
    assert torch.equal(a.x, b.x)
    assert (a.fun, a.nfev, a.best_eval, a.stop_reason) == (
        b.fun,
        b.nfev,
        b.best_eval,
        b.stop_reason,
    )


def local_cluster() -> distributed.LocalCluster:
    """Two single-threaded worker processes on loopback."""
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # its HTTP routes (health, metrics) on a free loopback port, never a fixed one
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )


@pytest.fixture(scope="module")
def client():
    # allowed-failures = 0: a task whose worker dies is reported at once (KilledWorker)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = local_cluster()
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def mp_context() -> mp.context.BaseContext:
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["optarena.parallel.worker"])  # import torch once, fork workers
    return ctx


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(2, mp_context=mp_context()) as ex:
        yield ex


# -- same numbers whatever the workers -----------------------------------------------------------
@pytest.mark.parametrize("name", POPULATION)
def test_history_does_not_depend_on_the_number_of_chunks(client, name: str) -> None:
    local = run(name, budget=60)  # the last generation is trimmed to the budget
    for chunks in (1, 2, 4):
        res = run(name, budget=60, executor=Parallel(client, chunks=chunks))
        assert_same_run(local, res)
        assert res.info["worker_retries"] == 0
    assert_same_run(local, run(name, budget=60, executor=client.get_executor()))


def test_finite_difference_probes_are_evaluated_on_workers(client) -> None:
    local = run("lbfgs", oa.Objective(bumpy, gradient="fd"), budget=60)
    res = run("lbfgs", oa.Objective(bumpy, gradient="fd"), budget=60, executor=client)
    assert_same_run(local, res)


def test_process_pool_with_a_lambda(pool) -> None:
    local = run("pso", lambda x: bumpy(x))
    res = run("pso", lambda x: bumpy(x), executor=Parallel(pool, chunks=3))
    assert_same_run(local, res)


# -- faults ----------------------------------------------------------------------------------------
def fails_far_out(x: torch.Tensor) -> torch.Tensor:
    if float(x[0]) > 1.95:
        raise ZeroDivisionError("boom at a far point")
    return bumpy(x)


@pytest.mark.parametrize("where", ["dask", "pool"])
def test_objective_error_on_a_worker_is_the_local_error(client, pool, where: str) -> None:
    def objective() -> oa.Objective:
        return oa.Objective(fails_far_out, vectorize=False)

    with pytest.raises(oa.ObjectiveError) as local:
        run("pso", objective())
    executor = Parallel(client if where == "dask" else pool, chunks=4)
    with pytest.raises(oa.ObjectiveError) as remote:
        run("pso", objective(), executor=executor)
    lo, re = local.value, remote.value
    assert (lo.evaluation - 1) % 40 >= 10, "the failing point should not be in the first chunk"
    assert type(re) is oa.ObjectiveError
    assert re.evaluation == lo.evaluation
    assert str(re) == str(lo)
    assert isinstance(re.__cause__, ZeroDivisionError)
    assert isinstance(re.__cause__.__cause__, RemoteTraceback)
    assert "fails_far_out" in re.__cause__.__cause__.text
    assert re.result is not None and lo.result is not None
    assert re.result.nfev == lo.result.nfev == lo.evaluation - 1
    assert re.result.stop_reason is oa.StopReason.ERROR
    np.testing.assert_array_equal(re.result.history.f, lo.result.history.f)
    assert re.result.fun == lo.result.fun


def test_gradient_method_is_refused_before_any_evaluation() -> None:
    calls = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return bumpy(x)

    with ThreadPoolExecutor(2) as ex, pytest.raises(ValueError, match="one point and its grad"):
        oa.minimize(fn, x0(), "adam", budget=10, executor=ex)
    assert calls == []


def test_single_point_solver_warns_and_runs_locally() -> None:
    local = run("nelder_mead", budget=40)
    with ThreadPoolExecutor(2) as ex, pytest.warns(RuntimeWarning, match="executor= was not used"):
        res = run("nelder_mead", budget=40, executor=ex)
    assert_same_run(local, res)


def test_unpicklable_objective_is_refused_before_any_evaluation(pool) -> None:
    lock = threading.Lock()
    calls = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        with lock:
            calls.append(1)
        return bumpy(x)

    with pytest.raises(TypeError, match=r"cannot be sent to the workers.*ThreadPoolExecutor"):
        run("pso", fn, executor=pool)
    assert calls == []
    with ThreadPoolExecutor(2) as ex:  # threads share the object: no pickling
        assert_same_run(run("pso", fn), run("pso", fn, executor=Parallel(ex, chunks=3)))


def test_a_chunk_slower_than_the_timeout_ends_the_run() -> None:
    release = threading.Event()
    calls = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) > 45:  # the second generation hangs
            release.wait(60)
        return bumpy(x)

    with ThreadPoolExecutor(2) as ex:
        try:
            with pytest.raises(ExecutorError, match="timeout=1 s") as err:
                run("pso", oa.Objective(fn, vectorize=False), executor=Parallel(ex, timeout=1))
        finally:
            release.set()
    e = err.value
    assert e.result is not None
    assert e.result.nfev == e.evaluation - 1 >= 40
    assert e.result.info["worker_retries"] == 0


def test_ctrl_c_while_waiting_for_workers_keeps_the_history() -> None:
    release = threading.Event()
    calls = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 41:  # the second generation: Ctrl-C, and no chunk of it finishes
            _thread.interrupt_main()
        if len(calls) > 40:
            release.wait(60)
        return bumpy(x)

    with ThreadPoolExecutor(2) as ex:
        try:
            res = run("pso", oa.Objective(fn, vectorize=False), executor=ex)
        finally:
            release.set()
    assert res.stop_reason is oa.StopReason.INTERRUPTED
    assert res.nfev == len(res.history) == 40
    assert math.isfinite(res.fun)


def test_parallel_options_are_validated() -> None:
    with ThreadPoolExecutor(1) as ex:
        for bad, exc in [
            ({"chunks": 0}, ValueError),
            ({"chunks": 1.5}, ValueError),
            ({"retries": -1}, ValueError),
            ({"retries": 1.0}, TypeError),
            ({"timeout": 0}, ValueError),
        ]:
            with pytest.raises(exc):
                Parallel(ex, **bad)
    with pytest.raises(TypeError, match=r"concurrent\.futures\.Executor"):
        oa.minimize(bumpy, x0(), "pso", bounds=BOX, executor="local:2")


def test_row_error_survives_pickling() -> None:
    e = pickle.loads(pickle.dumps(RowError(3, np.arange(3.0))))
    assert e.index == 3
    np.testing.assert_array_equal(e.done, [0.0, 1.0, 2.0])


# -- sweeps ----------------------------------------------------------------------------------------
def test_sweep_on_the_cluster_stores_every_run_once(client, tmp_path: Path) -> None:
    spec = Spec(
        problems=(ProblemEntry("sphere", {"dim": 2}),),
        methods=(
            MethodEntry("random_search", {"batch_size": 10}),
            MethodEntry("pso", {"popsize": 8}),
        ),
        seeds=tuple(range(20)),
        budget=40,
        name="dask-sweep",
    )
    plan = spec.plan()
    assert len(plan.tasks) == 40
    with Store(tmp_path / "dask.sqlite") as st:
        report = run_plan_dask(plan, st, client, progress=False)
        assert (report.ran, report.errors, report.already_done) == (40, 0, 0)
        keys = [r["key"] for r in st.runs()]
        assert sorted(keys) == sorted(plan.keys)
        st.delete(plan.keys[::8])  # as if the sweep had been interrupted
        again = run_plan_dask(plan, st, client, progress=False)
        assert (again.ran, again.already_done) == (5, 35)
        assert sorted(r["key"] for r in st.runs()) == sorted(plan.keys)
        remote = {r["key"]: (r["fun"], r["nfev"], r["best_eval"]) for r in st.runs()}
    with Store(tmp_path / "local.sqlite") as st:
        run_plan(plan, st, progress=False)
        local = {r["key"]: (r["fun"], r["nfev"], r["best_eval"]) for r in st.runs()}
    assert remote == local


def test_local_cluster_from_its_address() -> None:
    with connect("local:1") as c:
        assert c.scheduler.address.startswith("tcp://127.0.0.1:")
        assert len(c.scheduler_info()["workers"]) == 1
    assert c.status == "closed"


def test_cluster_argument_is_checked() -> None:
    with pytest.raises(ValueError, match="N >= 1"), connect("local:0"):
        pass
    with pytest.raises(TypeError, match="scheduler address"), connect(4):
        pass


def hangs_once(marker: str):
    def fn(x: torch.Tensor) -> torch.Tensor:
        if float(x[0]) > 1.0:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return bumpy(x)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            time.sleep(300)  # an evaluation far slower than the timeout
        return bumpy(x)

    return fn


def test_a_timed_out_chunk_does_not_keep_its_dask_worker_busy(client, tmp_path: Path) -> None:
    """Dask cannot interrupt a running task: the worker still running the late chunk is
    restarted before the run ends, so the next run finds every worker free."""
    marker = tmp_path / "hung"
    run("pso", executor=Parallel(client, chunks=2))  # workers warm: torch imported
    with pytest.raises(ExecutorError, match="timeout=5 s"):
        run("pso", oa.Objective(hangs_once(str(marker)), vectorize=False),
            executor=Parallel(client, chunks=2, timeout=5))  # fmt: skip
    pid = int(marker.read_text())
    deadline = time.monotonic() + 60  # restart_workers has returned; allow for reaping
    while _alive(pid):
        assert time.monotonic() < deadline, "the worker running the late chunk still runs"
        time.sleep(0.1)
    client.wait_for_workers(2, timeout=60)
    assert_same_run(run("pso"), run("pso", executor=Parallel(client, chunks=2, timeout=60)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- dead workers (last: the cluster restarts its workers after these) ----------------------------
def dies_once(marker: str):
    def fn(x: torch.Tensor) -> torch.Tensor:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return bumpy(x)
        os.close(fd)
        os._exit(1)

    return fn


def nan_blocks(f: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of NaN values."""
    edges = np.diff(np.concatenate(([0], np.isnan(f).astype(int), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def test_worker_killed_once_is_retried_and_counted(client, tmp_path: Path) -> None:
    done = tmp_path / "already"
    done.touch()
    local = run("pso", dies_once(str(done)), budget=200)
    marker = tmp_path / "died"
    res = run(
        "pso",
        dies_once(str(marker)),
        budget=200,
        executor=Parallel(client, chunks=2, retries=2, timeout=120),
    )
    assert marker.exists()
    lost = res.info["lost_evals"]
    f = res.history.f
    assert res.info["worker_retries"] == len(nan_blocks(f)) >= 1
    assert np.isnan(f).sum() == lost >= 20
    assert res.nfev == len(res.history) == 200
    np.testing.assert_array_equal(f[~np.isnan(f)], local.history.f[: 200 - lost])
    for start, stop in nan_blocks(f):  # each lost chunk is evaluated again right after
        np.testing.assert_array_equal(
            res.history.x[start:stop], res.history.x[stop : stop + (stop - start)]
        )
    assert math.isfinite(res.fun) and res.stop_reason is oa.StopReason.MAX_EVALS


def always_dies(x: torch.Tensor) -> torch.Tensor:
    os._exit(1)


def test_worker_that_always_dies_ends_the_run_with_executor_error(client) -> None:
    with pytest.raises(ExecutorError, match="died") as err:
        run(
            "random_search",
            always_dies,
            budget=100,
            executor=Parallel(client, chunks=1, retries=1, timeout=120),
            batch_size=20,
        )
    e = err.value
    assert isinstance(e, oa.ObjectiveError)
    assert isinstance(e.__cause__, distributed.KilledWorker)
    assert e.attempts == 2
    assert "retries=1" in str(e)
    r = e.result
    assert r is not None
    assert r.stop_reason is oa.StopReason.ERROR
    assert r.info["worker_retries"] == 2
    assert r.nfev == 2 * 20 == len(r.history)  # the first batch, lost twice
    assert np.isnan(r.history.f).all()
    assert e.evaluation == r.nfev + 1


def test_process_pool_worker_death_ends_the_run() -> None:
    with ProcessPoolExecutor(1, mp_context=mp_context()) as ex, pytest.raises(ExecutorError) as err:
        run("pso", always_dies, executor=Parallel(ex, chunks=2, retries=3))
    e = err.value
    assert isinstance(e.__cause__, BrokenProcessPool)
    assert e.result is not None
    assert e.result.info["worker_retries"] == 1
    assert e.result.nfev == e.result.info["lost_evals"] == 20
    assert np.isnan(e.result.history.f).all()


def logs_and_dies_once(log: str, marker: str):
    """Appends a line to ``log`` per call; the 5th call of one chunk kills its worker process
    (once: the ``marker`` file), after logging, so that call and those before it were run."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, b".\n")
        os.close(fd)
        with open(log, "rb") as fh:
            if fh.read().count(b"\n") == 25:
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    return bumpy(x)
                os._exit(1)
        return bumpy(x)

    return fn


def test_dask_rerun_of_a_dead_workers_chunk_never_calls_the_objective_unseen(tmp_path) -> None:
    """With the scheduler's default allowed-failures, Dask reruns a task whose worker died:
    the rerun finds the attempt claimed and does not evaluate, the loss is counted and the
    chunk resubmitted, so the objective ran no more often than nfev says."""
    log, marker = tmp_path / "calls.log", tmp_path / "died"
    with local_cluster() as cluster, distributed.Client(cluster) as c:
        assert dask.config.get("distributed.scheduler.allowed-failures") >= 1
        res = run(
            "pso",
            oa.Objective(logs_and_dies_once(str(log), str(marker)), vectorize=False),
            budget=100,
            executor=Parallel(c, chunks=2, retries=2, timeout=120),
        )
        claims = c.run_on_scheduler(
            lambda dask_scheduler: list(dask_scheduler.extensions["events"]._events)
        )
    assert marker.exists()  # a worker did die mid-chunk
    calls = log.read_text().count("\n")
    assert calls <= res.nfev == 100
    assert res.info["worker_retries"] >= 1 and res.info["lost_evals"] >= 10
    assert calls >= res.nfev - res.info["lost_evals"] + 5  # the lost attempt's calls ran
    assert claims == []  # the run's claims are removed from the scheduler when it ends


@pytest.mark.parametrize("address", ["threads", "local:x", "localhost", "tcp://localhost"])
def test_a_string_that_is_no_address_is_refused_before_a_client_is_made(address: str) -> None:
    """Was distributed's "missing port number" or int() error, and a failed Client that
    stalled the interpreter's exit for 60 s."""
    from optarena.bench.dask_runner import connect

    refused = pytest.raises(ValueError, match=r"neither 'local:N' .* nor a Dask scheduler")
    with refused, connect(address):
        pass
