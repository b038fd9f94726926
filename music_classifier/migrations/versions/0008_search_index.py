"""Indexes for the `serve` page on a large library (issue 18): the tracks search and the audit queue.

- PostgreSQL: trigram indexes (the ``pg_trgm`` extension) on ``lower(artist)`` and ``lower(title)``,
  the expressions the tracks page's search compares (``db/browse.py``), so a search for a part of a name
  reads a few index pages instead of every track. ``CREATE EXTENSION`` needs a privilege a class's
  database role may not hold (pg_trgm is a trusted extension: the right to create in the database is
  enough, but that is often the administrator's). Then the migration goes on without these two indexes
  and logs one line saying so: the search still answers, by a scan (docs/sql.md: how to add them later).
  SQLite gets no trigram index (it has none; its libraries are small).
- Both databases: a partial index of each audit's suspects (flagged, or heard as another genre) by rank,
  which the audit queue walks for its first suspects and its capped count.

Downgrade drops the indexes and leaves the extension: it belongs to the database, where other schemas
(other classes) may use it.

Revision ID: 0008_search_index
Revises: 0007_label_decisions
Create Date: 2026-12-05
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0008_search_index"
down_revision = "0007_label_decisions"
branch_labels = None
depends_on = None

log = logging.getLogger("music_classifier.migrations")

#: index name -> the expression it holds; db/browse.py's search compares exactly these.
TRIGRAM_INDEXES = {"ix_tracks_artist_trgm": "lower(artist)", "ix_tracks_title_trgm": "lower(title)"}
SUSPECTS_INDEX = "ix_label_issues_suspects"
# The suspects' test as db/browse.py's audit_queue writes it on each database (SQLAlchemy renders a bare
# Boolean column as `= 1` on SQLite): a partial index serves a query only if its predicate is the query's.
SUSPECT = {"postgresql": "flagged OR heard_genre <> sheet_genre", "sqlite": "flagged = 1 OR heard_genre <> sheet_genre"}


def upgrade() -> None:
    op.create_index(SUSPECTS_INDEX, "label_issues", ["audit_id", "rank"],
                    postgresql_where=sa.text(SUSPECT["postgresql"]), sqlite_where=sa.text(SUSPECT["sqlite"]))
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = _trigram_schema(bind)
    if schema is None:
        log.warning("pg_trgm is not available to this database role (CREATE EXTENSION pg_trgm refused): the "
                    "tracks search works without its index, by a scan; docs/sql.md says how to add it")
        return
    opclass = f"{bind.dialect.identifier_preparer.quote_identifier(schema)}.gin_trgm_ops"
    for name, expression in TRIGRAM_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON tracks USING gin ({expression} {opclass})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index(SUSPECTS_INDEX, table_name="label_issues")


def _trigram_schema(bind: sa.Connection) -> str | None:
    """The schema holding pg_trgm (its operator class is named with it: the class's search_path may not
    include it), installing the extension when it is missing and this role may; None when it cannot be.
    A refused CREATE EXTENSION is rolled back to a savepoint, so the rest of the migration goes on."""
    installed = sa.text("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                        "WHERE e.extname = 'pg_trgm'")
    schema = bind.execute(installed).scalar()
    if schema is not None:
        return schema
    # Into the database-wide `public` schema when this role may create there, so that the extension does
    # not belong to (and is not dropped with) one class's schema; else where CREATE EXTENSION puts it.
    in_public = bind.execute(sa.text(
        "SELECT has_schema_privilege(current_user, n.oid, 'CREATE') FROM pg_namespace n "
        "WHERE n.nspname = 'public'")).scalar()
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm" + (" SCHEMA public" if in_public else ""))
    except sa.exc.DBAPIError as exc:
        # Not allowed, not installed on the server, or created meanwhile by another session (then the
        # second check finds it).
        log.debug("CREATE EXTENSION pg_trgm: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
    return bind.execute(installed).scalar()
