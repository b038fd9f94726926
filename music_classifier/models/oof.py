"""Out-of-fold genre probabilities per track, from repeated stratified (grouped) K-fold.

Each track is predicted only by models that never saw it; with R repeats every track gets R
predictions, averaged. Segment datasets are soft-voted per track inside each fold. The classifier is
the model kind's pipeline (imputer, scaler, classifier) with the first value of each default grid
parameter, or the parameters given: the audit and the map need a stable opinion, not a search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from music_classifier.errors import InputError
from music_classifier.models.load_data import DatasetFrame

Progress = Callable[[int, int], None]
DEFAULT_FOLDS = 5
DEFAULT_REPEATS = 5


@dataclass
class OutOfFold:
    """One row per track (sorted by track id)."""

    track_ids: np.ndarray  # int, (n,)
    labels: np.ndarray  # sheet genre display names, (n,)
    classes: list[str]  # probability columns
    proba: np.ndarray  # mean out-of-fold probabilities, (n, k)
    artists: np.ndarray
    titles: np.ndarray
    n_splits: int
    n_repeats: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label_index(self) -> np.ndarray:
        pos = {c: i for i, c in enumerate(self.classes)}
        return np.array([pos[str(v)] for v in self.labels], dtype=np.int64)

    @property
    def predicted(self) -> np.ndarray:
        return np.array(self.classes, dtype=object)[self.proba.argmax(axis=1)]

    @property
    def confidence(self) -> np.ndarray:
        return self.proba.max(axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.labels)) if len(self.labels) else float("nan")


def repeated_splits(y: np.ndarray, groups: np.ndarray, *, n_splits: int, n_repeats: int,
                    seed: int) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    """(folds per repeat, the (train rows, test rows) pairs): the same repeated stratified (grouped)
    K-fold as training (:func:`.cv.small_data_cv`), folds lowered to the smallest genre's tracks."""
    from music_classifier.models.cv import small_data_cv

    splitter = small_data_cv(y, groups, random_state=seed, n_splits=n_splits, n_repeats=n_repeats)
    return splitter.n_splits, list(splitter.split(np.zeros(len(y)), y, groups))


def fixed_params(kind: str) -> dict[str, Any]:
    """The first value of each default grid parameter of ``kind``."""
    from music_classifier.models.grids import default_grid

    return {k: v[0] for k, v in default_grid(kind)[0].items()}


def out_of_fold(frame: DatasetFrame, *, kind: str = "rf", params: dict[str, Any] | None = None,
                n_splits: int = DEFAULT_FOLDS, n_repeats: int = DEFAULT_REPEATS, seed: int = 0,
                progress: Progress | None = None) -> OutOfFold:
    """Mean out-of-fold probabilities per track of ``frame`` (see module doc)."""
    from music_classifier.models.pipelines import make_pipeline
    from music_classifier.models.train import track_labels, track_probabilities

    if n_repeats < 1:
        raise InputError(f"--repeats {n_repeats}: must be at least 1")
    if n_splits < 2:
        raise InputError(f"--cv {n_splits}: need at least 2 folds")
    classes = sorted({str(v) for v in frame.y})
    if len(classes) < 2:
        raise InputError(f"dataset {frame.name!r} has a single genre; nothing to audit")
    params = dict(params if params is not None else fixed_params(kind))
    folds, splits = repeated_splits(frame.y, frame.groups, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
    uniq = np.unique(frame.track_ids)
    pos = {int(t): i for i, t in enumerate(uniq)}
    sums = np.zeros((len(uniq), len(classes)))
    counts = np.zeros(len(uniq))
    col = {c: i for i, c in enumerate(classes)}
    for done, (train, test) in enumerate(splits, start=1):
        model = make_pipeline(kind, seed=seed, n_rows=len(train))
        model.set_params(**{f"clf__{k}": v for k, v in params.items()})
        model.fit(frame.X[train], frame.y[train])
        tids, proba = track_probabilities(model, frame.X[test], frame.track_ids[test])
        cols = [col[str(c)] for c in model.classes_]
        rows = [pos[int(t)] for t in tids]
        sums[np.ix_(rows, cols)] += proba
        counts[rows] += 1
        if progress:
            progress(done, len(splits))
    if (counts == 0).any():  # cannot happen with K-fold (every row is tested once per repeat)
        raise InputError("out-of-fold: a track was never in a test fold")
    return OutOfFold(track_ids=uniq, labels=track_labels(frame.track_ids, frame.y, uniq).astype(str),
                     classes=classes, proba=sums / counts[:, None],
                     artists=track_labels(frame.track_ids, frame.artists, uniq),
                     titles=track_labels(frame.track_ids, frame.titles, uniq),
                     n_splits=folds, n_repeats=n_repeats, params=params)
