"""`music-classifier db …`: schema migrations."""

from __future__ import annotations

import typer

from music_classifier.commands.common import console, handle_errors, state

db_app = typer.Typer(help="Create and migrate the database schema.\n\nExample: music-classifier db upgrade",
                     no_args_is_help=True)


@db_app.command("upgrade")
@handle_errors
def upgrade(
    ctx: typer.Context,
    revision: str = typer.Argument("head", help="Target revision."),
) -> None:
    """Apply migrations up to REVISION (default: head).

    Example: music-classifier --db sqlite:///class.db db upgrade
    """
    from music_classifier.db import migrate

    engine = state(ctx).engine
    migrate.upgrade(engine, revision)
    console.print(f"database at revision [bold]{migrate.current_revision(engine)}[/]")


@db_app.command("downgrade")
@handle_errors
def downgrade(
    ctx: typer.Context,
    revision: str = typer.Argument(..., help="Target revision, e.g. -1 or base."),
) -> None:
    """Revert migrations down to REVISION.

    Example: music-classifier db downgrade -1
    """
    from music_classifier.db import migrate

    engine = state(ctx).engine
    migrate.downgrade(engine, revision)
    console.print(f"database at revision [bold]{migrate.current_revision(engine)}[/]")


@db_app.command("current")
@handle_errors
def current(ctx: typer.Context) -> None:
    """Show the database's revision and the newest one available.

    Example: music-classifier db current
    """
    from music_classifier.db import migrate

    console.print(f"current: {migrate.current_revision(state(ctx).engine)}  head: {migrate.head_revision()}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
