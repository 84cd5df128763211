"""History columns against a row-by-row reference, whatever mix of single rows and blocks."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optarena.result import History

VALUES = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
ROW = st.tuples(VALUES, st.booleans())  # (f, feasible)
# a run: a list of appends, each a single row (list of one, single=True) or a block
APPENDS = st.lists(st.tuples(st.booleans(), st.lists(ROW, min_size=1, max_size=6)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(APPENDS, st.booleans())
def test_columns_match_a_row_by_row_reference(appends: list, constrained: bool) -> None:
    h = History(dim=2, record_x=True, constrained=constrained)
    rows = []  # (f, grad_evals, seconds, feasible, x)
    for step, (single, block) in enumerate(appends):
        if single:
            block = block[:1]
        xs = np.arange(2 * len(block), dtype=np.float64).reshape(-1, 2) + 100 * step
        for j, (f, ok) in enumerate(block):
            rows.append((f, step, 0.5 * step, ok or not constrained, xs[j]))
        if single:
            f, ok = block[0]
            h._append_one(f, step, 0.5 * step, xs[0], 0.0 if ok else 1.0, ok or not constrained)
        else:
            f = np.array([r[0] for r in block])
            viol = np.array([0.0 if ok else 1.0 for _, ok in block]) if constrained else None
            feas = np.array([ok for _, ok in block]) if constrained else None
            h._append_block(f, step, 0.5 * step, xs, viol, feas)
    assert len(h) == len(rows)
    best, expected = math.inf, []
    for f, _, _, ok, _ in rows:
        if ok and math.isfinite(f):
            best = min(best, f)
        expected.append(best)
    np.testing.assert_array_equal(h.evals, np.arange(1, len(rows) + 1))
    np.testing.assert_array_equal(h.f, [r[0] for r in rows])
    np.testing.assert_array_equal(h.best_f, expected)
    np.testing.assert_array_equal(h.grad_evals, [r[1] for r in rows])
    np.testing.assert_array_equal(h.seconds, [r[2] for r in rows])
    if rows:
        np.testing.assert_array_equal(h.x, np.stack([r[4] for r in rows]))
    if constrained:
        np.testing.assert_array_equal(h.violation, [0.0 if r[3] else 1.0 for r in rows])


def test_columns_are_read_only_and_follow_appends() -> None:
    h = History(dim=1, record_x=False)
    h._append_block(np.array([3.0, 1.0]), 0, 0.1, None)
    first = h.best_f
    assert not first.flags.writeable
    h._append_one(0.5, 0, 0.2, None)
    np.testing.assert_array_equal(h.best_f, [3.0, 1.0, 0.5])
    np.testing.assert_array_equal(first, [3.0, 1.0])  # an earlier read is not changed
