"""Engines. Query functions take a connection; the command owns the transaction (`engine.begin()`)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event

from music_classifier.settings import normalise_database_url


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
