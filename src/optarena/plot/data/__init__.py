"""Plot data as plain numpy arrays: computed apart from drawing, so every picture is testable.

One module per kind of data: :mod:`.runs` (a run's History as a :class:`Trace`),
:mod:`.convergence`, :mod:`.grid` (landscapes and curves), :mod:`.path` (iterates,
generations, animation frames) and :mod:`.ecdf`. Nothing here imports matplotlib; the picture
modules of :mod:`optarena.plot` draw what these functions return.
"""

from __future__ import annotations

from .convergence import (
    ConvergenceCurve,
    YScale,
    convergence_data,
    highlighted,
    quantiles,
    step_values,
    y_scale,
)
from .ecdf import DEFAULT_DELTAS, EcdfCurve, ecdf_data
from .ecdf_groups import group_ecdf_data
from .grid import Grid, evaluate_points, grid_1d, grid_2d
from .path import Recorder, RunPath, frame_indices, run_path
from .runs import AXIS_LABELS, Axis, Trace, as_trace, group_runs

__all__ = [
    "AXIS_LABELS",
    "DEFAULT_DELTAS",
    "Axis",
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
    "group_ecdf_data",
    "group_runs",
    "highlighted",
    "quantiles",
    "run_path",
    "step_values",
    "y_scale",
]
