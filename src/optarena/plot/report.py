"""A static HTML report of a results store: the table of every run, and its pictures.

The page is one self-contained file (images embedded as base64 PNG, inline style, no script,
font or stylesheet from elsewhere), so it opens from disk, in an e-mail or an archive.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..bench.targets import ecdf_targets
from ._draw import colors
from .convergence import convergence
from .data import Trace, as_trace
from .ecdf import ecdf
from .landscape import landscape

__all__ = ["write_report"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
h1, h2 { font-weight: 600; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.text { text-align: left; } tr.error td { background: #fde8e8; }
td.text:last-child { max-width: 40em; white-space: pre-wrap; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; max-width: 640px; }
img { max-width: 100%; height: auto; }
.note { color: #555; font-size: 0.9em; }
"""

_COLUMNS = (
    ("run_id", "run"),
    ("problem", "problem"),
    ("label", "method"),
    ("seed", "seed"),
    ("status", "status"),
    ("fun", "best f"),
    ("gap", "f - f_opt"),
    ("nfev", "evaluations"),
    ("ngev", "gradient evals"),
    ("elapsed", "seconds"),
    ("stop_reason", "stop reason"),
    ("message", "error"),  # what went wrong, for failed runs only
)


def _png(fig: Figure, dpi: float = 90) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(fig: Figure, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{_png(fig)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "inf" if math.isinf(v) else ("" if math.isnan(v) else f"{v:.6g}")
    return str(v)


def _problem_key(run: Mapping[str, Any]) -> str:
    params = json.loads(run["problem_params"] or "{}")
    if not params:
        return str(run["problem"])
    inner = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{run['problem']}({inner})"


def _table(runs: Iterable[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in _COLUMNS)
    rows = []
    for r in runs:
        cells = []
        for col, _ in _COLUMNS:
            if col == "gap":
                fun, f_opt = r["fun"], r["f_opt"]
                v = None if fun is None or f_opt is None else fun - f_opt
            elif col == "problem":
                v = _problem_key(r)
            elif col == "message":
                v = r["message"] if r["status"] != "ok" else ""
            else:
                v = r[col]
            cls = ' class="text"' if isinstance(v, str) else ""
            cells.append(f"<td{cls}>{html.escape(_num(v))}</td>")
        cls = ' class="error"' if r["status"] != "ok" else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f'<table id="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _problem_object(run: Mapping[str, Any]) -> Any:
    """The Problem a stored run used, rebuilt from its name and parameters (None if unknown)."""
    from ..bench.spec import decode_params
    from ..problems import get

    try:
        return get(run["problem"], **decode_params(json.loads(run["problem_params"] or "{}")))
    except (ValueError, TypeError):
        return None


def _landscape(problem: Any, runs: list[Mapping[str, Any]]) -> Figure:
    fig = landscape(problem, resolution=120, title=f"{problem.name}: best point of each run")
    ax = fig.axes[0]
    labels = list(dict.fromkeys(r["label"] for r in runs))
    for label, color in zip(labels, colors(len(labels)), strict=True):
        pts = [json.loads(r["x"]) for r in runs if r["label"] == label and r["x"]]
        if pts:
            xy = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
            ax.scatter(
                xy[:, 0],
                xy[:, 1],
                marker="X",
                s=60,
                color=color,
                edgecolors="k",
                label=f"{label} ({len(pts)})",
                zorder=5,
            )
    ax.legend(fontsize=8, loc="best")
    return fig


def _problem_section(key: str, runs: list[Mapping[str, Any]], traces: list[Trace]) -> str:
    parts = [f"<h2>{html.escape(key)}</h2>"]
    with_history = {}
    for r, t in zip(runs, traces, strict=True):
        if len(t):
            with_history.setdefault(r["label"], []).append(t)
    f_opt = next((r["f_opt"] for r in runs if r["f_opt"] is not None), None)
    if with_history:
        fig = convergence(with_history, f_opt=f_opt, title=key)
        what = "best f - f_opt" if f_opt is not None else "best f"
        parts.append(
            _figure(fig, f"{what} against objective evaluations; median and quartiles over seeds")
        )
    else:
        parts.append('<p class="note">No run of this problem has a stored history.</p>')
    dims = {len(json.loads(r["x"])) for r in runs if r["x"]}
    if dims == {2}:
        problem = _problem_object(runs[0])
        if problem is not None and problem.dim == 2:
            parts.append(_figure(_landscape(problem, runs), "landscape (log-spaced levels)"))
        else:
            parts.append('<p class="note">Landscape: the problem cannot be rebuilt here.</p>')
    return "\n".join(parts)


def write_report(
    store_path: str | Path, out_dir: str | Path, *, title: str = "optarena results"
) -> Path:
    """Write ``out_dir/index.html`` for the results store at ``store_path``; returns its path.

    The page holds a table of every stored run (with the error message of failed ones), a
    convergence picture per problem, a
    landscape with the runs' best points for 2-D problems and the runtime ECDF over all
    problems (targets ``f_opt + 10^k`` where the optimum is known); a store holding studies
    (a ``trials`` table) gets a subsection per study with its pictures and best trials.
    """
    from ..bench.store import Store

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with Store(store_path, create=False) as store:
        runs = store.runs()
        traces = [
            as_trace({**store.history(r["run_id"]), "method": r["label"], "seed": r["seed"]})
            for r in runs
        ]
        bbob = _bbob_section(store)
        studies = _study_section(store)
    by_problem: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        by_problem.setdefault(_problem_key(r), []).append(i)
    order = sorted(range(len(runs)), key=lambda i: (_problem_key(runs[i]), _sort_value(runs[i])))
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">Store {html.escape(Path(store_path).name)}: {len(runs)} run(s) on '
        f"{len(by_problem)} problem(s). Written {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC. "
        "Every x-axis counts objective evaluations.</p>",
        "<h2>Runs</h2>",
        _table(runs[i] for i in order) if runs else '<p class="note">The store holds no runs.</p>',
    ]
    for key, idx in by_problem.items():
        body.append(_problem_section(key, [runs[i] for i in idx], [traces[i] for i in idx]))
    ecdf_runs: dict[str, dict[str, list[Trace]]] = {}
    f_opts: dict[str, float | None] = {}
    for key, idx in by_problem.items():
        f_opts[key] = next((runs[i]["f_opt"] for i in idx if runs[i]["f_opt"] is not None), None)
        bests = (float(traces[i].best_f[-1]) for i in idx if len(traces[i]))
        if ecdf_targets(f_opts[key], bests) is None:
            continue  # no target can be set: nothing finite was found and the optimum is unknown
        for i in idx:  # runs that found nothing finite stay in: they reach no target
            ecdf_runs.setdefault(key, {}).setdefault(runs[i]["label"], []).append(traces[i])
    body.append(bbob)
    body.append(studies)
    if ecdf_runs:
        body.append("<h2>Runtime ECDF</h2>")
        fig = ecdf(ecdf_runs, f_opt=f_opts)
        body.append(
            _figure(
                fig,
                "fraction of (problem, target) pairs reached; targets f_opt + 10^k, "
                "k = 2 ... -8 (best value found where f_opt is unknown); x marks the budget",
            )
        )
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _bbob_section(store: Any) -> str:
    """COCO's view of the bbob runs: solved fraction per function group and dimension, and
    the per-group runtime ECDFs (empty without bbob runs)."""
    from ..bench.groups import ALL, COCO_TARGETS, bbob_runs, solved
    from ..problems.bbob import GROUPS
    from .ecdf_groups import ecdf_groups

    runs = bbob_runs(store)
    if not runs:
        return ""
    counts = solved(runs)
    groups = [*GROUPS, ALL]
    head = "".join(f"<th>{html.escape(t)}</th>" for t in ["method", "d", *groups])
    rows = []
    for d in sorted({r.dim for r in runs}):
        for lab in dict.fromkeys(r.label for r in runs):
            if (lab, d, ALL) not in counts:
                continue
            cells = [f'<td class="text">{html.escape(lab)}</td>', f"<td>{d}</td>"]
            for g in groups:
                hit, n = counts.get((lab, d, g), (0, 0))
                cells.append(f"<td>{hit / n:.3f}</td>" if n else "<td>-</td>")
            rows.append(f"<tr>{''.join(cells)}</tr>")
    targets = ", ".join(f"{t:g}" for t in COCO_TARGETS)
    return "\n".join(
        [
            "<h2>bbob: COCO function groups</h2>",
            f'<p class="note">Solved fraction: the share of (run, target) pairs reached within '
            f"the budget, targets {targets} on f - f_opt.</p>",
            f'<table id="bbob-groups"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>",
            _figure(
                ecdf_groups(runs),  # type: ignore[arg-type]
                "runtime ECDF per function group: fraction of (run, target) pairs reached "
                "against evaluations / d, COCO's 51 targets 1e2 ... 1e-8; x marks the budget",
            ),
        ]
    )


#: Rows of the table of best trials in each study's subsection.
BEST_TRIALS = 10


def _study_section(store: Any) -> str:
    """One subsection per study of the store's ``trials`` table (empty without one): value
    over trials, slices, parallel coordinates, parameter importance, the best trials."""
    from .data.study import store_trials

    studies = store_trials(store)
    if not studies:
        return ""
    parts = ["<h2>Studies</h2>"]
    for name, (cols, info) in studies.items():
        parts.append(_study_block(name, cols, info))
    return "\n".join(parts)


def _study_block(name: str, cols: dict[str, list[Any]], info: Mapping[str, Any]) -> str:
    from ..space import Space
    from .data.study import study_trials
    from .study import study_history, study_importance, study_slices
    from .study_parallel import study_parallel

    try:
        space = Space.from_json(info["space"]) if info.get("space") else None
    except (ValueError, TypeError, KeyError):  # a space this version cannot read: no log axes
        space = None
    t = study_trials(cols, study=name, space=space)
    c = t.counts()
    how = f"method {info['method']}, " if info.get("method") else ""
    parts = [
        f"<h3>{html.escape(name)}</h3>",
        f'<p class="note">{html.escape(how)}{len(t)} trial(s): {c["complete"]} complete, '
        f"{c['pruned']} pruned, {c['failed']} failed.</p>",
    ]
    ok = np.flatnonzero(t.complete)
    if ok.size == 0:
        parts.append('<p class="note">No complete trial with a finite value yet.</p>')
        return "\n".join(parts)
    parts.append(_figure(study_history(t), "value of each complete trial and the best so far"))
    if t.params:
        parts.append(_figure(study_slices(t), "value against each parameter, colour: trial"))
        parts.append(_figure(study_parallel(t), "parallel coordinates, colour: value"))
    if ok.size >= 3 and t.params:
        parts.append(
            _figure(
                study_importance(t),
                "share of the variation of the objective's rank each parameter explains "
                "alone (binned epsilon-squared; main effects only, noisy with few trials)",
            )
        )
    best = ok[np.argsort(t.value[ok], kind="stable")][:BEST_TRIALS]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["trial", "value", "seconds", *t.params])
    seconds = cols.get("seconds") or [None] * len(t)
    pos = {int(n): i for i, n in enumerate(cols["number"])}
    rows = []
    for i in best:
        num = int(t.number[i])
        cells = [f"<td>{num}</td>", f"<td>{_num(float(t.value[i]))}</td>"]
        cells.append(f"<td>{_num(seconds[pos[num]])}</td>")
        for col in t.params.values():
            v = col.values[i]
            if col.kind == "choice":
                text = str(col.categories[int(v)]) if v >= 0 else ""
            else:
                text = "" if np.isnan(v) else (f"{v:.0f}" if col.kind == "int" else f"{v:.6g}")
            cls = ' class="text"' if col.kind == "choice" else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    parts.append(
        f'<table class="study-best"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return "\n".join(parts)


def _sort_value(run: Mapping[str, Any]) -> tuple[int, float, int]:
    fun = run["fun"]
    bad = fun is None or run["status"] != "ok"
    return (int(bad), math.inf if fun is None else float(fun), int(run["run_id"]))
