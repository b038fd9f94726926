"""Copy every row of one migrated database into another (tests: run SQLite-built data on PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select, text

from music_classifier.db.tables import metadata


def copy_rows(source: Engine, target: Engine) -> dict[str, int]:
    """Replace the rows of every project table in ``target`` (migrated to the same head) with ``source``'s.

    Rows keep their ids; PostgreSQL sequences are moved past them. Returns rows copied per table.
    """
    copied: dict[str, int] = {}
    with source.connect() as src, target.begin() as dst:
        for table in reversed(metadata.sorted_tables):
            dst.execute(delete(table))  # the migrations' seed rows (default genres and aliases)
        for table in metadata.sorted_tables:
            rows = [dict(r._mapping) for r in src.execute(select(table))]
            if rows:
                dst.execute(insert(table), rows)
            copied[table.name] = len(rows)
            if dst.dialect.name == "postgresql" and "id" in table.c and rows:
                dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                 f"(SELECT MAX(id) FROM {table.name}))"))
    return copied
