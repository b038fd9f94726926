"""Similar tracks: nearest neighbours by cosine similarity in a standardised feature space.

The candidates are every live track with the chosen feature set (its feature view(s), columns by
name). Each feature is standardised over the candidates (missing values take the median), so that
no feature dominates by its unit (Hz against ratios); cosine then compares the shape of the profiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, text

from music_classifier.errors import InputError


@dataclass
class Neighbour:
    track_id: int
    artist: str
    title: str
    genre: str | None
    student: str
    similarity: float


@dataclass
class SimilarResult:
    query: str
    n_candidates: int
    n_features: int
    neighbours: list[Neighbour] = field(default_factory=list)


@dataclass
class FeatureSpace:
    """Standardised candidate rows: ``Z`` shape (n, f), unit-norm rows for cosine."""

    track_ids: np.ndarray
    artists: list[str]
    titles: list[str]
    genres: list[str | None]
    names: list[str]
    centre: np.ndarray
    median: np.ndarray
    scale: np.ndarray
    Z: np.ndarray

    def embed(self, X: np.ndarray) -> np.ndarray:
        """Raw feature rows (n, f) -> unit-norm standardised rows, with the candidates' statistics."""
        X = np.where(np.isfinite(X), X, self.median[None, :])
        Z = (X - self.centre) / self.scale
        norms = np.linalg.norm(Z, axis=1, keepdims=True)
        return Z / np.where(norms > 0, norms, 1.0)


def _feature_views(features: str) -> list[str]:
    from music_classifier.db.views import FEATURE_SET_VIEWS, source_views

    try:
        return source_views(features, False)
    except ValueError as exc:
        raise InputError(f"--features {features!r}: {exc}; choose one or a comma list of "
                         f"{', '.join(FEATURE_SET_VIEWS)}") from None


def feature_space(conn: Connection, features: str = "librosa", *,
                  track_ids: Sequence[int] | None = None) -> FeatureSpace:
    """Every live track having ``features`` (optionally only ``track_ids``), standardised."""
    from music_classifier.db.views import column_prefix
    from music_classifier.models.datasets import view_columns

    views = _feature_views(features)
    cols = view_columns()
    alias = {v: f"v{i}" for i, v in enumerate(views)}
    names, select_cols = [], []
    for v in views:
        prefix = column_prefix(v, len(views))
        for c in cols[v]:
            names.append(prefix + c)
            select_cols.append(f'{alias[v]}."{c}"')
    first = alias[views[0]]
    joins = " ".join(f'JOIN "{v}" {alias[v]} ON {alias[v]}.track_id = {first}.track_id' for v in views[1:])
    where = f" WHERE {first}.track_id IN :ids" if track_ids is not None else ""
    sql = (f'SELECT {first}.track_id, {first}.artist, {first}.title, {first}.coarse_genre, '
           f'{", ".join(select_cols)} FROM "{views[0]}" {first} {joins}{where} ORDER BY {first}.track_id')
    stmt = text(sql)
    params: dict[str, Any] = {}
    if track_ids is not None:
        stmt = stmt.bindparams(bindparam("ids", expanding=True))
        params["ids"] = [int(t) for t in track_ids]
    rows = conn.execute(stmt, params).all()
    if len(rows) < 2:
        raise InputError(f"--features {features}: {len(rows)} stored track(s) have these features; "
                         "need at least 2 to compare")
    X = np.array([[np.nan if v is None else float(v) for v in r[4:]] for r in rows], dtype=float)
    with np.errstate(all="ignore"):
        median = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
    median = np.where(np.isfinite(median), median, 0.0)
    filled = np.where(np.isfinite(X), X, median[None, :])
    centre = filled.mean(axis=0)
    scale = filled.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # a constant feature carries no information: it adds 0
    space = FeatureSpace(track_ids=np.array([int(r[0]) for r in rows]), artists=[str(r[1]) for r in rows],
                         titles=[str(r[2]) for r in rows], genres=[r[3] for r in rows], names=names,
                         centre=centre, median=median, scale=scale, Z=np.empty((0, len(names))))
    space.Z = space.embed(X)
    return space


def nearest(space: FeatureSpace, query: np.ndarray, *, k: int, exclude: int | None = None) -> list[tuple[int, float]]:
    """(row index, cosine similarity) of the k nearest candidate rows to one unit-norm ``query``."""
    sims = space.Z @ query
    order = np.lexsort((space.track_ids, -sims))
    return [(int(i), float(sims[i])) for i in order if exclude is None or space.track_ids[i] != exclude][:k]


def _result(conn: Connection, space: FeatureSpace, query: str, hits: list[tuple[int, float]]) -> SimilarResult:
    from music_classifier.models.audit import students_of

    names = students_of(conn, [int(space.track_ids[i]) for i, _ in hits])
    return SimilarResult(query=query, n_candidates=len(space.track_ids), n_features=len(space.names), neighbours=[
        Neighbour(track_id=int(space.track_ids[i]), artist=space.artists[i], title=space.titles[i],
                  genre=space.genres[i], student=", ".join(names.get(int(space.track_ids[i]), [])), similarity=s)
        for i, s in hits])


def nearest_to_track(conn: Connection, track_id: int, *, k: int = 10, features: str = "librosa") -> SimilarResult:
    if k < 1:
        raise InputError(f"--k {k}: must be at least 1")
    space = feature_space(conn, features)
    where = np.flatnonzero(space.track_ids == track_id)
    if not len(where):
        raise InputError(f"track {track_id}: no {features} features stored (extract them first, or the id "
                         "does not exist)")
    row = int(where[0])
    hits = nearest(space, space.Z[row], k=k, exclude=track_id)
    return _result(conn, space, f"track {track_id} ({space.artists[row]} - {space.titles[row]}, "
                                f"{space.genres[row] or 'no genre'})", hits)


def nearest_to_file(conn: Connection, path: Path, *, k: int = 10, features: str = "librosa",
                    settings: Any = None) -> SimilarResult:
    """Extract the file's audio features (librosa, musicnn or both) and compare with the stored tracks."""
    from music_classifier.features.registry import AUDIO_EXTRACTORS

    views = _feature_views(features)  # validates the name first
    not_audio = [v.split("_")[0] for v in views if v.split("_")[0] not in AUDIO_EXTRACTORS]
    if not_audio:
        raise InputError(f"--features {features}: an audio file can only be compared by audio features "
                         f"({', '.join(AUDIO_EXTRACTORS)})")
    if k < 1:
        raise InputError(f"--k {k}: must be at least 1")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    from music_classifier.models.predict import file_feature_rows

    space = feature_space(conn, features)  # before the extraction: no features stored means no work
    [feats] = file_feature_rows(path, {"features": features, "segments": False})
    X = np.array([[float(feats.get(n, np.nan)) for n in space.names]], dtype=float)
    return _result(conn, space, f"file {path}", nearest(space, space.embed(X)[0], k=k))


def neighbours_of(conn: Connection, track_ids: Sequence[int], *, within: Sequence[int], features: str,
                  k: int = 3) -> dict[int, list[Neighbour]]:
    """For each of ``track_ids``, its k nearest among ``within`` (e.g. a dataset's members)."""
    space = feature_space(conn, features, track_ids=sorted(set(within) | set(track_ids)))
    out: dict[int, list[Neighbour]] = {}
    for t in track_ids:
        where = np.flatnonzero(space.track_ids == t)
        if len(where):
            out[int(t)] = _result(conn, space, "", nearest(space, space.Z[int(where[0])], k=k, exclude=t)).neighbours
    return out
