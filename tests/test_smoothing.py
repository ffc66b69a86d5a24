"""rlpipe.smoothing: the one moving average (metrics, DVC plot series, figures), against plain Python."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from rlpipe.smoothing import centred_mean, smooth, smoothing_window, trailing_mean
from tests.helpers import REPO


def mean_of_finite(xs):
    v = [x for x in xs if math.isfinite(x)]
    return sum(v) / len(v) if v else math.nan


def same(a, b) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-12, equal_nan=True)


SERIES = [1.0, np.nan, 3.0, 5.0, np.inf, np.nan, np.nan, 2.0, -4.0, 8.0]


@pytest.mark.parametrize("window", [1, 2, 3, 4, 7, 50])
def test_trailing_mean(window):
    x = SERIES
    same(trailing_mean(np.array(x), window),
         [mean_of_finite(x[max(0, i - window + 1): i + 1]) for i in range(len(x))])


@pytest.mark.parametrize("window", [1, 2, 3, 5, 7, 51])
def test_centred_mean_cut_short_at_the_ends(window):
    x = SERIES
    h = (window - 1) // 2
    same(centred_mean(np.array(x), window),
         [mean_of_finite(x[max(0, i - h): i + h + 1]) for i in range(len(x))])


def test_centred_mean_does_not_lag_a_trend():
    x = np.arange(100.0)
    c, t = centred_mean(x, 9), trailing_mean(x, 9)
    same(c[4:-4], x[4:-4])                   # a straight line stays where it is
    same(t[8:], x[8:] - 4)                   # the trailing mean lags it by half a window
    assert trailing_mean(np.array([]), 5).shape == (0,) == centred_mean(np.array([]), 5).shape


@pytest.mark.parametrize("n, requested, expected", [
    (480, 20, 19),     # default run, per episode: the configured window (odd)
    (480, 50, 47),     # summarize.window over 480 episodes: a tenth of them at most
    (60, 20, 5),       # default run, per update: a tenth of 60
    (48, 20, 3),       # a 48-episode run
    (6, 20, 1),        # 6 updates: not smoothed
    (29, 20, 1),
    (1000, 1, 1),
])
def test_smoothing_window_fits_the_series(n, requested, expected):
    assert smoothing_window(n, requested) == expected
    y, used = smooth(np.arange(float(n)), requested)
    assert used == expected and y.shape == (n,)


def test_summarize_imports_no_plotting_or_torch():
    code = ("import sys; import rlpipe.summarize.series, rlpipe.summarize.metrics, rlpipe.smoothing;"
            "bad = [m for m in ('matplotlib', 'torch', 'rlpipe.plots') if m in sys.modules];"
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr


def test_one_moving_average_in_the_library():
    """rlpipe/smoothing.py is the only module that defines a moving average; the metrics, the
    plot series and the figures all take theirs from it."""
    import re

    defining = re.compile(r"^def (moving_average|trailing_means?|centred_mean|rolling\w*|"
                          r"window_means?|smooth)\(", re.M)
    hits = sorted(p.relative_to(REPO / "src").as_posix() for p in (REPO / "src").rglob("*.py")
                  if defining.search(p.read_text()))
    assert hits == ["rlpipe/smoothing.py"], hits
    for user in ("summarize/metrics.py", "summarize/series.py", "plots/curves.py"):
        assert "from rlpipe.smoothing import" in (REPO / "src" / "rlpipe" / user).read_text(), user
