"""Read the float columns of a query into one float64 array without touching each cell in Python.

PostgreSQL: ``COPY (query) TO STDOUT (FORMAT BINARY)`` with every column cast to ``float8`` and NULL
turned into NaN, so every row has the same size; the stream is cut into whole rows and each batch is
read as a strided big-endian view and converted in C. SQLite: cursor batches of rows converted by
numpy. Given an upper bound on the row count the rows go straight into one array (peak memory about
the result's size plus a 1 MiB batch); without one the batches are joined at the end (about twice).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from sqlalchemy import Connection

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_BATCH_BYTES = 1 << 20  # rows converted per step: bounded scratch, few numpy calls
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quoted(name: str) -> str:
    """``"name"`` for a plain identifier; ValueError otherwise (the SQL below is built from names)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid SQL identifier {name!r}")
    return f'"{name}"'


def float_select(source: str, columns: Sequence[str], *, where: str = "", order_by: Sequence[str] = ()) -> str:
    """``SELECT CAST(COALESCE(c, NaN) AS float8) ... FROM source`` over ``columns`` (identifiers)."""
    nan = "CAST('NaN' AS DOUBLE PRECISION)"
    cols = ", ".join(f"COALESCE(CAST({quoted(c)} AS DOUBLE PRECISION), {nan})" for c in columns)
    order = f" ORDER BY {', '.join(quoted(c) for c in order_by)}" if order_by else ""
    return f"SELECT {cols} FROM {source}{' WHERE ' + where if where else ''}{order}"


def read_float_matrix(conn: Connection, source: str, columns: Sequence[str], *, where: str = "",
                      order_by: Sequence[str] = (), expected_rows: int | None = None) -> np.ndarray:
    """Rows of ``columns`` from ``source`` (a quoted table or view name, or a parenthesised subquery with
    an alias) as float64, shape (n_rows, len(columns)); NULL becomes NaN.

    ``source``, ``where`` and ``order_by`` are rendered into the SQL: callers pass names they validated and
    integers, never user text. ``expected_rows``: an upper bound on the row count when the caller knows
    one (a dataset's members): the rows are then written straight into one array of that many rows.
    """
    return read_keyed_matrix(conn, source, [], columns, where=where, order_by=order_by,
                             expected_rows=expected_rows)[1]


def read_keyed_matrix(conn: Connection, source: str, keys: Sequence[str], columns: Sequence[str], *,
                      where: str = "", order_by: Sequence[str] = (),
                      expected_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`read_float_matrix`, with the ``keys`` columns (ids, segment indices: exact in a float64
    below 2**53) returned as a separate (n_rows, len(keys)) array, so the values array is never copied
    out of a wider one."""
    if not columns:
        raise ValueError("no columns to read")
    sink = _Sink(len(keys), len(columns), expected_rows)
    if conn.dialect.name == "postgresql":
        _copy_binary(conn, float_select(source, [*keys, *columns], where=where, order_by=order_by), sink)
        return sink.result()
    # SQLite: no NaN in its REAL values, so NULL stays NULL here and numpy turns None into NaN.
    cols = ", ".join(f"CAST({quoted(c)} AS REAL)" for c in [*keys, *columns])
    order = f" ORDER BY {', '.join(quoted(c) for c in order_by)}" if order_by else ""
    sql = f"SELECT {cols} FROM {source}{' WHERE ' + where if where else ''}{order}"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        # Rows per batch by size: a row is a tuple of Python floats, 4x its float64 size, so a fixed row
        # count would let a wide dataset's batch outgrow the array itself.
        rows_per_batch = max(16, _BATCH_BYTES // (8 * (len(keys) + len(columns))))
        while batch := cursor.fetchmany(rows_per_batch):
            sink.add(np.array(batch, dtype=np.float64).reshape(len(batch), len(keys) + len(columns)))
    finally:
        cursor.close()
    return sink.result()


def scatter_rows(conn: Connection, source: str, key: str, columns: Sequence[str], *, where: str,
                 target: np.ndarray, column_offset: int, row_of: np.ndarray) -> np.ndarray:
    """Write each row of ``columns`` from ``source`` into ``target[r, column_offset:column_offset + len(columns)]``,
    ``r`` the row whose key (``row_of[r]``, an integer key) equals the row's ``key`` column; rows whose key
    ``row_of`` lacks are skipped. Returns a bool mask of the target rows written.

    No intermediate array of the result: each converted batch is scattered into ``target`` (peak memory
    ``target`` plus one batch). ``source``/``where`` are rendered into the SQL, like :func:`read_keyed_matrix`.
    """
    if not columns:
        raise ValueError("no columns to read")
    order = np.argsort(row_of, kind="stable")
    sorted_keys = np.asarray(row_of, dtype=np.int64)[order]
    written = np.zeros(len(row_of), dtype=bool)
    span = slice(column_offset, column_offset + len(columns))

    class _Scatter:
        n_keys, n_values = 1, len(columns)

        def add(self, block: np.ndarray) -> None:
            keys = block[:, 0].astype(np.int64)
            at = np.minimum(np.searchsorted(sorted_keys, keys), max(len(sorted_keys) - 1, 0))
            found = sorted_keys[at] == keys if len(sorted_keys) else np.zeros(len(keys), dtype=bool)
            every = bool(found.all())
            rows = order[at] if every else order[at[found]]
            values = block[:, 1:] if every else block[found, 1:]
            if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
                target[rows[0]:rows[-1] + 1, span] = values  # rows stored in the target's order: a slice
                written[rows[0]:rows[-1] + 1] = True
            else:
                target[rows, span] = values
                written[rows] = True

    sink = _Scatter()
    if conn.dialect.name == "postgresql":
        _copy_binary(conn, float_select(source, [key, *columns], where=where), sink)
        return written
    cols = ", ".join(f"CAST({quoted(c)} AS REAL)" for c in [key, *columns])
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SELECT {cols} FROM {source} WHERE {where}")
        rows_per_batch = max(16, _BATCH_BYTES // (8 * (1 + len(columns))))
        while batch := cursor.fetchmany(rows_per_batch):
            sink.add(np.array(batch, dtype=np.float64).reshape(len(batch), 1 + len(columns)))
    finally:
        cursor.close()
    return written


def sort_by_keys(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered by the key columns (first key first), ``values`` permuted in place a block of columns at
    a time: the database then never sorts the wide rows (an external merge on disk for a large dataset),
    and memory grows by the keys and one block, not by a second copy of ``values``."""
    if len(keys) < 2:
        return keys, values
    order = np.lexsort(keys.T[::-1])
    if (order[1:] > order[:-1]).all():
        return keys, values
    for start in range(0, values.shape[1], 32):
        values[:, start:start + 32] = values[order, start:start + 32]
    return keys[order], values


class _RowSink(Protocol):
    n_keys: int
    n_values: int

    def add(self, block: np.ndarray) -> None: ...


class _Sink:
    """Collects converted row blocks: into one preallocated array while the expected count holds (peak
    about 1x the result), else as blocks joined at the end (peak about 2x)."""

    def __init__(self, n_keys: int, n_values: int, expected_rows: int | None) -> None:
        self.n_keys, self.n_values, self.n = n_keys, n_values, 0
        rows = max(int(expected_rows or 0), 0)
        self.keys = np.empty((rows, n_keys), dtype=np.float64)
        self.values = np.empty((rows, n_values), dtype=np.float64)
        self.spilled: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, block: np.ndarray) -> None:
        """``block``: (rows, keys + values), any float dtype (a big-endian view of COPY bytes included)."""
        m = len(block)
        if not self.spilled and self.n + m <= len(self.values):
            self.keys[self.n:self.n + m] = block[:, :self.n_keys]
            self.values[self.n:self.n + m] = block[:, self.n_keys:]
        else:
            if not self.spilled and self.n:  # the preallocation ran out: from here on, blocks
                self.spilled.append((self.keys[:self.n], self.values[:self.n]))
            self.spilled.append((block[:, :self.n_keys].astype(np.float64),
                                 block[:, self.n_keys:].astype(np.float64)))
        self.n += m

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.spilled:  # fewer rows than expected: views (an untouched tail is never paged in)
            return self.keys[:self.n], self.values[:self.n]
        if len(self.spilled) == 1:
            return self.spilled[0]
        return (np.concatenate([k for k, _ in self.spilled], axis=0),
                np.concatenate([v for _, v in self.spilled], axis=0))


def _copy_binary(conn: Connection, sql: str, sink: _RowSink) -> None:
    """Parse PostgreSQL's binary COPY of non-NULL float8 fields into ``sink``."""
    n_columns = sink.n_keys + sink.n_values
    row_size = 2 + n_columns * 12  # int16 field count, then per field int32 length + 8 bytes
    dbapi = conn.connection.dbapi_connection
    pending: list[bytes] = []
    pending_bytes = 0
    leftover = b""
    header_done = False

    def convert(buf: bytes) -> bytes:
        n = len(buf) // row_size
        if n:
            lengths = np.ndarray((n, n_columns), dtype=">i4", buffer=buf, offset=2, strides=(row_size, 12))
            if not (lengths == 8).all():
                raise ValueError("COPY returned a field that is not a float8")
            sink.add(np.ndarray((n, n_columns), dtype=">f8", buffer=buf, offset=6, strides=(row_size, 12)))
        return buf[n * row_size:]

    with dbapi.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy:  # type: ignore[union-attr]
        for data in copy:
            chunk = bytes(data)
            if not header_done:
                chunk = leftover + chunk
                if len(chunk) < 19:
                    leftover = chunk
                    continue
                if not chunk.startswith(_SIGNATURE):
                    raise ValueError("not a binary COPY stream")
                (ext,) = struct.unpack(">i", chunk[15:19])
                chunk, leftover, header_done = chunk[19 + ext:], b"", True
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes >= _BATCH_BYTES:
                leftover = convert(leftover + b"".join(pending))
                pending, pending_bytes = [], 0
    leftover = convert(leftover + b"".join(pending))
    if leftover not in (b"", b"\xff\xff"):
        raise ValueError(f"binary COPY ended with {len(leftover)} unparsed bytes")
