"""Action logging for every action space: steps.csv cells and actions.csv histograms."""
from __future__ import annotations

import numpy as np

from rlpipe.action_log import BOX_BINS, ActionLayout, action_cells, histogram_rows

BOX = ActionLayout("box", low=(-2.0, 0.0), high=(2.0, 1.0))


def test_discrete_action_is_the_cell_and_has_no_histogram():
    layout = ActionLayout("discrete", nvec=(3,))
    cells, extra = action_cells(layout, np.array([2, 0, 1]))
    assert cells == [2, 0, 1] and extra == [[], [], []]
    assert histogram_rows(layout, 1, np.array([2, 0])) == [] and not layout.has_histograms


def test_multi_discrete_cell_is_the_flat_index_and_counts_are_per_component():
    layout = ActionLayout("multi_discrete", nvec=(3, 4), start=(0, 1))
    acts = np.array([[2, 3], [0, 0], [2, 1]])
    cells, _ = action_cells(layout, acts)
    assert cells == [2 * 4 + 3, 0, 2 * 4 + 1]
    rows = histogram_rows(layout, 7, acts)
    # (episode, dimension, bin, low, high, count); component 1 logs start + value
    assert rows == [(7, 0, 0, 0.0, 0.0, 1), (7, 0, 2, 2.0, 2.0, 2),
                    (7, 1, 0, 1.0, 1.0, 1), (7, 1, 1, 2.0, 2.0, 1), (7, 1, 3, 4.0, 4.0, 1)]


def test_box_cells_are_summaries_of_the_clipped_action_never_the_vector():
    acts = np.array([[3.0, 0.5], [-1.0, -4.0]], np.float32)
    cells, extra = action_cells(BOX, acts)
    assert cells == [None, None]
    # clipped to [2.0, 0.5] and [-1.0, 0.0]
    np.testing.assert_allclose(extra, [[1.25, np.hypot(2.0, 0.5)], [-0.5, 1.0]])
    assert BOX.step_columns == ("Action Mean", "Action Norm")


def test_box_histograms_cover_the_bounds_and_count_every_step():
    rng = np.random.default_rng(0)
    acts = rng.normal(0, 3, size=(500, 2))
    rows = histogram_rows(BOX, 3, acts)
    for d in (0, 1):
        mine = [r for r in rows if r[1] == d]
        assert sum(r[5] for r in mine) == 500
        assert all(0 <= r[2] < BOX_BINS for r in mine)
    # clipped values pile up in the edge bins: dimension 1 is [0, 1]
    low_edge = [r for r in rows if r[1] == 1 and r[2] == 0][0]
    assert low_edge[3] == 0.0 and low_edge[4] == 0.05 and low_edge[5] >= 240


def test_unbounded_box_dimensions_use_a_fixed_range():
    layout = ActionLayout("box", low=(-np.inf,), high=(np.inf,))
    rows = histogram_rows(layout, 1, np.array([[-100.0], [0.1], [100.0]]))
    assert [r[2] for r in rows] == [0, 10, BOX_BINS - 1]
    assert rows[0][3] == -5.0 and rows[-1][4] == 5.0
