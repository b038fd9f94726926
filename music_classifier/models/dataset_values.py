"""A dataset's feature values read straight from the extractors' value tables, not through its view.

``dataset_<name>`` joins the members with each feature view, and each feature view joins every live
track's newest ``done`` extraction with its value table: reading the view costs the planner ~60 ms for
533 columns and the executor the joins of the wide rows (4.4x a plain table at 20,000 tracks, issue 19).
Here the same rows come in two steps: the members' newest extraction ids (one small query of numbers,
:mod:`.member_facts`), then each extractor's value table read by key (``WHERE extraction_id = ANY(...)``)
and scattered into one preallocated array by the row each extraction id belongs to. The result is the
view's rows exactly: members of live tracks with a ``done`` extraction and a value row for every feature set.
Prediction reads stored tracks' features the same way (:func:`read_track_values`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, inspect, text

from music_classifier.db.feature_columns import FEATURE_VIEWS_LATEST, SEGMENT_VIEWS_LATEST, WIDE_STORES_LATEST
from music_classifier.db.matrix_read import quoted, read_float_matrix, read_keyed_matrix, scatter_rows, sort_by_keys
from music_classifier.db.views import column_prefix, source_views
from music_classifier.models.member_facts import id_list, newest_sql

_VIEWS = {**FEATURE_VIEWS_LATEST, **SEGMENT_VIEWS_LATEST}


@dataclass
class ValuePlan:
    """Where each column of a dataset (or a model's feature list) is stored."""

    extractors: list[str]  # one per feature set, in the dataset's order
    tables: list[str]  # each set's value table (its segment table for a segment dataset)
    where_col: dict[str, tuple[int, str]]  # dataset column -> (set index, table column)
    segments: bool


def value_plan(conn: Connection, definition: dict[str, Any], names: list[str]) -> ValuePlan | None:
    """The value tables holding the ``names`` columns of a dataset of ``definition``; None when only the
    views know them (a feature set without a value table of its own, a segment dataset of several sets,
    a database not yet migrated to the value tables, a name the sets lack)."""
    segments = bool(definition.get("segments"))
    views = source_views(definition["features"], segments)
    if segments and len(views) > 1:
        return None
    extractors, tables, where_col = [], [], {}
    for i, view in enumerate(views):
        extractor, columns = _VIEWS[view]
        store = WIDE_STORES_LATEST.get(extractor)
        table = (store.segment_table if segments else store.table) if store else None
        if table is None or list(columns) != list(store.columns):  # type: ignore[union-attr]
            return None
        extractors.append(extractor)
        tables.append(table)
        prefix = column_prefix(view, len(views))
        where_col.update({prefix + c: (i, c) for c in columns})
    inspector = inspect(conn)  # a database not yet migrated to the value tables (0009) has only the views
    if not all(inspector.has_table(t) for t in tables) or any(n not in where_col for n in names):
        return None
    return ValuePlan(extractors, tables, where_col, segments)


def read_values(conn: Connection, plan: ValuePlan, names: list[str], track_ids: np.ndarray,
                extraction_ids: np.ndarray, where: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(track ids, X with the ``names`` columns, segment indices or None) of the tracks ``track_ids``
    (ascending) whose newest extraction of set ``i`` is ``extraction_ids[:, i]``; ``where[i]``: a SQL
    condition on ``extraction_id`` selecting at least those rows of set ``i``'s table. Tracks lacking a
    value row of some set are left out (the views join the value tables)."""
    if plan.segments:
        return _read_segments(conn, plan.tables[0], [plan.where_col[n][1] for n in names], where[0],
                              track_ids, extraction_ids[:, 0])
    X = np.empty((len(track_ids), len(names)), dtype=np.float64)
    written = np.ones(len(track_ids), dtype=bool)
    for i, table in enumerate(plan.tables):
        positions = [j for j, n in enumerate(names) if plan.where_col[n][0] == i]
        if not positions:
            continue
        # Columns of one set are contiguous in the view (and in ``names`` unless a caller reorders them):
        # scattered as one block when they are, else one block per column run.
        for run in _runs(positions):
            done = scatter_rows(conn, quoted(table), "extraction_id", [plan.where_col[names[j]][1] for j in run],
                                where=where[i], target=X, column_offset=run[0], row_of=extraction_ids[:, i])
            written &= done
    if not written.all():  # a done extraction without its value row: not a row of the view either
        return track_ids[written], X[written], None
    return track_ids, X, None


def member_filters(conn: Connection, plan: ValuePlan, dataset_id: int, extraction_ids: np.ndarray) -> list[str]:
    """Per set, the condition selecting the members' newest extractions: their ids as one array on
    PostgreSQL (the newest extractions are not computed twice); the newest-extraction subquery on SQLite."""
    if conn.dialect.name == "postgresql":
        return [id_list(conn, "extraction_id", extraction_ids[:, i]) for i in range(len(plan.extractors))]
    members = f"e.track_id IN (SELECT track_id FROM dataset_members WHERE dataset_id = {int(dataset_id)})"
    return [f"extraction_id IN (SELECT extraction_id FROM ({newest_sql(x, members)}) AS newest)"
            for x in plan.extractors]


def read_track_values(conn: Connection, definition: dict[str, Any], names: list[str],
                      track_ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """What the feature views of ``definition`` hold for the tracks ``track_ids`` (the ``names`` columns,
    named as in a dataset of that definition), read from the value tables: (X, row track ids, segment
    indices or None) in track (then segment) order; None when only the views know them."""
    plan = value_plan(conn, definition, names)
    if plan is None:
        return None
    ids = sorted({int(t) for t in track_ids})
    k = len(plan.extractors)
    joins = " ".join(f"JOIN ({newest_sql(x, id_list(conn, 'e.track_id', ids))}) n{i} ON n{i}.track_id = t.id"
                     for i, x in enumerate(plan.extractors))
    newest = ", ".join(f"n{i}.extraction_id AS e{i}" for i in range(k))
    source = (f"(SELECT t.id AS track_id, {newest} FROM tracks t {joins} "
              f"WHERE t.removed_at IS NULL AND {id_list(conn, 't.id', ids)}) AS k")
    keys = read_float_matrix(conn, source, ["track_id", *(f"e{i}" for i in range(k))],
                             order_by=["track_id"]).astype(np.int64)
    where = [id_list(conn, "extraction_id", keys[:, 1 + i]) for i in range(k)]
    found, X, segs = read_values(conn, plan, names, keys[:, 0], keys[:, 1:], where)
    return X, found, segs


def _runs(positions: list[int]) -> list[list[int]]:
    """Consecutive stretches of ``positions`` (ascending): [1, 2, 3, 7, 8] -> [[1, 2, 3], [7, 8]]."""
    runs: list[list[int]] = []
    for p in positions:
        if runs and runs[-1][-1] == p - 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def _read_segments(conn: Connection, table: str, columns: list[str], where: str, track_ids: np.ndarray,
                   extraction_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
