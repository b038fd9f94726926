"""Memory caps for the read-only SQLite connection of `music-classifier sql`.

One statement once reached ~930 MB (``printf('%.*c', 900000000, 'x')``). The caps: no string or
blob above :data:`MAX_LENGTH_BYTES` (``SQLITE_LIMIT_LENGTH``), query text at most 1 MB, a 16 MiB
page cache with temporary b-trees on disk, and a process-wide hard heap limit while the query runs.
SQLite 3.40's ``printf()``/``format()`` turn their own "too big" into a silent NULL after building
the string up to the limit, so the connection gets :class:`CheckedPrintf` in their place: the same
function (SQLite's own, run on a side connection with the same limits) that refuses an oversized
width or precision before any work and fails, rather than returning NULL, when the result is too long.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

MAX_LENGTH_BYTES = 32 * 1024 * 1024
MAX_SQL_BYTES = 1024 * 1024
CACHE_KIB = 16 * 1024
HEAP_LIMIT_BYTES = 512 * 1024 * 1024
# A printf conversion: flags, width (digits or *), precision (. digits or *), length modifiers, type.
_CONVERSION = re.compile(r"%[-+ 0#!,]*(\*|\d+)?(?:\.(\*|\d+))?l{0,2}([A-Za-z%])")


def limit_connection(conn: sqlite3.Connection) -> CheckedPrintf:
    """Apply the caps to ``conn`` (before its authorizer forbids PRAGMA); returns its printf, whose
    ``refusal`` says why a statement failed inside it."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_LENGTH_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES)
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute("PRAGMA temp_store = FILE")
    checked = CheckedPrintf(MAX_LENGTH_BYTES)
    for name in ("printf", "format"):
        conn.create_function(name, -1, checked)
    return checked


class CheckedPrintf:
    """SQLite's printf(), failing instead of building (or silently dropping) a value over ``max_length``."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self.refusal: str | None = None
        self._side: sqlite3.Connection | None = None

    def __call__(self, fmt: Any = None, *args: Any) -> Any:
        if fmt is None:
            return None
        widest = _widest(str(fmt), args)
        if widest > self.max_length:
            return self._refuse(f"printf() width or precision {widest} is above the {self.max_length // 2**20} MiB "
                                "limit for one value")
        if self._side is None:
            self._side = sqlite3.connect(":memory:")
            self._side.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, self.max_length)
        placeholders = ", ".join("?" * (1 + len(args)))
        result = self._side.execute(f"SELECT printf({placeholders})", (fmt, *args)).fetchone()[0]
        if result is None:
            return self._refuse(f"printf() result is longer than the {self.max_length // 2**20} MiB limit "
                                "for one value")
        return result

    def _refuse(self, why: str) -> None:
        self.refusal = why
        raise ValueError(why)  # sqlite3 reports "user-defined function raised exception"; refusal says why


def _widest(fmt: str, args: tuple[Any, ...]) -> int:
    """The largest width or precision ``fmt`` asks for, reading ``*`` from ``args`` as printf would."""
    widest, used = 0, 0
    for match in _CONVERSION.finditer(fmt):
        if match.group(3) == "%":
            continue
        for part in (match.group(1), match.group(2)):
            if part == "*":
                value, used = (args[used] if used < len(args) else 0), used + 1
                try:
                    widest = max(widest, abs(int(value)))
                except (TypeError, ValueError, OverflowError):
                    pass
            elif part:
                widest = max(widest, int(part))
        used += 1  # the converted argument
    return widest


@contextmanager
def heap_limit(limit_bytes: int = HEAP_LIMIT_BYTES) -> Iterator[None]:
    """Lower SQLite's hard heap limit (process-wide) to ``limit_bytes`` for a query, then restore it.

    ``PRAGMA hard_heap_limit`` can only lower the limit, so the C function is called directly (the
    library the sqlite3 module links to); where it cannot be found, the per-connection caps are all
    there is.
    """
    set_limit = hard_heap_limit_function()
    if set_limit is None:
        yield
        return
    previous = set_limit(-1)  # a negative argument reads the limit without changing it
    set_limit(limit_bytes if previous <= 0 else min(previous, limit_bytes))
    try:
        yield
    finally:
        set_limit(previous)


@functools.cache
def hard_heap_limit_function() -> Callable[[int], int] | None:
    import ctypes

    try:
        import _sqlite3

        function = ctypes.CDLL(_sqlite3.__file__).sqlite3_hard_heap_limit64
    except (ImportError, OSError, AttributeError):
        return None
    function.restype, function.argtypes = ctypes.c_int64, [ctypes.c_int64]
    return function
