"""Drive Alembic from code, pointing at the package's migrations so it works from an installed wheel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py reuses this engine instead of building its own, so tests and the CLI share one URL.
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> list[str]:
    """Migrate to ``revision``; at head, also add the search's trigram indexes that migration 0008 could
    not create then (``pg_trgm`` installed since). Returns the names of the indexes so added."""
    with _revision_errors(revision):
        command.upgrade(alembic_config(engine), revision)
    if revision != "head" or engine.dialect.name != "postgresql":
        return []
    from music_classifier.db.search_indexes import add_missing_trigram_indexes

    with engine.begin() as conn:
        return add_missing_trigram_indexes(conn)


def downgrade(engine: Engine, revision: str) -> None:
    with _revision_errors(revision):
        command.downgrade(alembic_config(engine), revision)


@contextmanager
def _revision_errors(revision: str) -> Iterator[None]:
    """Alembic's refusal of a revision it cannot resolve (a typo) as one line naming it."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    from music_classifier.errors import InputError

    try:
        yield
    except (CommandError, RevisionError) as exc:
        raise InputError(f"revision {revision!r}: {str(exc).splitlines()[0]} "
                         "(revision ids look like 0003_models, or head, base, -1)") from None


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def has_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("tracks")
