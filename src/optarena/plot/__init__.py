"""Pictures of runs: convergence curves, landscapes with paths, 1-D curves, animations, ECDFs.

Every x-axis counts objective evaluations (or gradient evaluations, or seconds), never
"iterations". Renderers take Results (a list, a mapping ``label -> [results]``, or an
object with such a mapping as ``.results``) and return a matplotlib Figure, or write the
picture and return its path when ``path=`` is given::

    import optarena as oa
    from optarena import plot

    problem = oa.problems.get("rosenbrock")
    runs = [oa.minimize(problem, method=m, seed=s, budget=500)
            for m in ("adam", "pso") for s in (0, 1)]
    plot.convergence(runs, problem=problem, path="optarena-demo/optimizers.png")
    plot.animate(problem, runs[2], path="optarena-demo/pso.gif")  # or .html

Each picture is one module (convergence, landscape, curve_1d, ecdf, ecdf_groups (COCO's
per-group ECDF of bbob runs), animate, report). The
arrays behind each picture come from the data functions (``convergence_data``,
``grid_2d``, ``run_path``, ``ecdf_data``, ...), which import no matplotlib and can be tested
or drawn with another library. ``write_report(store_path, out_dir)`` turns a results store
(:mod:`optarena.bench`) into one self-contained HTML page: a table of every run and the
convergence, landscape and ECDF pictures, and a section per hyperparameter study.

A study's pictures take its trials table (``optarena.study.trials_frame(store)``, or
``result_trials(minimize(f, space=...))``): ``study_history`` (value over trials, best so
far), ``study_slices`` (value against each parameter), ``study_parallel`` (parallel
coordinates) and ``study_importance`` (``param_importance``: the share of the objective's
variation each parameter explains alone)::

    frame = plot.result_trials(oa.minimize(train, space=space, method="random_search"))
    plot.study_slices(frame, path="slices.png")
"""

from __future__ import annotations

from .animate import animate
from .convergence import convergence
from .curve_1d import curve_1d
from .data import (
    DEFAULT_DELTAS,
    ConvergenceCurve,
    EcdfCurve,
    Grid,
    Recorder,
    RunPath,
    Trace,
    YScale,
    as_trace,
    convergence_data,
    ecdf_data,
    evaluate_points,
    frame_indices,
    grid_1d,
    grid_2d,
    group_ecdf_data,
    group_runs,
    quantiles,
    run_path,
    y_scale,
)
from .data.study import (
    ParamColumn,
    StudyTrials,
    param_importance,
    result_trials,
    store_trials,
    study_trials,
)
from .ecdf import ecdf
from .ecdf_groups import ecdf_groups
from .landscape import landscape
from .report import write_report
from .study import study_history, study_importance, study_slices
from .study_parallel import study_parallel

__all__ = [
    "DEFAULT_DELTAS",
    "ConvergenceCurve",
    "EcdfCurve",
    "Grid",
    "ParamColumn",
    "Recorder",
    "RunPath",
    "StudyTrials",
    "Trace",
    "YScale",
    "animate",
    "as_trace",
    "convergence",
    "convergence_data",
    "curve_1d",
    "ecdf",
    "ecdf_data",
    "ecdf_groups",
    "evaluate_points",
    "frame_indices",
    "grid_1d",
    "grid_2d",
    "group_ecdf_data",
    "group_runs",
    "landscape",
    "param_importance",
    "quantiles",
    "result_trials",
    "run_path",
    "store_trials",
    "study_history",
    "study_importance",
    "study_parallel",
    "study_slices",
    "study_trials",
    "write_report",
    "y_scale",
]
