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
"""

from __future__ import annotations

import sqlite3
import time
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
from music_classifier.db.sqlite_limits import HEAP_LIMIT_BYTES, CheckedPrintf, heap_limit, limit_connection
from music_classifier.errors import ConfigError, InputError

__all__ = ["QueryResult", "check_role_name", "ensure_readonly_role", "open_sqlite_readonly", "readonly_role_name",
           "readonly_url_for", "run_readonly_query"]


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


def run_readonly_query(
    database_url: str,
    sql: str,
    *,
    readonly_url: str | None = None,
    role: str | None = None,
    statement_timeout_ms: int = 30_000,
) -> QueryResult:
    """Run one read-only statement and return its columns and rows.

    On PostgreSQL the query runs as ``readonly_url``'s user, else as ``role`` (default: this database
    and schema's role, :func:`readonly_role_name`) on the main URL's host and database. Raises
    InputError (one line) when the database refuses the statement, ConfigError when the read-only
    connection cannot be made or its role can do more than read.
    """
    if not sql.strip():
        raise InputError("empty query")
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_query(url, sql, statement_timeout_ms)
    if url.get_backend_name() == "postgresql":
        if readonly_url:
            ro_url = make_url(readonly_url)
        else:
            ro_url = readonly_url_for(url, role or _class_role(url, statement_timeout_ms))
        return _postgres_query(ro_url, sql, statement_timeout_ms)
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


def _sqlite_query(url: URL, sql: str, statement_timeout_ms: int) -> QueryResult:
    if not url.database or url.database == ":memory:":
        raise ConfigError("the read-only query needs a SQLite database file, not an in-memory database")
    conn, printf = _open_sqlite_readonly(Path(url.database), statement_timeout_ms)
    try:
        with heap_limit():
            cursor = conn.execute(sql)
            rows = cursor.fetchall()
            columns = [d[0] for d in cursor.description or ()]
    except (sqlite3.Error, sqlite3.Warning) as exc:
        raise InputError(f"query refused: {printf.refusal or _first_line(exc)}") from None
    except MemoryError:
        raise InputError(f"query refused: out of memory (SQLite may use {HEAP_LIMIT_BYTES // 2**20} MiB "
                         "for a read-only query)") from None
    finally:
        conn.close()
    return QueryResult(columns, [tuple(r) for r in rows])


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


def _postgres_query(url: URL, sql: str, statement_timeout_ms: int) -> QueryResult:
    import psycopg

    if not url.username:
        raise ConfigError("the read-only URL must name the read-only role as its user")
    try:
        conn = psycopg.connect(**_libpq_options(url, statement_timeout_ms), connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise ConfigError(
            f"cannot connect as read-only role {url.username!r}: {_first_line(exc)} "
            "(run `music-classifier db grant-readonly`, or set MUSIC_CLASSIFIER_READONLY_URL)"
        ) from None
    try:
        _refuse_unless_read_only(conn, url.username)
        with conn.cursor() as cur:
            # prepare=True sends the text as ONE prepared statement: the server rejects a second
            # command, and no client-side splitting or parsing is involved.
            cur.execute(sql, prepare=True)
            columns = [d.name for d in cur.description or ()]
            rows = cur.fetchall() if cur.description else []
    except psycopg.errors.InsufficientPrivilege as exc:
        raise InputError(f"query refused: {_first_line(exc)} (the read-only role reads only what "
                         "`music-classifier db grant-readonly` granted)") from None
    except psycopg.Error as exc:
        raise InputError(f"query refused: {_first_line(exc)}") from None
    finally:
        conn.rollback()
        conn.close()
    return QueryResult(columns, [tuple(r) for r in rows])


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
