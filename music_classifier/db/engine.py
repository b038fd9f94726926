"""Engines. Query functions take a connection; the command owns the transaction (`engine.begin()`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from music_classifier.errors import ConfigError
from music_classifier.settings import normalise_database_url

SUPPORTED_DATABASES = ("sqlite", "postgresql")
URL_EXAMPLES = "sqlite:///class.db or postgresql://user@host/db"


def check_database_url(url: str, *, must_exist: bool = True) -> None:
    """Refuse in one line (ConfigError) a URL that :func:`make_engine` would turn into a traceback,
    or, with ``must_exist``, a SQLite file that does not exist (which connecting would create empty:
    a typo in ``--db`` must not look like an empty class). The password is never shown."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(normalise_database_url(url))
    except ArgumentError:
        raise ConfigError(f"--db / DATABASE_URL {url.split('@')[-1]!r} is not a database URL "
                          f"(e.g. {URL_EXAMPLES})") from None
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_DATABASES:
        raise ConfigError(f"--db / DATABASE_URL {shown}: unsupported database {backend!r}; music-classifier runs "
                          f"on SQLite and PostgreSQL (e.g. {URL_EXAMPLES})")
    if backend == "sqlite" and must_exist:
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file:")
        if not in_memory and not Path(database).exists():
            raise ConfigError(f"database file {database} does not exist: check --db / DATABASE_URL, or create it "
                              "with `music-classifier db upgrade`")


def open_engine(url: str, *, must_exist: bool = True, **kwargs: object) -> Engine:
    """:func:`check_database_url`, then :func:`make_engine`; a missing database driver is one line too."""
    check_database_url(url, must_exist=must_exist)
    from sqlalchemy.exc import NoSuchModuleError

    try:
        return make_engine(url, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        from sqlalchemy.engine import make_url

        shown = make_url(normalise_database_url(url)).render_as_string(hide_password=True)
        raise ConfigError(f"--db / DATABASE_URL {shown}: database driver not available ({exc}); "
                          f"use {URL_EXAMPLES}") from None


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create an engine; on SQLite, enforce foreign keys and wait for locks instead of failing."""
    url = normalise_database_url(url)
    engine = create_engine(url, future=True, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine
