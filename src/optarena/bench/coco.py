"""COCO-format output of bbob runs, through cocoex's own observer, so cocopp reads them.

How a run gets into COCO's format, and why this way:

- The store keeps every counted evaluation's value, in order, but not the evaluated points,
  and cocoex's observer logs a point only by evaluating it. So the process that evaluates
  (this one, a pool worker or a Dask worker) writes each point it hands to cocoex, with the
  value returned, to ``FOLDER/.points/KEY.f64``, one float64 row ``(x, f)`` per point and
  every point of a batch in order (:class:`PointLog`, installed by ``Task.build_problem``).
  A rerun of a killed run truncates its file.
- After the sweep the parent (the store's only writer) rebuilds ``FOLDER/LABEL/`` for every
  method label from the stored runs, in plan order (:func:`write_coco`): it checks that a
  run's points file holds exactly the run's counted evaluations (as many rows as ``nfev``,
  the same values as the stored History, in order), then replays the points through a
  cocoex problem observed by ``cocoex.Observer("bbob", ...)``, checking each value again.

The log therefore holds exactly the evaluations optarena counted, in its order, whatever ran
them; a killed or resumed sweep never logs a run twice or half (only stored runs are
logged, and the folder is rebuilt from scratch); the files are cocoex's own. Worker
processes on another machine need ``FOLDER`` on a shared file system. The points take
8 (d + 1) bytes per evaluation (about 0.5 GB per method for the whole d = 2 ... 20
protocol): keep ``FOLDER/.points`` to rebuild the folders after more runs, delete it once
the last export is written.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..problems import Problem
from ..problems.bbob import BBOBFunction

__all__ = [
    "COCO_DIMS",
    "CocoError",
    "CocoReport",
    "PointLog",
    "check_dim",
    "close_log",
    "log_points",
    "points_path",
    "read_points",
    "recording",
    "write_coco",
]

#: The dimensions cocoex's observed bbob suite offers (other dims have no COCO format).
COCO_DIMS = (2, 3, 5, 10, 20, 40)
_MARK = ".optarena-coco"  # a result folder this module wrote (and may rebuild)


class CocoError(RuntimeError):
    """COCO output cannot be written as asked; the message says why and what to do."""


def check_dim(dim: int, where: str = "bbob problem") -> None:
    """Refuse a dimension cocoex's observed suite does not have (before any run)."""
    if dim not in COCO_DIMS:
        raise CocoError(
            f"{where}: COCO output exists for d in {list(COCO_DIMS)} only (cocoex's bbob "
            f"suite), got d = {dim}; drop coco_output or choose one of those dimensions"
        )


def points_path(folder: str | Path, key: str) -> Path:
    """Where the evaluating process writes the points of run ``key``."""
    return Path(folder) / ".points" / f"{key}.f64"


# -- the evaluating side --------------------------------------------------------------------
_open: dict[str, Any] = {"path": None, "fd": None}  # one log open per process at a time


def _fd(path: str, fresh: bool) -> int:
    """The descriptor of ``path`` (``fresh``: emptied first, a run starting again); opening
    it closes the previous run's, so a long sweep never leaks descriptors."""
    if fresh or _open["path"] != path:
        if _open["fd"] is not None:
            os.close(_open["fd"])
            _open.update(path=None, fd=None)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0)
        _open.update(path=path, fd=os.open(path, flags, 0o644))
    return int(_open["fd"])


def close_log() -> None:
    """Close this process's open points file, if any."""
    if _open["fd"] is not None:
        os.close(_open["fd"])
    _open.update(path=None, fd=None)


class PointLog:
    """A bbob function that also writes every point it evaluates, with its value, to ``path``.

    Unbuffered writes (one per call or batch), so the file is complete the moment the run
    ends; the file is truncated at the run's first evaluation.
    """

    def __init__(self, fn: BBOBFunction, path: str | Path) -> None:
        self.fn, self.path = fn, str(path)
        self._started = False

    def _write(self, data: bytes) -> None:
        fd = _fd(self.path, fresh=not self._started)
        self._started = True
        os.write(fd, data)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fn(x)
        self._write(BBOBFunction._as_array(x).tobytes() + struct.pack("=d", float(y)))
        return y

    def batched(self, X: torch.Tensor) -> torch.Tensor:
        """Values of the rows of ``X``; every row is written, in order."""
        y = self.fn.batched(X)
        if X.shape[0]:
            rows = BBOBFunction._as_array(X).reshape(-1, self.fn.dim)
            vals = y.detach().to("cpu", torch.float64).numpy().reshape(-1, 1)
            self._write(np.hstack([rows, vals]).tobytes())
        return y


def recording(problem: Problem, folder: str | Path, key: str) -> Problem:
    """``problem`` (a bbob problem) with its evaluations written for COCO output of run ``key``."""
    if not isinstance(problem.fn, BBOBFunction):
        raise CocoError(f"COCO output is for bbob problems, not {problem.name!r}")
    check_dim(problem.fn.dim)
    log = PointLog(problem.fn, points_path(folder, key))
    return replace(problem, fn=log, batched=log.batched)


def read_points(path: Path, dim: int) -> np.ndarray:
    """The rows ``(x, f)`` of a points file, shape ``(n, dim + 1)``."""
    raw = np.fromfile(path, dtype=np.float64)
    if raw.size % (dim + 1):
        raise CocoError(f"{path} is cut short (not whole rows of {dim + 1} numbers)")
    return raw.reshape(-1, dim + 1)


# -- the logging side -----------------------------------------------------------------------
@dataclass
class CocoReport:
    """What :func:`write_coco` wrote: one COCO result folder per algorithm (method label)."""

    folder: Path
    algorithms: dict[str, Path] = field(default_factory=dict)
    runs: int = 0
    evaluations: int = 0
    missing: list[str] = field(default_factory=list)  # stored runs without their points

    def __str__(self) -> str:
        text = (
            f"COCO output: {self.runs} runs, {self.evaluations} evaluations in "
            f"{len(self.algorithms)} folder(s) under {self.folder} (cocopp reads each)"
        )
        if self.missing:
            text += f"; {len(self.missing)} stored run(s) have no points file: {self.missing[0]}"
        return text


class _Observed:
    """One cocoex observer (one result folder) and the suites it takes problems from."""

    def __init__(self, folder: Path, algorithm: str) -> None:
        import cocoex  # the optional dependency

        target = folder / algorithm
        if target.exists():
            if not (target / _MARK).exists() and any(target.iterdir()):
                raise CocoError(f"{target} exists and was not written by optarena; move it")
            shutil.rmtree(target)
        folder.mkdir(parents=True, exist_ok=True)
        cocoex.log_level("warning")
        self.observer = cocoex.Observer(
            "bbob",
            f"outer_folder: {folder} result_folder: {algorithm} algorithm_name: {algorithm}",
        )
        if Path(self.observer.result_folder).resolve() != target.resolve():
            raise CocoError(f"cocoex chose {self.observer.result_folder} instead of {target}")
        (target / _MARK).write_text("written by optarena; rebuilt on every export\n")
        self.path = target

    def log(self, function: int, instance: int, dim: int, rows: np.ndarray, what: str) -> None:
        """Replay ``rows`` (x, f) through the observed problem, each value checked."""
        import cocoex

        check_dim(dim)
        # the suite must outlive its problem: the problem's log names it
        suite = cocoex.Suite(
            "bbob", f"instances: {instance}", f"dimensions: {dim} function_indices: {function}"
        )
        p = suite.get_problem_by_function_dimension_instance(function, dim, instance)
        p.observe_with(self.observer)
        try:
            for i, row in enumerate(rows):
                got = p(row[:dim])
                want = row[dim]
                if not (got == want or (np.isnan(got) and np.isnan(want))):
                    raise CocoError(
                        f"{what}: evaluation {i + 1} is {want!r} in the run but cocoex gives "
                        f"{got!r} for the same point (not the same bbob function?)"
                    )
        finally:
            p.free()
            del suite

    def close(self) -> None:
        self.observer = None  # cocoex's Observer.free() fails; its problems wrote the files


def log_points(
    runs: Iterable[tuple[str, Mapping[str, Any], np.ndarray]], folder: str | Path
) -> CocoReport:
    """Write COCO folders from in-memory runs: ``(algorithm, bbob params, rows (x, f))``."""
    report = CocoReport(Path(folder))
    observers: dict[str, _Observed] = {}
    try:
        for algorithm, params, rows in runs:
            obs = observers.get(algorithm)
            if obs is None:
                obs = observers[algorithm] = _Observed(report.folder, algorithm)
                report.algorithms[algorithm] = obs.path
            f, i, d = int(params["function"]), int(params["instance"]), int(params["dim"])
            obs.log(f, i, d, rows, f"{algorithm} on bbob f{f} i{i} d{d}")
            report.runs += 1
            report.evaluations += len(rows)
    finally:
        for obs in observers.values():
            obs.close()
    return report


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def write_coco(store: Any, tasks: Sequence[Any], folder: str | Path) -> CocoReport:
    """Rebuild the COCO folders under ``folder`` from the stored runs of ``tasks`` (bbob ones),
    in plan order; a run's points must be exactly its counted evaluations (checked)."""
    folder = Path(folder)
    close_log()  # a serial sweep's last run wrote from this process
    stored = {r["key"]: r for r in store.selected_runs([t.key for t in tasks])}
    missing: list[str] = []

    def runs() -> Iterable[tuple[str, Mapping[str, Any], np.ndarray]]:
        for t in tasks:
            r = stored.get(t.key)
            if t.problem != "bbob" or r is None or r["nfev"] == 0:
                continue
            what = f"{t.label} on bbob {dict(t.params)} (seed {t.seed})"
            path = points_path(folder, t.key)
            if not path.exists():
                missing.append(f"{what}: no {path}")
                continue
            rows = read_points(path, int(t.params["dim"]))
            f = store.history(r["run_id"])["f"]
            if len(rows) != r["nfev"] or not _same(rows[:, -1], f):
                raise CocoError(
                    f"{what}: {path} holds {len(rows)} evaluations, the store counts "
                    f"{r['nfev']} (or the values differ): the file is not this stored run's; "
                    "run the spec into a fresh store and COCO folder"
                )
            yield t.label, t.params, rows

    report = log_points(runs(), folder)
    report.missing = missing
    return report
