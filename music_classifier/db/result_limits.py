"""Row and byte caps on the result of a read-only query (`music-classifier sql`, or any page running one).

A query may return anything: 80 rows of ``zeroblob(30000000)`` once took `sql --csv` to 2.4 GB
resident in two seconds. So rows are never collected: :class:`QueryStream` hands them over one at a
time as the database produces them, counting rows and the bytes of their values, and stops before the
row that would pass :class:`ResultLimits`, recording why in :attr:`QueryStream.cut`. What a stream
holds at once is one row (see :mod:`.readonly` for what bounds a single row on each database).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from music_classifier.errors import InputError

DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024

# Fixed-width values are counted at a flat size instead of formatting each one (a 100,000-row result
# of numbers would otherwise pay a str() per cell just to be measured).
_SMALL_VALUE_BYTES = 8
_SMALL_TYPES = (bool, int, float, date, datetime, time, timedelta)


@dataclass(frozen=True)
class ResultLimits:
    """At most ``max_rows`` rows and ``max_bytes`` bytes of values (text in UTF-8, blobs as stored)."""

    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_bytes < 1:
            raise InputError(f"result limits must be at least 1 (got {self.max_rows} rows, {self.max_bytes} bytes)")


@dataclass(frozen=True)
class Cut:
    """Why a result stopped early: ``kind`` is the limit reached, ``rows`` and ``size`` what was given."""

    kind: Literal["rows", "bytes"]
    rows: int
    size: int
    limit: int
    next_row_bytes: int | None = None

    def __str__(self) -> str:
        if self.kind == "rows":
            return f"result cut after {self.rows:,} rows: the limit is {self.limit:,} rows"
        return (f"result cut after {self.rows:,} rows ({self.size:,} bytes): the next row holds "
                f"{self.next_row_bytes:,} bytes and the limit is {self.limit:,} bytes")


def value_bytes(value: Any) -> int:
    """The size counted for one value: UTF-8 bytes of text, bytes of a blob, a flat 8 for numbers,
    dates and NULL, the text length of anything else."""
    if value is None or isinstance(value, _SMALL_TYPES):
        return _SMALL_VALUE_BYTES
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    return len(str(value))


class QueryStream:
    """The rows of one query as they arrive, within ``limits``; iterate once.

    After iteration :attr:`cut` is None when every row came, else the :class:`Cut` that stopped it;
    :attr:`rows` and :attr:`size` count what was handed over. The row that would pass a limit is
    read (that is how the limit is known to be passed: a result of exactly ``max_rows`` rows is not
    cut) but never handed over.
    """

    def __init__(self, columns: list[str], rows: Iterator[tuple[Any, ...]], limits: ResultLimits) -> None:
        self.columns = columns
        self.limits = limits
        self.cut: Cut | None = None
        self.rows = 0
        self.size = 0
        self._source = rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        limits = self.limits
        for row in self._source:
            if self.rows >= limits.max_rows:
                self.cut = Cut("rows", self.rows, self.size, limits.max_rows)
                return
            row_bytes = sum(value_bytes(v) for v in row)
            if self.size + row_bytes > limits.max_bytes:
                self.cut = Cut("bytes", self.rows, self.size, limits.max_bytes, next_row_bytes=row_bytes)
                return
            self.rows += 1
            self.size += row_bytes
            yield tuple(row)
