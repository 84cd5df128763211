"""Plot data as plain numpy arrays: computed apart from drawing, so every picture is testable.

Runs are read through :class:`Trace`, a read-only copy of a History's columns (from a Result,
a History, a mapping of columns such as a results store's rows, or hand-made arrays). Nothing
here imports matplotlib; :mod:`optarena.plot.render` draws what these functions return.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

__all__ = [
    "DEFAULT_DELTAS",
    "ConvergenceCurve",
    "EcdfCurve",
    "Grid",
    "Recorder",
    "RunPath",
    "Trace",
    "YScale",
    "as_trace",
    "convergence_data",
    "ecdf_data",
    "evaluate_points",
    "frame_indices",
    "grid_1d",
    "grid_2d",
    "group_runs",
    "quantiles",
    "run_path",
    "y_scale",
]

Axis = Literal["evals", "grad_evals", "seconds"]
AXIS_LABELS = {
    "evals": "objective evaluations",
    "grad_evals": "gradient evaluations",
    "seconds": "seconds",
}
#: Default ECDF targets: f_opt + 10^k for 51 values of k from 2 down to -8 (as COCO).
DEFAULT_DELTAS = 10.0 ** np.linspace(2.0, -8.0, 51)


# -- runs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trace:
    """The columns of one run's History (one row per objective evaluation) and its labels.

    ``x`` holds the evaluated points, shape ``(n, d)``, or is None when they were not recorded.
    """

    evals: np.ndarray
    grad_evals: np.ndarray
    seconds: np.ndarray
    f: np.ndarray
    best_f: np.ndarray
    x: np.ndarray | None = None
    method: str = ""
    seed: int | None = None

    def __post_init__(self) -> None:
        n = self.f.shape[0]
        for name in ("evals", "grad_evals", "seconds", "best_f"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"Trace.{name} has shape {getattr(self, name).shape}, not ({n},)")
        if self.x is not None and (self.x.ndim != 2 or self.x.shape[0] != n):
            raise ValueError(f"Trace.x must have shape ({n}, d), got {self.x.shape}")

    def __len__(self) -> int:
        return int(self.f.shape[0])

    @classmethod
    def from_values(
        cls,
        f: Sequence[float] | np.ndarray,
        *,
        grad_evals: Sequence[int] | np.ndarray | None = None,
        seconds: Sequence[float] | np.ndarray | None = None,
        x: np.ndarray | None = None,
        method: str = "",
        seed: int | None = None,
    ) -> Trace:
        """A Trace from raw values in evaluation order; best-so-far computed as a History does
        (NaN and inf rank as +inf). Without ``seconds`` the timing is unknown (NaN)."""
        fa = np.asarray(f, dtype=np.float64).reshape(-1)
        n = fa.shape[0]
        ranked = np.where(np.isfinite(fa), fa, np.inf)
        return cls(
            evals=np.arange(1, n + 1, dtype=np.int64),
            grad_evals=np.zeros(n, np.int64) if grad_evals is None else np.asarray(grad_evals),
            seconds=np.full(n, np.nan) if seconds is None else np.asarray(seconds, np.float64),
            f=fa,
            best_f=np.minimum.accumulate(ranked) if n else ranked,
            x=None if x is None else np.asarray(x, dtype=np.float64).reshape(n, -1),
            method=method,
            seed=seed,
        )


def as_trace(run: Any) -> Trace:
    """A Trace for a Result, a History, a Trace, or a mapping with History column names."""
    if isinstance(run, Trace):
        return run
    history = getattr(run, "history", None)
    if history is not None and hasattr(history, "best_f"):
        t = _from_columns(history, getattr(history, "has_x", False))
        return _relabel(t, str(getattr(run, "method", "")), getattr(run, "seed", None))
    if hasattr(run, "best_f") and hasattr(run, "evals"):
        return _from_columns(run, getattr(run, "has_x", False))
    if _is_columns(run):
        cols = {k: np.asarray(v) for k, v in run.items() if k in ("f", "grad_evals", "seconds")}
        t = Trace.from_values(
            cols["f"], grad_evals=cols.get("grad_evals"), seconds=cols.get("seconds")
        )
        x = run.get("x")
        return Trace(
            t.evals,
            t.grad_evals,
            t.seconds,
            t.f,
            np.asarray(run.get("best_f", t.best_f), dtype=np.float64),
            None if x is None else np.asarray(x, dtype=np.float64).reshape(len(t), -1),
            str(run.get("method", "")),
            run.get("seed"),
        )
    raise TypeError(
        "a run must be an optarena Result, a History, a plot.Trace or a mapping of History "
        "columns ('f', optionally 'grad_evals', 'seconds', 'best_f', 'x'); got "
        f"{type(run).__name__}"
    )


def _from_columns(h: Any, has_x: bool) -> Trace:
    return Trace(
        evals=np.asarray(h.evals, dtype=np.int64),
        grad_evals=np.asarray(h.grad_evals, dtype=np.int64),
        seconds=np.asarray(h.seconds, dtype=np.float64),
        f=np.asarray(h.f, dtype=np.float64),
        best_f=np.asarray(h.best_f, dtype=np.float64),
        x=np.asarray(h.x, dtype=np.float64) if has_x else None,
    )


def _relabel(t: Trace, method: str, seed: int | None) -> Trace:
    return Trace(t.evals, t.grad_evals, t.seconds, t.f, t.best_f, t.x, method, seed)


def _is_columns(obj: Any) -> bool:
    """A mapping of History columns (not a mapping of labels that happens to hold "f")."""
    if not (isinstance(obj, Mapping) and "f" in obj):
        return False
    try:
        return np.asarray(obj["f"]).dtype.kind in "fiub"
    except (TypeError, ValueError):
        return False


def _is_run(obj: Any) -> bool:
    return (
        isinstance(obj, Trace)
        or hasattr(obj, "history")
        or hasattr(obj, "best_f")
        or _is_columns(obj)
    )


def group_runs(runs: Any) -> dict[str, list[Trace]]:
    """Runs grouped by label: one run, a list of runs (grouped by method name), a mapping
    label -> run(s), or an object holding such a mapping as ``.results`` or ``.runs``."""
    if _is_run(runs):
        t = as_trace(runs)
        return {t.method or "run": [t]}
    for attr in ("results", "runs"):
        inner = getattr(runs, attr, None)
        if isinstance(inner, Mapping):
            return group_runs(inner)
    groups: dict[str, list[Trace]] = {}
    if isinstance(runs, Mapping):
        for label, value in runs.items():
            items = [value] if _is_run(value) else list(value)
            groups[str(label)] = [as_trace(r) for r in items]
    elif isinstance(runs, Iterable) and not isinstance(runs, str | bytes):
        for i, r in enumerate(runs):
            t = as_trace(r)
            groups.setdefault(t.method or f"run {i + 1}", []).append(t)
    else:
        raise TypeError(f"cannot read runs from {type(runs).__name__}")
    empty = [k for k, v in groups.items() if not v]
    if not groups or empty:
        raise ValueError(f"no runs to plot{' for ' + ', '.join(empty) if empty else ''}")
    return groups


# -- convergence --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvergenceCurve:
    """Best-so-far of one label's runs on a common x grid: median and a quantile band.

    Every column is a step function: the value at ``x[i]`` holds until ``x[i + 1]``.
    ``inf`` means no finite value had been seen yet.
    """

    label: str
    x: np.ndarray
    median: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_runs: int


def _axis_values(t: Trace, axis: Axis) -> np.ndarray:
    if axis not in AXIS_LABELS:
        raise ValueError(f"axis must be one of {sorted(AXIS_LABELS)}, got {axis!r}")
    return np.asarray(getattr(t, axis), dtype=np.float64)


def step_values(xs: np.ndarray, ys: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The right-continuous step function through ``(xs, ys)`` at ``grid``: the value of the
    last row with ``xs <= g``, ``inf`` before the first row, the last value after the end."""
    idx = np.searchsorted(xs, grid, side="right") - 1
    out = np.full(grid.shape, np.inf)
    ok = idx >= 0
    out[ok] = ys[idx[ok]]
    return out


def quantiles(values: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """Linear-interpolated quantiles over axis 0, where ``inf`` ("nothing found yet") ranks
    last and any interpolation touching it is ``inf``."""
    v = np.sort(values, axis=0)
    n = v.shape[0]
    out = []
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantiles must lie in [0, 1], got {q}")
        pos = q * (n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        w = pos - lo
        a, b = v[lo], v[hi]
        with np.errstate(invalid="ignore"):
            mid = a + w * (b - a)
        out.append(np.where((w == 0) | (a == b), a, np.where(np.isinf(b), np.inf, mid)))
    return out


def convergence_data(
    runs: Any,
    *,
    axis: Axis = "evals",
    f_opt: float | None = None,
    band: tuple[float, float] = (0.25, 0.75),
) -> list[ConvergenceCurve]:
    """Median and ``band`` quantiles of the best-so-far value of each label's runs.

    The grid is the union of the x values where some run's best-so-far changes plus each
    run's first and last x, so the step curves are exact. A finished run keeps its final
    value. With ``f_opt`` the values are ``best_f - f_opt`` (the gap to the optimum).
    """
    out = []
    for label, traces in group_runs(runs).items():
        cols = []
        for t in traces:
            if len(t) == 0:
                raise ValueError(f"a run of {label!r} has no evaluations")
            xs = _axis_values(t, axis)
            if np.isnan(xs).any():
                raise ValueError(f"a run of {label!r} has no {axis} recorded")
            if axis == "grad_evals" and xs[-1] == 0:
                raise ValueError(
                    f"a run of {label!r} has no gradient evaluations; use axis='evals'"
                )
            cols.append((xs, t.best_f))
        pts = [xs[np.r_[0, np.flatnonzero(b[1:] != b[:-1]) + 1, len(b) - 1]] for xs, b in cols]
        grid = np.unique(np.concatenate(pts))
        vals = np.stack([step_values(xs, b, grid) for xs, b in cols])
        if f_opt is not None:
            vals = vals - f_opt
        lower, median, upper = quantiles(vals, (band[0], 0.5, band[1]))
        out.append(ConvergenceCurve(label, grid, median, lower, upper, len(traces)))
    return out


@dataclass(frozen=True)
class YScale:
    """How to draw values on a log axis: ``kind`` is "log" (values clipped below at ``floor``,
    ``n_clipped`` grid values were <= floor), "symlog" (with ``linthresh``) or "linear"."""

    kind: Literal["log", "symlog", "linear"]
    floor: float | None = None
    linthresh: float | None = None
    n_clipped: int = 0


def y_scale(curves: Sequence[ConvergenceCurve], *, gap: bool, kind: str = "auto") -> YScale:
    """The y scale for ``curves``: log when every value is positive; with gaps to a known
    optimum (``gap=True``) values <= 0 are clipped to a floor a decade below the smallest
    positive one (and counted); raw values <= 0 get a symmetric log scale."""
    v = np.concatenate([np.r_[c.median, c.lower, c.upper] for c in curves])
    v = v[np.isfinite(v)]
    if kind == "linear" or v.size == 0:
        return YScale("linear")
    pos = v[v > 0]
    if kind not in ("auto", "log", "symlog"):
        raise ValueError(f"yscale must be 'auto', 'log', 'symlog' or 'linear', got {kind!r}")
    if kind == "symlog" or (kind == "auto" and not gap and pos.size < v.size):
        nz = np.abs(v[v != 0])
        top = float(nz.max()) if nz.size else 1.0
        small = float(nz.min()) if nz.size else 1.0
        lin = 10.0 ** math.floor(math.log10(max(small, top * 1e-9)))
        return YScale("symlog", linthresh=lin)
    floor = 10.0 ** (math.floor(math.log10(pos.min())) - 1) if pos.size else 1e-12
    return YScale("log", floor=floor, n_clipped=int((v <= floor).sum()))


# -- landscapes ---------------------------------------------------------------------------------
def _torch_fn(problem: Any) -> tuple[Callable[[torch.Tensor], Any], Any, torch.dtype]:
    fn = getattr(problem, "fn", problem)
    if not callable(fn):
        raise TypeError(f"expected a Problem or a function of a 1-D tensor, got {problem!r}")
    x0 = getattr(problem, "x0", None)
    dtype = x0.dtype if isinstance(x0, torch.Tensor) else torch.float64
    return fn, getattr(problem, "batched", None), dtype


def evaluate_points(problem: Any, points: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """f at each row of ``points`` (float64, NaN where not finite), using the problem's batched
    function when it has one, else ``torch.vmap``, else a loop."""
    fn, batched, dtype = _torch_fn(problem)
    pts = np.asarray(points, dtype=np.float64)
    out = np.empty(pts.shape[0])
    with torch.no_grad():
        for s in range(0, pts.shape[0], chunk):
            X = torch.as_tensor(pts[s : s + chunk]).to(dtype)
            out[s : s + chunk] = _batch_values(fn, batched, X)
    return np.where(np.isfinite(out), out, np.nan)


def _batch_values(fn: Callable, batched: Callable | None, X: torch.Tensor) -> np.ndarray:
    if batched is not None:
        return _flat(batched(X), X.shape[0])
    try:
        return _flat(torch.vmap(fn)(X), X.shape[0])
    except Exception:  # functions vmap cannot trace (data-dependent control flow, numpy)
        return np.array([float(torch.as_tensor(fn(row))) for row in X])


def _flat(v: Any, n: int) -> np.ndarray:
    arr = torch.as_tensor(v).detach().cpu().double().reshape(-1).numpy()
    if arr.shape[0] != n:
        raise ValueError(f"the function returned {arr.shape[0]} values for {n} points")
    return arr


@dataclass(frozen=True)
class Grid:
    """A function on a 1-D or 2-D grid: ``z`` has shape ``(len(x),)`` or ``(len(y), len(x))``.

    For 2-D grids ``levels`` are log-spaced contour levels of ``z - shift`` (``shift`` is 0
    when every value is positive, else just below the minimum, so log levels also work for
    functions with negative values).
    """

    x: np.ndarray
    y: np.ndarray | None
    z: np.ndarray
    shift: float = 0.0
    levels: np.ndarray | None = None


def _box(problem: Any, bounds: Any, dim: int) -> np.ndarray:
    if bounds is None:
        pb = getattr(problem, "bounds", None)
        if pb is None:
            raise ValueError("the function has no bounds: pass bounds=(lower, upper)")
        bounds = pb
    lo, hi = (np.broadcast_to(_np(b), (dim,)).astype(np.float64) for b in bounds)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < hi).all()):
        raise ValueError(f"plot bounds must be finite with lower < upper, got {lo} and {hi}")
    return np.stack([lo, hi])


def _np(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().double().numpy()
    return np.asarray(v, dtype=np.float64)


def _check_dim(problem: Any, dim: int) -> None:
    d = getattr(problem, "dim", None)
    if d is not None and d != dim:
        raise ValueError(f"{getattr(problem, 'name', 'the problem')} has {d} variables, not {dim}")


def grid_1d(problem: Any, *, bounds: Any = None, resolution: int = 400) -> Grid:
    """f on ``resolution`` evenly spaced points of a 1-D problem's interval."""
    _check_dim(problem, 1)
    box = _box(problem, bounds, 1)
    x = np.linspace(box[0, 0], box[1, 0], int(resolution))
    return Grid(x, None, evaluate_points(problem, x[:, None]))


def grid_2d(problem: Any, *, bounds: Any = None, resolution: int = 200, levels: int = 30) -> Grid:
    """f on a ``resolution`` x ``resolution`` grid with ``levels`` log-spaced contour levels."""
    _check_dim(problem, 2)
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    box = _box(problem, bounds, 2)
    x = np.linspace(box[0, 0], box[1, 0], int(resolution))
    y = np.linspace(box[0, 1], box[1, 1], int(resolution))
    X, Y = np.meshgrid(x, y)
    z = evaluate_points(problem, np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)
    finite = z[np.isfinite(z)]
    if finite.size == 0:
        raise ValueError("the function is not finite anywhere on the plotted region")
    lo, hi = float(finite.min()), float(finite.max())
    if lo > 0:
        shift, bottom = 0.0, max(lo, hi * 1e-6)
    else:  # shift so the minimum sits 1e-4 of the range above zero
        span = max(hi - lo, 1e-300)
        shift, bottom = lo - span * 1e-4, span * 1e-4
    top = max(hi - shift, bottom * 10)
    return Grid(x, y, z, shift, np.geomspace(bottom, top, int(levels)))


# -- paths --------------------------------------------------------------------------------------
class Recorder:
    """A callback for ``minimize`` that records ``nfev`` after every step or generation, so
    plots know where each generation of a population method starts and ends."""

    def __init__(self) -> None:
        self.nfev: list[int] = []

    def __call__(self, info: Any) -> None:
        self.nfev.append(int(info.nfev))


@dataclass(frozen=True)
class RunPath:
    """The path of one run through its evaluated points.

    Step ``k`` covers history rows ``starts[k]:ends[k]`` (one row for an iterate or an
    evaluation, a whole generation for population methods); ``points[k]`` is its best point,
    ``values[k]`` that point's value and ``evals[k]`` its 1-based evaluation index.
    """

    label: str
    kind: Literal["iterates", "generations", "improvements", "evaluations"]
    points: np.ndarray
    values: np.ndarray
    evals: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    all_x: np.ndarray
    all_f: np.ndarray

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def population(self, k: int) -> np.ndarray:
        """Every point evaluated in step ``k`` (a generation's whole population)."""
        return self.all_x[self.starts[k] : self.ends[k]]

    @property
    def best(self) -> tuple[np.ndarray, float]:
        """The best evaluated point of the run and its value."""
        ranked = np.where(np.isfinite(self.all_f), self.all_f, np.inf)
        i = int(np.argmin(ranked))
        return self.all_x[i], float(self.all_f[i])


def _family(method: str) -> str | None:
    from ..methods import get_method_class

    try:
        return get_method_class(method).info.family if method else None
    except ValueError:
        return None


def _generation_slices(t: Trace, generations: Any) -> np.ndarray:
    n = len(t)
    if generations is None:  # rows evaluated as one batch share one timestamp
        cuts = np.flatnonzero(np.diff(t.seconds) != 0) + 1
        ends = np.r_[cuts, n]
    else:
        ends = np.asarray(getattr(generations, "nfev", generations), dtype=np.int64).reshape(-1)
        if ends.size and (np.any(np.diff(ends) < 0) or ends[0] < 0 or ends[-1] > n):
            raise ValueError(
                f"generation ends must be non-decreasing evaluation counts within 0..{n}"
            )
        ends = np.unique(ends[ends > 0])
        if ends.size == 0 or ends[-1] < n:
            ends = np.r_[ends, n]
    return np.column_stack([np.r_[0, ends[:-1]], ends]).astype(np.int64)


def run_path(
    run: Any,
    *,
    kind: Literal["auto", "iterates", "generations", "improvements", "evaluations"] = "auto",
    generations: Any = None,
    label: str | None = None,
) -> RunPath:
    """The path of a run that recorded its points.

    ``auto`` picks: generations for population methods (or when ``generations`` is given:
    a :class:`Recorder` or the ``nfev`` after each generation; otherwise batches are found
    from their shared timestamp; an unknown method without gradients whose history has such
    batches counts as one too), iterates (points where a gradient was evaluated) for
    gradient runs, and otherwise the improvements (each evaluated point that lowered the
    best-so-far value). ``evaluations`` gives every evaluated point in order.
    """
    t = as_trace(run)
    if t.x is None:
        raise ValueError(
            "this run did not record its points; run it with minimize(..., record_x=True)"
        )
    if len(t) == 0:
        raise ValueError("this run has no evaluations")
    grad_rows = np.flatnonzero(np.diff(np.r_[0, t.grad_evals]) > 0)
    if kind == "auto":
        family = _family(t.method)
        batched = len(t) > 1 and bool(np.any(np.diff(t.seconds) == 0))
        unknown_batches = family is None and not grad_rows.size and batched
        if generations is not None or family == "population" or unknown_batches:
            kind = "generations"
        elif grad_rows.size:
            kind = "iterates"
        else:
            kind = "improvements"
    ranked = np.where(np.isfinite(t.f), t.f, np.inf)
    if kind == "generations":
        sl = _generation_slices(t, generations)
    elif kind == "iterates":
        if not grad_rows.size:
            raise ValueError("this run evaluated no gradient, so it has no iterates")
        sl = np.column_stack([grad_rows, grad_rows + 1])
    elif kind in ("evaluations", "improvements"):
        rows = np.arange(len(t))
        if kind == "improvements":
            prev = np.r_[np.inf, np.minimum.accumulate(ranked)[:-1]]
            rows = rows[(ranked < prev)] if np.isfinite(ranked).any() else rows[:1]
        sl = np.column_stack([rows, rows + 1])
    else:
        raise ValueError(
            f"kind must be auto, iterates, generations, improvements or evaluations, not {kind!r}"
        )
    pick = np.array([s + int(np.argmin(ranked[s:e])) for s, e in sl], dtype=np.int64)
    return RunPath(
        label=label if label is not None else (t.method or "run"),
        kind=kind,
        points=t.x[pick],
        values=t.f[pick],
        evals=t.evals[pick],
        starts=sl[:, 0],
        ends=sl[:, 1],
        all_x=t.x,
        all_f=t.f,
    )


def frame_indices(n_steps: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` evenly spread step indices, always with the first and last."""
    if max_frames < 2:
        raise ValueError(f"max_frames must be >= 2, got {max_frames}")
    if n_steps <= 0:
        raise ValueError("nothing to animate: the run has no steps")
    if n_steps <= max_frames:
        return np.arange(n_steps)
    return np.unique(np.round(np.linspace(0, n_steps - 1, max_frames)).astype(np.int64))


# -- ECDF ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EcdfCurve:
    """Fraction of (problem, target) pairs reached against evaluations, for one label.

    ``fraction[i]`` holds from ``evals[i]`` on (a step function, 0 before ``evals[0]``);
    ``max_evals`` is the largest number of evaluations any of the label's runs used.
    """

    label: str
    evals: np.ndarray
    fraction: np.ndarray
    max_evals: int


def ecdf_data(
    runs_by_problem: Mapping[str, Any],
    *,
    f_opt: Mapping[str, float | None] | None = None,
    targets: Mapping[str, Sequence[float]] | None = None,
    deltas: Sequence[float] = tuple(DEFAULT_DELTAS),
) -> list[EcdfCurve]:
    """Runtime ECDFs as COCO draws them, from the runs' histories.

    ``runs_by_problem`` maps a problem name to its runs (anything :func:`group_runs` reads).
    A problem's targets are ``targets[name]``, else ``f_opt[name] + deltas``, else (optimum
    unknown) the best value any run found on it plus ``deltas``. Every problem weighs the same,
    every target of a problem the same, and the runs of a label on a problem are averaged.
    """
    if not runs_by_problem:
        raise ValueError("no problems given")
    grouped = {p: group_runs(r) for p, r in runs_by_problem.items()}
    labels = list(dict.fromkeys(lab for g in grouped.values() for lab in g))
    hits: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {lab: [] for lab in labels}
    max_evals = dict.fromkeys(labels, 0)
    for prob, groups in grouped.items():
        tg = _targets(prob, groups, f_opt, targets, deltas)
        for lab in labels:
            traces = groups.get(lab, [])
            if not traces:  # a label that did not run on this problem reaches none of it
                continue
            weight = 1.0 / (len(grouped) * tg.size * len(traces))
            for t in traces:
                max_evals[lab] = max(max_evals[lab], int(t.evals[-1]) if len(t) else 0)
                idx = np.searchsorted(-t.best_f, -tg, side="left")  # first row with best <= tg
                reached = idx < len(t)
                hits[lab].append((t.evals[idx[reached]], np.full(int(reached.sum()), weight)))
    out = []
    for lab in labels:
        ev = np.concatenate([h[0] for h in hits[lab]]) if hits[lab] else np.empty(0, np.int64)
        w = np.concatenate([h[1] for h in hits[lab]]) if hits[lab] else np.empty(0)
        uniq, inv = np.unique(ev, return_inverse=True)
        frac = np.cumsum(np.bincount(inv, weights=w, minlength=uniq.size))
        out.append(EcdfCurve(lab, uniq.astype(np.int64), np.minimum(frac, 1.0), max_evals[lab]))
    return out


def _targets(
    prob: str,
    groups: Mapping[str, list[Trace]],
    f_opt: Mapping[str, float | None] | None,
    targets: Mapping[str, Sequence[float]] | None,
    deltas: Sequence[float],
) -> np.ndarray:
    if targets is not None and prob in targets:
        tg = np.asarray(targets[prob], dtype=np.float64).reshape(-1)
    else:
        ref = None if f_opt is None else f_opt.get(prob)
        if ref is None:
            bests = [float(t.best_f[-1]) for ts in groups.values() for t in ts if len(t)]
            ref = min(bests, default=math.inf)
            if not math.isfinite(ref):
                raise ValueError(f"no run found a finite value on {prob!r}: give its targets")
        tg = float(ref) + np.asarray(deltas, dtype=np.float64).reshape(-1)
    if tg.size == 0 or not np.isfinite(tg).all():
        raise ValueError(f"targets of {prob!r} must be a non-empty list of finite numbers")
    return tg
