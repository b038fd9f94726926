"""PNG figures for models and datasets: t-SNE map, confusion matrix, feature importances, genre counts.

Pure functions over arrays: no database here (the report and the `plot` commands fetch the data).
matplotlib is imported inside each function with the Agg backend, so importing this module is
cheap and works without a display; every figure is closed after saving so that a long process
drawing many reports does not grow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from music_classifier.errors import InputError
from music_classifier.models import palette


@contextmanager
def _figure(out: Path, *, figsize: tuple[float, float], dpi: int = 110):
    """Yield (fig, ax); save to `out` as PNG and close the figure whatever happens."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    try:
        yield fig, ax
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(out, format="png", dpi=dpi)
    finally:
        plt.close(fig)


def genre_colours(labels: Sequence[str]) -> dict[str, str]:
    """A stable colour per genre (the project's one palette, :mod:`.palette`)."""
    return palette.genre_colours(labels)


def tsne_perplexity(n_samples: int) -> float:
    """min(30, (n-1)/3): scikit-learn requires perplexity < n_samples."""
    return float(min(30.0, (n_samples - 1) / 3))


# t-SNE's Barnes-Hut gradient runs OpenMP threads that busy-wait. On the shared 2-core machines
# this project runs on, one thread measured 3-4x faster than the default under load (see
# BENCHMARKS.md, "Report t-SNE"); `threads=None` keeps the library default.
TSNE_THREADS: int | None = 1


def tsne_embedding(X: Any, *, seed: int = 0, threads: int | None = TSNE_THREADS) -> Any:
    """Standardise the features, then embed them in 2-D with t-SNE (deterministic for a given seed)."""
    import numpy as np
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] < 4:
        raise InputError(f"t-SNE needs a 2-D matrix with at least 4 rows, got shape {X.shape}")
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise InputError(f"t-SNE: {bad} row(s) hold missing or infinite feature values")
    scaled = StandardScaler().fit_transform(X)
    tsne = TSNE(n_components=2, perplexity=tsne_perplexity(X.shape[0]), random_state=seed, init="pca",
                learning_rate="auto")
    with threadpool_limits(limits=threads):
        return tsne.fit_transform(scaled)


def plot_tsne(X: Any, y: Sequence[str], *, out: Path, seed: int = 0, title: str = "t-SNE map of the features") -> Path:
    """Scatter the t-SNE embedding of `X`, one colour per genre in `y`, with a legend."""
    import numpy as np

    y = [str(v) for v in y]
    if len(y) != len(X):
        raise InputError(f"t-SNE: {len(X)} feature rows but {len(y)} labels")
    emb = tsne_embedding(X, seed=seed)
    colours = genre_colours(y)
    markers = palette.genre_markers(y)
    labels = np.asarray(y)
    with _figure(out, figsize=(7.5, 5.5)) as (fig, ax):
        for genre, colour in colours.items():
            pts = emb[labels == genre]
            ax.scatter(pts[:, 0], pts[:, 1], s=26, color=colour, marker=markers[genre],
                       label=f"{genre} ({len(pts)})", edgecolors="white", linewidths=0.4, alpha=0.9)
        ax.set_title(f"{title}\n(n={len(y)}, perplexity {tsne_perplexity(len(y)):.1f}, seed {seed})")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9, frameon=False, title="genre")
    return Path(out)


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], *, out: Path,
                   title: str = "Confusion matrix (test set)") -> Path:
    """Counts in each cell; shading by the row-normalised share (recall per true genre)."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    n = len(labels)
    if m.shape != (n, n):
        raise InputError(f"confusion matrix of shape {m.shape} does not match {n} labels")
    row_sums = m.sum(axis=1, keepdims=True)
    share = np.divide(m, row_sums, out=np.zeros_like(m), where=row_sums > 0)
    size = max(4.5, 0.45 * n + 2.5)
    cell_font = 10 if n <= 12 else 8 if n <= 20 else 6
    with _figure(out, figsize=(size + 1.2, size)) as (fig, ax):
        im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=cell_font,
                        color="white" if share[i, j] > 0.5 else "black")
        ax.set_xticks(range(n), labels=list(labels), rotation=45, ha="right")
        ax.set_yticks(range(n), labels=list(labels))
        ax.set_xlabel("predicted genre")
        ax.set_ylabel("true genre")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true genre's tracks")
    return Path(out)


def plot_importances(names: Sequence[str], values: Sequence[float], *, out: Path, top: int = 20,
                     title: str = "Feature importances") -> Path:
    """Horizontal bars of the `top` largest importances, largest on top."""
    import numpy as np

    if len(names) != len(values):
        raise InputError(f"{len(names)} feature names but {len(values)} importances")
    if not len(names):
        raise InputError("no feature importances to plot")
    vals = np.asarray(values, dtype=float)
    order = np.argsort(-vals, kind="stable")[:top]
    shown_names = [names[i] for i in order][::-1]
    shown_vals = vals[order][::-1]
    with _figure(out, figsize=(7.5, max(2.5, 0.26 * len(order) + 1.0))) as (fig, ax):
        ax.barh(range(len(order)), shown_vals, color=palette.OTHER_COLOUR)
        ax.set_yticks(range(len(order)), labels=shown_names, fontsize=10)
        ax.set_xlabel("importance")
        ax.set_title(f"{title} (top {len(order)} of {len(names)})")
    return Path(out)


def plot_genre_counts(counts: Mapping[str, int], *, out: Path, title: str = "Tracks per genre") -> Path:
    """Bar chart of tracks per genre, in the order given."""
    if not counts:
        raise InputError("no genres to plot")
    names = list(counts)
    colours = genre_colours(names)
    with _figure(out, figsize=(max(5.0, 0.55 * len(names) + 2), 4)) as (fig, ax):
        bars = ax.bar(range(len(names)), [counts[n] for n in names], color=[colours[n] for n in names])
        ax.bar_label(bars, fontsize=8)
        ax.set_xticks(range(len(names)), labels=names, rotation=45, ha="right")
        ax.set_ylabel("tracks")
        ax.set_title(title)
    return Path(out)
