"""Search spaces: Real, Int, Choice (conditional or not) and fixed values, as a dict.

``minimize(f, space={...}, method="cmaes")`` hands ``f`` a dict of native values; the space
is searched through one box encoding (:mod:`.encoding`), each configuration is evaluated once
per run, and the Result gives the best configuration (``result.config``) and the History as a
DataFrame with one column per parameter (``result.to_pandas()``).
"""

from __future__ import annotations

from .encoding import Encoding
from .params import Choice, Fixed, Int, Real
from .result import SpaceResult
from .space import Space

__all__ = ["Choice", "Encoding", "Fixed", "Int", "Real", "Space", "SpaceResult"]
