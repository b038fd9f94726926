"""The tracks search's trigram indexes, added by ``db upgrade`` once ``pg_trgm`` is there.

Migration 0008 creates them when it can install ``pg_trgm``; a role that may not create the extension
reaches head without them (one warning line). When an administrator creates the extension later, the
next ``music-classifier db upgrade`` adds the missing indexes here, with no downgrade: a downgrade past
later migrations would also undo what they carry. The names and expressions are 0008's (a migration
keeps its own frozen copy; these must stay equal to it, which tests/test_migrations.py checks).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

TRIGRAM_INDEXES = {"ix_tracks_artist_trgm": "lower(artist)", "ix_tracks_title_trgm": "lower(title)"}


def add_missing_trigram_indexes(conn: Connection) -> list[str]:
    """Create the trigram indexes missing from the current schema's ``tracks`` when ``pg_trgm`` is
    installed; the names created (none on SQLite, without the extension, or when all exist)."""
    if conn.dialect.name != "postgresql":
        return []
    schema = conn.execute(text("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                               "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'")).scalar()
    if schema is None:
        return []
    present = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                                    "AND tablename = 'tracks'")).scalars())
    opclass = f"{conn.dialect.identifier_preparer.quote_identifier(schema)}.gin_trgm_ops"
    created = []
    for name, expression in TRIGRAM_INDEXES.items():
        if name not in present:
            conn.exec_driver_sql(f"CREATE INDEX {name} ON tracks USING gin ({expression} {opclass})")
            created.append(name)
    return created
