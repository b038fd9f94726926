"""Feature values in their tables: one row per extraction (and per segment), one column per feature.

The only writers of the wide tables (:data:`.tables.wide_values`): the jobs' results
(:func:`replace_values`), the bulk CSV import (:func:`insert_rows`), a copy between extractions
(:func:`copy_values`). Names are checked against the table's columns, so values an extractor did not
declare are an error, never a silent loss.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, Table, delete, insert, select

from music_classifier.db.tables import wide_values

_CHUNK = 5000  # ids per IN (...) list
_COPY_ROWS = 20_000  # rows per binary COPY buffer

#: A segment's values: (segment index, start in seconds, {feature name: value}).
SegmentValues = tuple[int, float, Mapping[str, float]]


def value_tables(extractor: str) -> tuple[Table, Table | None]:
    """(per-extraction table, per-segment table or None) of ``extractor``; ValueError for an unknown one."""
    try:
        return wide_values[extractor]
    except KeyError:
        raise ValueError(f"no value table for extractor {extractor!r}") from None


def value_columns(extractor: str) -> list[str]:
    """The feature columns of ``extractor``'s table, in table order."""
    table, _ = value_tables(extractor)
    return [c for c in table.c.keys() if c != "extraction_id"]


def _check_names(extractor: str, table: Table, names: Iterable[str]) -> None:
    known = set(table.c.keys())
    unknown = sorted({n for n in names if n not in known})
    if unknown:  # a programming error: the extractor's names and the migration's columns disagree
        raise ValueError(f"{extractor} value(s) without a column: {', '.join(unknown[:5])}")


def delete_values(conn: Connection, extractor: str, extraction_ids: Sequence[int]) -> None:
    """Remove the values (and segment values) of the given extractions."""
    ids = [int(i) for i in extraction_ids]
    for table in (t for t in value_tables(extractor) if t is not None):
        for start in range(0, len(ids), _CHUNK):
            conn.execute(delete(table).where(table.c.extraction_id.in_(ids[start:start + _CHUNK])))


def replace_values(conn: Connection, extractor: str, extraction_id: int, features: Mapping[str, float],
                   segments: Sequence[SegmentValues] | None) -> None:
    """An extraction's values, replaced: one row, and one multi-row statement for its segments."""
    table, segment_table = value_tables(extractor)
    _check_names(extractor, table, features)
    if segments and segment_table is None:
        raise ValueError(f"{extractor} has no segment table")
    if segments:
        _check_names(extractor, table, (n for _, _, values in segments for n in values))
    conn.execute(delete(table).where(table.c.extraction_id == extraction_id))
    if segment_table is not None:
        conn.execute(delete(segment_table).where(segment_table.c.extraction_id == extraction_id))
    if features:
        conn.execute(insert(table), [{"extraction_id": extraction_id, **{n: float(v) for n, v in features.items()}}])
    rows = [{"extraction_id": extraction_id, "segment": int(i), "start_s": float(s),
             **{n: float(v) for n, v in values.items()}} for i, s, values in (segments or [])]
    if rows and segment_table is not None:
        conn.execute(insert(segment_table), rows)


def copy_values(conn: Connection, extractor: str, *, source_id: int, target_id: int) -> None:
    """The values of extraction ``source_id`` become those of ``target_id`` (same extractor)."""
    from sqlalchemy import literal

    delete_values(conn, extractor, [target_id])
    for table in (t for t in value_tables(extractor) if t is not None):
        cols = [c for c in table.c.keys() if c != "extraction_id"]
        conn.execute(insert(table).from_select(
            ["extraction_id", *cols],
            select(literal(int(target_id)), *[table.c[c] for c in cols]).where(table.c.extraction_id == source_id)))


def insert_rows(conn: Connection, extractor: str, extraction_ids: Any, names: Sequence[str], values: Any, *,
                segments: tuple[Any, Any] | None = None) -> None:
    """Bulk insert ``values[i, :]`` (columns ``names``) as the values of extraction ``extraction_ids[i]``.

    ``segments``: (segment index per row, start in seconds per row): the rows go to the extractor's segment
    table instead (one row per extraction and segment).
    SQLite: executemany on the raw connection. PostgreSQL: binary COPY built by numpy (no per-value
    Python work) when no value is NaN, else COPY row by row with NaN written as NULL.
    """
    table, segment_table = value_tables(extractor)
    names = list(names)
    _check_names(extractor, table, names)
    ids = np.asarray(extraction_ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64).reshape(len(ids), len(names))
    keys: list[tuple[str, np.ndarray]] = [("extraction_id", ids)]
    if segments is not None:
        if segment_table is None:
            raise ValueError(f"{extractor} has no segment table")
        table = segment_table
        keys += [("segment", np.asarray(segments[0], dtype=np.int64).reshape(len(ids))),
                 ("start_s", np.asarray(segments[1], dtype=np.float64).reshape(len(ids)))]
    if not len(ids):
        return
    columns = [k for k, _ in keys] + names
    column_sql = ", ".join(f'"{c}"' for c in columns)
    dbapi = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cur:  # type: ignore[union-attr]
            if not np.isnan(values).any():
                with cur.copy(f"COPY {table.name} ({column_sql}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
                    for start in range(0, len(ids), _COPY_ROWS):
                        part = slice(start, start + _COPY_ROWS)
                        copy.write(_binary_rows([(k, a[part]) for k, a in keys], values[part]))
                    copy.write(b"\xff\xff")
            else:
                with cur.copy(f"COPY {table.name} ({column_sql}) FROM STDIN") as copy:
                    for key, row in zip(zip(*(a.tolist() for _, a in keys), strict=True), values.tolist(), strict=True):
                        copy.write_row((*key, *(None if v != v else v for v in row)))
        return
    placeholders = ", ".join("?" * len(columns))
    cur = dbapi.cursor()  # type: ignore[union-attr]
    try:  # sqlite3 stores a NaN REAL as NULL
        for start in range(0, len(ids), _COPY_ROWS):
            part = slice(start, start + _COPY_ROWS)
            cur.executemany(f"INSERT INTO {table.name} ({column_sql}) VALUES ({placeholders})",
                            ((*key, *row) for key, row in zip(zip(*(a[part].tolist() for _, a in keys), strict=True),
                                                              values[part].tolist(), strict=True)))
    finally:
        cur.close()


def _binary_rows(keys: Sequence[tuple[str, np.ndarray]], values: np.ndarray) -> bytes:
    """Rows of PostgreSQL's binary COPY format: field count, then (length, big-endian value) per field.

    ``keys``: (column, array) before the values: ``start_s`` as float8, every other key as int4."""
    n, k = values.shape
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for name, _ in keys:
        fields += [(f"{name}_len", ">i4"), (name, ">f8" if name == "start_s" else ">i4")]
    fields += [item for j in range(k) for item in ((f"l{j}", ">i4"), (f"v{j}", ">f8"))]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["count"] = k + len(keys)
    for name, array in keys:
        rows[f"{name}_len"] = 8 if name == "start_s" else 4
        rows[name] = array
    for j in range(k):
        rows[f"l{j}"] = 8
        rows[f"v{j}"] = values[:, j]
    return rows.tobytes()


def read_rows(conn: Connection, extractor: str, extraction_ids: Sequence[int],
              names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(extraction ids, values in ``names`` order; NULL as NaN) of the given extractions that have values."""
    table, _ = value_tables(extractor)
    _check_names(extractor, table, names)
    ids = [int(i) for i in extraction_ids]
    out_ids: list[np.ndarray] = []
    out_values: list[np.ndarray] = []
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(select(table.c.extraction_id, *[table.c[n] for n in names])
                            .where(table.c.extraction_id.in_(ids[start:start + _CHUNK]))).all()
        if rows:
            block = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(len(rows), len(names) + 1)
            out_ids.append(block[:, 0].astype(np.int64))
            out_values.append(block[:, 1:])
    if not out_ids:
        return np.empty(0, dtype=np.int64), np.empty((0, len(names)))
    return np.concatenate(out_ids), np.concatenate(out_values)
