"""The matplotlib renderers, gathered: each picture lives in its own module (:mod:`.convergence`,
:mod:`.landscape`, :mod:`.curve_1d`, :mod:`.ecdf`); this module keeps their old import path.

Each renderer draws the arrays of :mod:`optarena.plot.data` on a new figure (or on ``ax=``)
and returns the Figure, or saves it and returns the file's path when ``path=`` is given.
Figures are built without pyplot, so drawing in loops or threads leaks no global state.
"""

from __future__ import annotations

from ._draw import draw_contours
from .convergence import convergence
from .curve_1d import curve_1d
from .ecdf import ecdf
from .landscape import landscape

__all__ = ["convergence", "curve_1d", "draw_contours", "ecdf", "landscape"]
