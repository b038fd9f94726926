"""Read the float columns of a query into one float64 array without touching each cell in Python.

PostgreSQL: ``COPY (query) TO STDOUT (FORMAT BINARY)`` with every column cast to ``float8`` and NULL
turned into NaN, so every row has the same size; the stream is cut into whole rows and each batch is
read as a strided big-endian view and converted in C. SQLite: cursor batches of rows converted by
numpy. Either way the batches are joined at the end: peak memory about twice the result array.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_BATCH_BYTES = 8 << 20  # rows converted per step: bounded scratch, few numpy calls
_SQLITE_BATCH = 20_000
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
                      order_by: Sequence[str] = ()) -> np.ndarray:
    """Rows of ``columns`` from ``source`` (a quoted table or view name, or a parenthesised subquery with
    an alias) as float64, shape (n_rows, len(columns)); NULL becomes NaN.

    ``source``, ``where`` and ``order_by`` are rendered into the SQL: callers pass names they validated and
    integers, never user text.
    """
    return read_keyed_matrix(conn, source, [], columns, where=where, order_by=order_by)[1]


def read_keyed_matrix(conn: Connection, source: str, keys: Sequence[str], columns: Sequence[str], *,
                      where: str = "", order_by: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`read_float_matrix`, with the ``keys`` columns (ids, segment indices: exact in a float64
    below 2**53) returned as a separate (n_rows, len(keys)) array, so the values array is never copied
    out of a wider one."""
    if not columns:
        raise ValueError("no columns to read")
    k = len(keys)
    if conn.dialect.name == "postgresql":
        sql = float_select(source, [*keys, *columns], where=where, order_by=order_by)
        return _copy_binary(conn, sql, k, len(columns))
    # SQLite: no NaN in its REAL values, so NULL stays NULL here and numpy turns None into NaN.
    cols = ", ".join(f"CAST({quoted(c)} AS REAL)" for c in [*keys, *columns])
    order = f" ORDER BY {', '.join(quoted(c) for c in order_by)}" if order_by else ""
    sql = f"SELECT {cols} FROM {source}{' WHERE ' + where if where else ''}{order}"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        key_parts, parts = [], []
        while batch := cursor.fetchmany(_SQLITE_BATCH):
            block = np.array(batch, dtype=np.float64).reshape(len(batch), k + len(columns))
            key_parts.append(block[:, :k].copy())
            parts.append(block[:, k:] if not k else block[:, k:].copy())
            del block
    finally:
        cursor.close()
    return _joined(key_parts, k), _joined(parts, len(columns))


def _joined(parts: list[np.ndarray], n_columns: int) -> np.ndarray:
    if not parts:
        return np.empty((0, n_columns), dtype=np.float64)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts, axis=0)


def _copy_binary(conn: Connection, sql: str, n_keys: int, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse PostgreSQL's binary COPY of ``n_keys + n_values`` non-NULL float8 fields per row."""
    n_columns = n_keys + n_values
    row_size = 2 + n_columns * 12  # int16 field count, then per field int32 length + 8 bytes
    dbapi = conn.connection.dbapi_connection
    key_parts: list[np.ndarray] = []
    parts: list[np.ndarray] = []
    pending: list[bytes] = []
    pending_bytes = 0
    leftover = b""
    header_done = False

    def convert(buf: bytes) -> bytes:
        n = len(buf) // row_size
        if n:
            rows = np.ndarray((n, n_columns), dtype=">f8", buffer=buf, offset=6, strides=(row_size, 12))
            lengths = np.ndarray((n, n_columns), dtype=">i4", buffer=buf, offset=2, strides=(row_size, 12))
            if not (lengths == 8).all():
                raise ValueError("COPY returned a field that is not a float8")
            key_parts.append(rows[:, :n_keys].astype(np.float64))
            parts.append(rows[:, n_keys:].astype(np.float64))
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
    return _joined(key_parts, n_keys), _joined(parts, n_values)
