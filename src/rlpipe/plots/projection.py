"""2-D projections of embeddings: PCA (NumPy) and t-SNE (scikit-learn) on a seeded subsample.

Pure functions of arrays; imports neither matplotlib nor anything heavy at import time, so that the
stage can run t-SNE in a separate process (see :mod:`rlpipe.plots.stage`) cheaply.
"""
from __future__ import annotations

import numpy as np

from rlpipe.plots import FigureUnavailable

SEED = 0  # t-SNE subsample and optimisation seed (fixed: a figure must not change by itself)


def pca_2d(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project ``X`` [n, D] on its first two principal components: ([n, 2], explained-variance ratio [2]).

    Deterministic: each component's sign makes its largest-magnitude loading positive. Missing
    components (D = 1, or n = 1) are zeros with ratio 0.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"pca_2d expects a non-empty [n, D] array, got {X.shape}")
    Xc = X - X.mean(axis=0)
    cov = Xc.T @ Xc
    evals, evecs = np.linalg.eigh(cov)  # ascending
    evals, evecs = evals[::-1], evecs[:, ::-1]
    k = min(2, X.shape[1])
    comps = evecs[:, :k]
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(k)])
    signs[signs == 0] = 1.0
    comps = comps * signs
    Y = np.zeros((X.shape[0], 2))
    Y[:, :k] = Xc @ comps
    total = float(np.clip(evals, 0, None).sum())
    ratio = np.zeros(2)
    if total > 0:
        ratio[:k] = np.clip(evals[:k], 0, None) / total
    return Y, ratio


def subsample_indices(n: int, k: int, seed: int = SEED, keep: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of at most ``k`` of ``n`` rows, chosen at random with ``seed``.

    Rows flagged in ``keep`` (bool [n]) are taken first (up to ``k``), so that rare points such as
    the chosen nodes survive the subsample.
    """
    if n <= k:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if keep is not None and keep.any():
        kept = np.flatnonzero(keep)
        if kept.size >= k:
            return np.sort(rng.choice(kept, size=k, replace=False))
        rest = np.flatnonzero(~keep)
        extra = rng.choice(rest, size=k - kept.size, replace=False)
        return np.sort(np.concatenate((kept, extra)))
    return np.sort(rng.choice(n, size=k, replace=False))


def tsne_perplexity(requested: float, n: int) -> float:
    """``min(requested, (n - 1) / 3)``: sklearn needs perplexity < n; 3·perplexity neighbours."""
    return float(min(requested, (n - 1) / 3.0))


MIN_TSNE_POINTS = 5


def tsne_backend() -> str:
    """``"openTSNE"`` when it is installed (about 2x faster than scikit-learn here, see
    bench/bench_visualize.py), else ``"scikit-learn"``."""
    import importlib.util

    try:
        found = importlib.util.find_spec("openTSNE") is not None
    except (ImportError, ValueError):
        found = False
    return "openTSNE" if found else "scikit-learn"


def tsne_fit(X: np.ndarray, perplexity: float, seed: int = SEED, threads: int | None = 1,
             backend: str | None = None) -> np.ndarray:
    """Seeded t-SNE of all rows of ``X`` ([n, 2]); perplexity capped by :func:`tsne_perplexity`.

    ``backend``: ``"openTSNE"`` or ``"scikit-learn"`` (default :func:`tsne_backend`); both start from
    the PCA initialisation with their own default schedules. ``threads`` limits the worker threads
    (None = all cores). One thread is the default: the stage runs t-SNE beside the process drawing
    the other figures, and scikit-learn's busy-waiting OpenMP threads on a loaded 2-core machine
    made t-SNE of 12 points take 15 CPU-seconds instead of 0.8.
    """
    n = X.shape[0]
    if n < MIN_TSNE_POINTS:
        raise FigureUnavailable(f"t-SNE needs at least {MIN_TSNE_POINTS} points, got {n}")
    X = np.asarray(X, dtype=np.float64)
    if np.ptp(X, axis=0).max() == 0:
        raise FigureUnavailable("t-SNE: every embedding is the same vector")
    p = tsne_perplexity(perplexity, n)
    backend = backend or tsne_backend()
    if backend == "openTSNE":
        import openTSNE

        tsne = openTSNE.TSNE(n_components=2, perplexity=p, initialization="pca",
                             negative_gradient_method="bh" if n < 10_000 else "fft",
                             random_state=seed, n_jobs=threads or -1, verbose=False)
        return np.asarray(tsne.fit(X), dtype=np.float64)
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    tsne = TSNE(n_components=2, perplexity=p, init="pca", learning_rate="auto",
                random_state=seed)
    with threadpool_limits(limits=threads):
        Y = tsne.fit_transform(X.astype(np.float32))
    return np.asarray(Y, dtype=np.float64)


def tsne_2d(X: np.ndarray, perplexity: float, sample: int, seed: int = SEED,
            keep: np.ndarray | None = None, backend: str | None = None,
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """t-SNE of a seeded subsample of at most ``sample`` rows: (indices, [k, 2], perplexity used)."""
    idx = subsample_indices(X.shape[0], sample, seed, keep)
    Y = tsne_fit(X[idx], perplexity, seed, backend=backend)
    return idx, Y, tsne_perplexity(perplexity, idx.size)


def tsne_worker(conn, args: tuple) -> None:
    """Entry point of the t-SNE worker process: ``tsne_fit(*args)``, result sent on ``conn`` as
    ``("ok", Y)``, ``("unavailable", message)`` or ``("error", message)``."""
    try:
        conn.send(("ok", tsne_fit(*args)))
    except FigureUnavailable as e:
        conn.send(("unavailable", str(e)))
    except Exception as e:  # reported to the parent, which computes t-SNE itself
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()
