"""Alembic environment for SQLite and PostgreSQL.

SQLite: batch mode (ALTER TABLE is limited there), and foreign keys switched OFF for the migration:
batch mode recreates tables, and with ``PRAGMA foreign_keys=ON`` dropping the old table fires
``ON DELETE CASCADE`` and empties every child table. After the migration ``PRAGMA foreign_key_check``
must come back empty, or the migration fails.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from music_classifier.db.tables import metadata

config = context.config


def _engine():
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    from music_classifier.db.engine import make_engine
    from music_classifier.settings import get_settings

    return make_engine(get_settings().resolved_database_url)


def run_migrations_offline() -> None:
    from music_classifier.settings import get_settings

    context.configure(
        url=get_settings().resolved_database_url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = _engine()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # Must happen outside a transaction: the pragma is a no-op inside one.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=sqlite,
                transaction_per_migration=False,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    problems = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
                    if problems:
                        raise RuntimeError(f"migration left dangling foreign keys: {problems[:5]}")
            connection.commit()
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
