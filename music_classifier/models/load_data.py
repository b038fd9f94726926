"""Read a dataset view (or the feature views, for given tracks) into arrays, features BY NAME.

The seed once trained on a CSV whose header was shifted one column against its values. Here a
column is never taken by position: callers ask for feature names (a model asks for the names it was
trained on) and get exactly those columns, in that order, or an error naming what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, text

from music_classifier.db.matrix_read import read_keyed_matrix, sort_by_keys
from music_classifier.db.views import column_prefix, dataset_view_name
from music_classifier.errors import InputError
from music_classifier.models.dataset_values import member_filters, read_track_values, read_values, value_plan
from music_classifier.models.datasets import feature_view_names, get_dataset, view_columns
from music_classifier.models.member_facts import read_member_facts, read_texts, read_titles, shared_strings
from music_classifier.models.same_audio import join_group_codes, song_codes

META_COLUMNS = ("track_id", "genre", "artist", "title", "source", "segment", "start_s")


@dataclass
class DatasetFrame:
    """One row per track (or per segment of a track, for segment datasets)."""

    X: np.ndarray  # float64, shape (n_rows, n_features); NaN where a feature is missing
    y: np.ndarray  # genre display names (str)
    track_ids: np.ndarray  # int
    groups: np.ndarray  # the grouping asked for (track ids by default), joined across shared audio/song
    feature_names: list[str]
    artists: np.ndarray
    titles: np.ndarray
    playlists: np.ndarray  # playlist id, or "track:<id>" where a track has none
    segments: np.ndarray | None = None  # segment index per row (segment datasets only)
    name: str = ""
    dataset_id: int | None = None
    definition: dict[str, Any] | None = None
    joined: int = 0  # groups absorbed because their tracks share audio or song (:mod:`.same_audio`)

    @property
    def is_segments(self) -> bool:
        return self.segments is not None

    def live_counts(self) -> dict[str, int]:
        """Distinct tracks per genre: the dataset's members still live (what ``dataset show`` counts)."""
        first = np.unique(self.track_ids, return_index=True)[1]
        genres, counts = np.unique(self.y[first].astype(str), return_counts=True)
        return {str(g): int(n) for g, n in zip(genres, counts, strict=True)}

    def with_features(self, names: list[str]) -> DatasetFrame:
        """This frame with exactly the ``names`` columns, in that order (a model's features, by name)."""
        chosen = select_features(self.feature_names, names, f"dataset {self.name!r}")
        index = {n: i for i, n in enumerate(self.feature_names)}
        return replace(self, X=self.X[:, [index[n] for n in chosen]], feature_names=chosen)

    def groups_for(self, group_by: str | None) -> np.ndarray:
        """Group labels: by track (default), artist (case-insensitive) or playlist."""
        if group_by in (None, "track"):
            return self.track_ids.copy()
        if group_by == "artist":  # each distinct artist folded once
            codes, distinct = pd.factorize(np.asarray(self.artists, dtype=object))
            folded = np.asarray([str(a).strip().casefold() for a in distinct])
            return folded[codes] if len(codes) else folded
        if group_by == "playlist":
            return self.playlists.copy()
        raise InputError(f"--group-by {group_by!r}: choose track, artist or playlist")


def listed(names: list[str]) -> str:
    """The first five names, and how many there are when there are more (for one-line errors)."""
    return ", ".join(names[:5]) + (f" … ({len(names)} in all)" if len(names) > 5 else "")


def select_features(available: list[str], wanted: list[str] | None, where: str) -> list[str]:
    if wanted is None:
        return list(available)
    missing = [f for f in wanted if f not in set(available)]
    if missing:
        raise InputError(f"{where} lacks feature(s) the model needs: {listed(missing)}")
    return list(wanted)


def _columns(result: Any) -> tuple[dict[str, tuple[Any, ...]], int]:
    """({column name: its values}, row count) of a query result, transposed in C (zip) rather than
    cell by cell: on a 28k-track table this is most of the reading time that is not the query itself."""
    names = list(result.keys())
    rows = result.all()
    values = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return dict(zip(names, values, strict=True)), len(rows)


def _to_float(columns: dict[str, tuple[Any, ...]], names: list[str], n_rows: int) -> np.ndarray:
    """Float64 matrix of the ``names`` columns; NULL (None) becomes NaN."""
    X = np.empty((n_rows, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        X[:, j] = np.array(columns[name], dtype=np.float64)
    return X


def _view_header(conn: Connection, view: str) -> list[str]:
    """The view's column names, in order: from the catalog on PostgreSQL (planning ``SELECT *`` of a
    533-column dataset view costs ~60 ms), from an empty select on SQLite."""
    if conn.dialect.name == "postgresql":
        names = list(conn.execute(text(
            "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(:v) AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attnum"), {"v": f'"{view}"'}).scalars())
        if names:
            return names
    return list(conn.execute(text(f'SELECT * FROM "{view}" WHERE 1 = 0')).keys())


def load_dataset(conn: Connection, name: str, *, feature_names: list[str] | None = None,
                 group_by: str | None = None) -> DatasetFrame:
    """All rows of ``dataset_<name>`` ordered by track id (then segment).

    The feature values come as one float64 array straight from the database (a binary COPY on
    PostgreSQL, cursor batches on SQLite: :mod:`music_classifier.db.matrix_read`), the members' facts as
    integer codes in one query of numbers (:mod:`.member_facts`): no Python work per value, the text of
    each distinct artist, genre and playlist read once and shared by its rows.
    """
    summary = get_dataset(conn, name, count_live=False)  # drift is reported by the commands
    segments = bool(summary.definition.get("segments"))
    view = dataset_view_name(name)
    available = [c for c in _view_header(conn, view) if c not in META_COLUMNS]
    names = select_features(available, feature_names, f"dataset {name!r}")
    plan = value_plan(conn, summary.definition, names)
    facts = read_member_facts(conn, summary.id, plan.extractors if plan else [], expected_rows=summary.n_tracks)
    # The per-track facts first, the values last: what the facts need for a moment (the titles' rows,
    # their normalised text) is freed before the array is filled, so peak memory is the array plus the
    # facts kept, not plus their scratch.
    genre_names, artist_names, playlist_names = read_texts(conn, facts)
    artists = shared_strings(facts.artist_codes, artist_names)
    titles = read_titles(conn, summary.id, facts.track_ids)
    playlists = shared_strings(facts.playlist_codes, playlist_names)
    none = np.flatnonzero(facts.playlist_codes < 0)  # "track:<id>" where a track has none
    if len(none):
        playlists[none] = [f"track:{t}" for t in facts.track_ids[none].tolist()]
    # Tracks with the same audio or the same song never straddle a split, whatever the grouping. Not by
    # song for tables imported with their features (GTZAN, Spotify 30k): their rows are the published
    # unit, have no audio to copy, and thousands of joined rows would make StratifiedGroupKFold's
    # per-group loop take ~20 s a split on 30k rows.
    song = song_codes(artists, titles, facts.by_song)
    # The view's rows, read from the value tables by the members' newest extraction ids (no plan of the wide
    # view, no join of wide rows); through the view itself when only it knows them (:mod:`.dataset_values`).
    if plan is not None:
        track_ids, X, segment_ids = read_values(
            conn, plan, names, facts.track_ids, facts.extraction_ids,
            member_filters(conn, plan, summary.id, facts.extraction_ids))
    else:
        keys = ["track_id", "segment"] if segments else ["track_id"]
        # The rows go straight into one array of a known bound (peak memory ~1x, not blocks + their join
        # ~2x): a per-track dataset has at most one row per stored member; a segment dataset's rows are
        # counted first (the count reads no feature column).
        bound = conn.execute(text(f'SELECT COUNT(*) FROM "{view}"')).scalar_one() if segments else summary.n_tracks
        key_values, X = sort_by_keys(*read_keyed_matrix(conn, f'"{view}"', keys, names, expected_rows=bound))
        track_ids = key_values[:, 0].astype(np.int64)
        segment_ids = key_values[:, 1].astype(np.int64) if segments else None
    if not len(X):
        raise InputError(f"dataset {name!r} has no rows with features (were its tracks' features removed?)")
    # Each row's entry in the facts (every row is a live member's with its extractions); none to pick when
    # the rows are the facts' tracks one to one.
    row = None if np.array_equal(track_ids, facts.track_ids) else np.searchsorted(facts.track_ids, track_ids)

    def per_row(values: np.ndarray) -> np.ndarray:
        return values if row is None else values[row]

    frame = DatasetFrame(
        X=X,
        y=shared_strings(per_row(facts.genre_ids), genre_names),
        track_ids=track_ids,
        groups=track_ids.copy(),
        feature_names=names,
        artists=per_row(artists),
        titles=per_row(titles),
        playlists=per_row(playlists),
        segments=segment_ids,
        name=name, dataset_id=summary.id, definition=summary.definition,
    )
    frame.groups, frame.joined = join_group_codes(frame.groups_for(group_by),
                                                  [per_row(facts.sha_codes), per_row(song)])
    return frame


def feature_sources(definition: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Feature name as a dataset view exposes it -> (feature view, column), mirroring dataset_view_sql."""
    views = feature_view_names(definition)
    cols = view_columns()
    out: dict[str, tuple[str, str]] = {}
    for v in views:
        prefix = column_prefix(v, len(views))
        out.update({prefix + c: (v, c) for c in cols[v]})
    return out


def load_track_features(conn: Connection, definition: dict[str, Any], feature_names: list[str],
                        track_ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Features of stored tracks as the feature views hold them (for prediction), by name.

    Returns (X, row track ids, segment indices or None), ordered by track id (then segment).
    Tracks without the features are simply absent from the result.
    """
    sources = feature_sources(definition)
    missing = [f for f in feature_names if f not in sources]
    if missing:
        raise InputError(f"model feature(s) not in any feature view: {', '.join(missing[:5])}")
    # From the value tables by the tracks' newest extraction ids, as a dataset is read (:mod:`.dataset_values`);
    # through the views when only they know the values.
    direct = read_track_values(conn, definition, feature_names, track_ids)
    if direct is not None:
        return direct
    return view_track_features(conn, definition, feature_names, track_ids)


def view_track_features(conn: Connection, definition: dict[str, Any], feature_names: list[str],
                        track_ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`load_track_features` through the feature views (joined by track, and segment)."""
    sources = feature_sources(definition)
    views = feature_view_names(definition)
    segments = bool(definition.get("segments"))
    alias = {v: f"v{i}" for i, v in enumerate(views)}
    select_cols = [f'{alias[sources[f][0]]}."{sources[f][1]}" AS "{f}"' for f in feature_names]
    first = alias[views[0]]
    same_segment = {v: f" AND {alias[v]}.segment = {first}.segment" if segments else "" for v in views}
    joins = " ".join(f'JOIN "{v}" {alias[v]} ON {alias[v]}.track_id = {first}.track_id{same_segment[v]}'
                     for v in views[1:])
    seg = f", {first}.segment AS segment" if segments else ""
    order = "track_id, segment" if segments else "track_id"
    sql = (f'SELECT {first}.track_id AS track_id{seg}, {", ".join(select_cols)} FROM "{views[0]}" {first} {joins} '
           f"WHERE {first}.track_id IN :ids ORDER BY {order}")
    columns, n_rows = _columns(conn.execute(text(sql).bindparams(bindparam("ids", expanding=True)),
                                            {"ids": list(track_ids)}))
    X = _to_float(columns, feature_names, n_rows)
    tids = np.array(columns["track_id"], dtype=np.int64)
    segs = np.array(columns["segment"], dtype=np.int64) if segments else None
    return X, tids, segs
