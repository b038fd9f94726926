"""A dataset's feature values read straight from the extractors' value tables, not through its view.

``dataset_<name>`` joins the members with each feature view, and each feature view joins every live
track's newest ``done`` extraction with its value table: reading the view costs the planner ~60 ms for
533 columns and the executor the joins of the wide rows (4.4x a plain table at 20,000 tracks, issue 19).
Here the same rows come in two steps: the members' newest extraction ids (a few integer columns, one
small query), then each extractor's value table read by key (``WHERE extraction_id IN (...)``) and
scattered into one preallocated array by the row each extraction id belongs to. The result is the view's
rows exactly: members of live tracks with a ``done`` extraction and a value row for every feature set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection, inspect, text

from music_classifier.db.feature_columns import FEATURE_VIEWS_LATEST, SEGMENT_VIEWS_LATEST, WIDE_STORES_LATEST
from music_classifier.db.matrix_read import quoted, read_float_matrix, read_keyed_matrix, scatter_rows, sort_by_keys
from music_classifier.db.views import column_prefix, source_views

_VIEWS = {**FEATURE_VIEWS_LATEST, **SEGMENT_VIEWS_LATEST}


def _literal(value: str) -> str:
    quoted(value)  # extractor names are identifiers from the frozen lists; refuse anything else
    return f"'{value}'"


def _sources(definition: dict[str, Any], segments: bool) -> list[tuple[str, str, list[str], str]] | None:
    """Per feature set of the dataset: (extractor, value table, its columns, the dataset view's prefix);
    None when a set's view does not read a value table of its own (then only the view knows its rows)."""
    views = source_views(definition["features"], segments)
    out = []
    for view in views:
        extractor, columns = _VIEWS[view]
        store = WIDE_STORES_LATEST.get(extractor)
        table = (store.segment_table if segments else store.table) if store else None
        if table is None or list(columns) != list(store.columns):  # type: ignore[union-attr]
            return None
        out.append((extractor, table, list(columns), column_prefix(view, len(views))))
    return out


def _newest(extractor: str, dataset_id: int) -> str:
    """The newest ``done`` extraction of ``extractor`` per member track (what the feature views join)."""
    return (f"SELECT e.track_id AS track_id, MAX(e.id) AS extraction_id FROM extractions e "
            f"JOIN dataset_members dm ON dm.track_id = e.track_id AND dm.dataset_id = {int(dataset_id)} "
            f"WHERE e.extractor = {_literal(extractor)} AND e.status = 'done' GROUP BY e.track_id")


def read_dataset_values(conn: Connection, dataset_id: int, definition: dict[str, Any],
                        names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """(track ids, X with the ``names`` columns of the dataset view, segment indices or None), the rows of
    ``dataset_<name>`` in track (then segment) order; None when this dataset must be read through its view
    (a feature set without a value table, a segment dataset of several sets, a name the sets lack)."""
    segments = bool(definition.get("segments"))
    sources = _sources(definition, segments)
    if sources is None or (segments and len(sources) > 1):
        return None
    inspector = inspect(conn)  # a database not yet migrated to the value tables (0009) has only the views
    if not all(inspector.has_table(table) for _, table, _, _ in sources):
        return None
    where_col: dict[str, tuple[int, str]] = {}  # dataset column -> (source index, table column)
    for i, (_, _, columns, prefix) in enumerate(sources):
        where_col.update({prefix + c: (i, c) for c in columns})
    if any(n not in where_col for n in names):
        return None
    dataset_id = int(dataset_id)
    joins = " ".join(f"JOIN ({_newest(extractor, dataset_id)}) n{i} ON n{i}.track_id = m.track_id"
                     for i, (extractor, _, _, _) in enumerate(sources))
    # The keys as one float64 array by the same reader (ids are exact below 2**53): a list of rows converted
    # by numpy costs ~25 µs a row.
    key_names = ["track_id", *(f"e{i}" for i in range(len(sources)))]
    newest_ids = ", ".join(f"n{i}.extraction_id AS e{i}" for i in range(len(sources)))
    keys_sql = (f"(SELECT m.track_id AS track_id, {newest_ids} "
                f"FROM dataset_members m JOIN tracks t ON t.id = m.track_id JOIN genres g ON g.id = m.genre_id "
                f"{joins} WHERE m.dataset_id = {dataset_id} AND t.removed_at IS NULL) AS k")
    ids = read_float_matrix(conn, keys_sql, key_names, order_by=["track_id"]).astype(np.int64)
    track_ids = ids[:, 0]
    if segments:
        return _read_segments(conn, sources[0][1], [where_col[n][1] for n in names], dataset_id,
                              sources[0][0], track_ids, ids[:, 1])
    X = np.empty((len(track_ids), len(names)), dtype=np.float64)
    written = np.ones(len(track_ids), dtype=bool)
    for i, (extractor, table, _, _) in enumerate(sources):
        positions = [j for j, n in enumerate(names) if where_col[n][0] == i]
        if not positions:
            continue
        # Columns of one set are contiguous in the view (and in ``names`` unless a caller reorders them):
        # scattered as one block when they are, else one block per column run.
        for run in _runs(positions):
            done = scatter_rows(conn, quoted(table), "extraction_id", [where_col[names[j]][1] for j in run],
                                where=f"extraction_id IN (SELECT extraction_id FROM ({_newest(extractor, dataset_id)})"
                                      f" AS newest)",
                                target=X, column_offset=run[0], row_of=ids[:, i + 1])
            written &= done
    if not written.all():  # a done extraction without its value row: not a row of the view either
        return track_ids[written], X[written], None
    return track_ids, X, None


def _runs(positions: list[int]) -> list[list[int]]:
    """Consecutive stretches of ``positions`` (ascending): [1, 2, 3, 7, 8] -> [[1, 2, 3], [7, 8]]."""
    runs: list[list[int]] = []
    for p in positions:
        if runs and runs[-1][-1] == p - 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def _read_segments(conn: Connection, table: str, columns: list[str], dataset_id: int,
                   extractor: str, track_ids: np.ndarray,
                   extraction_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    where = f"extraction_id IN (SELECT extraction_id FROM ({_newest(extractor, dataset_id)}) AS newest)"
    bound = conn.execute(text(f"SELECT COUNT(*) FROM {quoted(table)} WHERE {where}")).scalar_one()
    key_values, X = read_keyed_matrix(conn, quoted(table), ["extraction_id", "segment"], columns, where=where,
                                      expected_rows=bound)
    eids = key_values[:, 0].astype(np.int64)
    order = np.argsort(extraction_ids)
    at = np.minimum(np.searchsorted(extraction_ids[order], eids), max(len(order) - 1, 0))
    found = extraction_ids[order][at] == eids if len(order) else np.zeros(len(eids), dtype=bool)
    if not found.all():  # an extraction of a removed track: not in the view
        key_values, X, at = key_values[found], X[found], at[found]
    keys = np.column_stack([track_ids[order][at].astype(np.float64), key_values[:, 1]])
    keys, X = sort_by_keys(keys, X)
    return keys[:, 0].astype(np.int64), X, keys[:, 1].astype(np.int64)
