"""Read-only queries, enforced by the database rather than by parsing SQL text.

SQLite: the file is opened with ``mode=ro``; the attached-database limit is 0 (``mode=ro`` alone
still lets ``ATTACH`` create a new file and ``VACUUM INTO`` write one); an authorizer allows only
what a SELECT needs and denies everything else (PRAGMA, transactions, DDL, DML, ATTACH,
``load_extension``, ``fts3_tokenizer``); sqlite3 runs one statement per call; a progress handler
enforces the statement timeout; memory is capped (:mod:`.sqlite_limits`).

PostgreSQL: the query runs as a role holding only SELECT (one per database and schema, see
:mod:`.readonly_roles`), checked after connecting (the right role, nothing beyond SELECT), with
``default_transaction_read_only=on`` and a ``statement_timeout``, sent as a prepared statement so
the server itself refuses more than one command (``COMMIT; DROP TABLE x`` never reaches DROP).
Without ``MUSIC_CLASSIFIER_READONLY_URL`` the role connects with the main URL's host, database and
options but no password: fine with trust or peer auth; password deployments set that URL.

Results are streamed (:class:`~.result_limits.QueryStream`, capped by
:class:`~.result_limits.ResultLimits`), never collected: SQLite hands over one row per step (a value
is at most 32 MiB, and what SQLite holds for a row is under its 512 MiB heap limit); PostgreSQL runs
in single-row mode (``cursor.stream``), so the client holds one row at a time, which the server
itself refuses to send above 1 GB. Arrays, JSON, ranges and records arrive as PostgreSQL's text, not
parsed into Python objects that can be many times larger than that text.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from music_classifier.db.readonly_roles import (
    PRIVILEGES_SQL,
    RolePrivileges,
    check_role_name,
    ensure_readonly_role,
    privilege_problems,
    privileges_params,
    readonly_role_name,
)
from music_classifier.db.result_limits import Cut, QueryStream, ResultLimits
from music_classifier.db.sqlite_limits import HEAP_LIMIT_BYTES, CheckedPrintf, heap_limit, limit_connection
from music_classifier.errors import ConfigError, InputError

__all__ = ["QueryResult", "QueryStream", "ResultLimits", "check_role_name", "ensure_readonly_role",
           "open_readonly_query", "open_sqlite_readonly", "readonly_role_name", "readonly_url_for",
           "run_readonly_query"]


# What a SELECT needs; every other action code (PRAGMA, TRANSACTION, ATTACH, INSERT, CREATE_*, ...)
# is denied. SQLITE_FUNCTION covers ordinary functions; load_extension is denied by name on top of
# Python's default of extension loading being off; fts3_tokenizer (enabled in Debian's SQLite)
# returns a pointer into the library and, given a second argument, registers a tokenizer by address.
_SQLITE_ALLOWED = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                             getattr(sqlite3, "SQLITE_RECURSIVE", 33)})
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    cut: Cut | None = None


def run_readonly_query(
    database_url: str,
    sql: str,
    *,
    readonly_url: str | None = None,
    role: str | None = None,
    statement_timeout_ms: int = 30_000,
    limits: ResultLimits | None = None,
) -> QueryResult:
    """:func:`open_readonly_query`, its rows collected in a list (within ``limits``)."""
    with open_readonly_query(database_url, sql, readonly_url=readonly_url, role=role,
                             statement_timeout_ms=statement_timeout_ms, limits=limits) as stream:
        rows = list(stream)
    return QueryResult(stream.columns, rows, stream.cut)


@contextmanager
def open_readonly_query(
    database_url: str,
    sql: str,
    *,
    readonly_url: str | None = None,
    role: str | None = None,
    statement_timeout_ms: int = 30_000,
    limits: ResultLimits | None = None,
) -> Iterator[QueryStream]:
    """Run one read-only statement; the block iterates its rows as they arrive, within ``limits``
    (default :class:`ResultLimits`), and reads ``stream.cut`` afterwards. The connection closes
    with the block, also when it stops iterating early.

    On PostgreSQL the query runs as ``readonly_url``'s user, else as ``role`` (default: this database
    and schema's role, :func:`readonly_role_name`) on the main URL's host and database. Raises
    InputError (one line) when the database refuses the statement, also while rows are read,
    ConfigError when the read-only connection cannot be made or its role can do more than read.
    """
    if not sql.strip():
        raise InputError("empty query")
    limits = limits or ResultLimits()
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with _sqlite_query(url, sql, statement_timeout_ms, limits) as stream:
            yield stream
        return
    if url.get_backend_name() == "postgresql":
        if readonly_url:
            ro_url = make_url(readonly_url)
        else:
            ro_url = readonly_url_for(url, role or _class_role(url, statement_timeout_ms))
        with _postgres_query(ro_url, sql, statement_timeout_ms, limits) as stream:
            yield stream
        return
    raise ConfigError(f"read-only queries are not supported on {url.get_backend_name()}")


# ------------------------------------------------------------------------------------------ SQLite


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action not in _SQLITE_ALLOWED:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def open_sqlite_readonly(path: Path, statement_timeout_ms: int = 30_000) -> sqlite3.Connection:
    """A sqlite3 connection that can only read ``path`` (see the module docstring)."""
    return _open_sqlite_readonly(path, statement_timeout_ms)[0]


def _open_sqlite_readonly(path: Path, statement_timeout_ms: int) -> tuple[sqlite3.Connection, CheckedPrintf]:
    if not path.is_file():
        raise ConfigError(f"database file {path} does not exist")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.execute("PRAGMA query_only = ON")  # belt and braces; the authorizer below forbids PRAGMA from now on
    printf = limit_connection(conn)
    conn.set_authorizer(_sqlite_authorizer)
    deadline_s = statement_timeout_ms / 1000

    started = time.monotonic()

    def _timeout() -> int:
        return 1 if time.monotonic() - started > deadline_s else 0

    conn.set_progress_handler(_timeout, 10_000)
    return conn, printf


@contextmanager
def _sqlite_query(url: URL, sql: str, statement_timeout_ms: int, limits: ResultLimits) -> Iterator[QueryStream]:
    if not url.database or url.database == ":memory:":
        raise ConfigError("the read-only query needs a SQLite database file, not an in-memory database")
    conn, printf = _open_sqlite_readonly(Path(url.database), statement_timeout_ms)
    rows: Iterator[tuple[Any, ...]] | None = None
    try:
        with heap_limit():  # held while rows are read: SQLite builds each row as it is stepped to
            try:
                cursor = conn.execute(sql)
            except (sqlite3.Error, sqlite3.Warning, MemoryError) as exc:
                raise _sqlite_refusal(exc, printf) from None
            columns = [d[0] for d in cursor.description or ()]
            rows = _sqlite_rows(cursor, printf)
            yield QueryStream(columns, rows, limits)
    finally:
        if rows is not None:
            rows.close()  # before the connection: closing the generator closes its cursor
        conn.close()


def _sqlite_rows(cursor: sqlite3.Cursor, printf: CheckedPrintf) -> Iterator[tuple[Any, ...]]:
    """The cursor's rows, one step at a time (never fetchall), with SQLite's errors as one line."""
    try:
        yield from cursor
    except (sqlite3.Error, sqlite3.Warning, MemoryError) as exc:
        raise _sqlite_refusal(exc, printf) from None


def _sqlite_refusal(exc: BaseException, printf: CheckedPrintf) -> InputError:
    if isinstance(exc, MemoryError):
        return InputError(f"query refused: out of memory (SQLite may use {HEAP_LIMIT_BYTES // 2**20} MiB "
                          "for a read-only query)")
    return InputError(f"query refused: {printf.refusal or _first_line(exc)}")


# -------------------------------------------------------------------------------------- PostgreSQL


def readonly_url_for(url: URL | str, role: str) -> URL:
    """The main URL with the user replaced by the read-only role and the password dropped."""
    check_role_name(role)
    # URL.set() treats None as 'leave unchanged'; the tuple's _replace really drops the password.
    return make_url(url)._replace(username=role, password=None)


# The query-string key that would choose who connects. (The URL's own host, port and database are
# passed explicitly and so win over ?host=, ?dbname= or a ?service= file; libpq gives explicit
# parameters precedence over a service file.)
_IDENTITY_KEYS = frozenset({"user"})


def _libpq_options(url: URL, statement_timeout_ms: int, *, read_only: bool = True) -> dict[str, Any]:
    """psycopg.connect keyword arguments, keeping the URL's own query options (search_path, sslmode)
    but never letting the query string pick the user or database (``?user=postgres``)."""
    query = {k: (v[-1] if isinstance(v, tuple) else v) for k, v in url.query.items() if k not in _IDENTITY_KEYS}
    extra = f"-c statement_timeout={int(statement_timeout_ms)}"
    if read_only:
        extra = f"-c default_transaction_read_only=on {extra}"
    query["options"] = f"{query['options']} {extra}" if query.get("options") else extra
    explicit = {"host": url.host, "port": url.port, "dbname": url.database, "user": url.username,
                "password": url.password}
    kwargs: dict[str, Any] = {**query, **{k: v for k, v in explicit.items() if v is not None}}
    return kwargs


def _class_role(url: URL, statement_timeout_ms: int) -> str:
    """This database and schema's read-only role (see readonly_roles), asked of the server with the main URL."""
    import psycopg

    try:
        with psycopg.connect(**_libpq_options(url, statement_timeout_ms), connect_timeout=10) as conn:
            database, schema = conn.execute("SELECT current_database(), current_schema()").fetchone()
    except psycopg.Error as exc:
        raise ConfigError(f"cannot connect to the database to find its read-only role: {_first_line(exc)}") from None
    if not schema:
        raise ConfigError("no current schema (check the search_path of the database URL)")
    return readonly_role_name(database, schema)


# Types psycopg would parse into Python objects (lists, dicts, tuples, ranges) many times the size of
# their text: these are loaded as the text PostgreSQL sends.
_AS_TEXT_TYPES_SQL = ("SELECT oid::int FROM pg_type WHERE typcategory IN ('A', 'C', 'R') "
                      "OR typname IN ('json', 'jsonb', 'record', '_record', 'hstore')")


@contextmanager
def _postgres_query(url: URL, sql: str, statement_timeout_ms: int, limits: ResultLimits) -> Iterator[QueryStream]:
    import psycopg
    from psycopg.types.string import TextLoader

    if not url.username:
        raise ConfigError("the read-only URL must name the read-only role as its user")
    try:
        conn = psycopg.connect(**_libpq_options(url, statement_timeout_ms), connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise ConfigError(
            f"cannot connect as read-only role {url.username!r}: {_first_line(exc)} "
            "(run `music-classifier db grant-readonly`, or set MUSIC_CLASSIFIER_READONLY_URL)"
        ) from None
    rows: Iterator[tuple[Any, ...]] | None = None
    try:
        try:
            _refuse_unless_read_only(conn, url.username)
            for (oid,) in conn.execute(_AS_TEXT_TYPES_SQL):
                conn.adapters.register_loader(oid, TextLoader)
        except psycopg.Error as exc:
            raise _postgres_refusal(exc) from None
        cur = conn.cursor()
        # stream() sends the text as ONE statement of the extended protocol (the server rejects a
        # second command; no client-side splitting or parsing) and reads it in single-row mode.
        rows = _postgres_rows(cur.stream(sql))
        first = next(rows, None)  # the columns are known once the first row is in
        columns = [d.name for d in cur.description or ()] if first is not None else _postgres_columns(conn, sql)
        yield QueryStream(columns, _chain_first(first, rows), limits)
    finally:
        if rows is not None:
            rows.close()  # psycopg cancels the query and drains what was sent, a row at a time
        conn.rollback()
        conn.close()


def _postgres_rows(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    import psycopg

    try:
        yield from rows
    except psycopg.Error as exc:
        raise _postgres_refusal(exc) from None


def _postgres_refusal(exc: Exception) -> InputError:
    import psycopg

    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return InputError(f"query refused: {_first_line(exc)} (the read-only role reads only what "
                          "`music-classifier db grant-readonly` granted)")
    return InputError(f"query refused: {_first_line(exc)}")


def _postgres_columns(conn: Any, sql: str) -> list[str]:
    """The column names of ``sql`` without running it (a Describe of the prepared statement): stream()
    drops the final, empty result that carried them."""
    from psycopg import pq

    name = b"music_classifier_describe"
    pgconn = conn.pgconn
    if pgconn.prepare(name, sql.encode()).status != pq.ExecStatus.COMMAND_OK:
        return []
    try:
        described = pgconn.describe_prepared(name)
        return [(described.fname(i) or b"").decode() for i in range(described.nfields)]
    finally:
        pgconn.exec_(b"DEALLOCATE " + name)


def _chain_first(first: tuple[Any, ...] | None, rest: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    if first is None:
        return
    yield first
    yield from rest


def _refuse_unless_read_only(conn: Any, role: str) -> None:
    """Before the query: the session must be ``role`` and ``role`` must be able to do no more than read."""
    session_user, current_user = conn.execute("SELECT session_user, current_user").fetchone()
    if session_user != role or current_user != role:
        raise ConfigError(f"refusing to query: connected as {current_user!r}, not the read-only role {role!r}")
    privileges = RolePrivileges(*conn.execute(PRIVILEGES_SQL, privileges_params(None)).fetchone())
    problems = privilege_problems(privileges)
    if problems:
        raise ConfigError(f"refusing to query as {role!r}: it is not read-only ({'; '.join(problems)}); "
                          "use the role `music-classifier db grant-readonly` creates")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
