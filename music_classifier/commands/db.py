"""`music-classifier db …`: schema migrations."""

from __future__ import annotations

import typer

from music_classifier.commands.common import bold, console, handle_errors, state, styled

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

    st = state(ctx)
    st.create_database = True  # the one command that may create a new SQLite file
    engine = st.engine
    added = migrate.upgrade(engine, revision)
    if added:
        console.print(f"added the search's trigram indexes now that pg_trgm is installed: {', '.join(added)}",
                      markup=False)
    console.print(styled("database at revision ", bold(migrate.current_revision(engine))))


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
    console.print(styled("database at revision ", bold(migrate.current_revision(engine))))


@db_app.command("current")
@handle_errors
def current(ctx: typer.Context) -> None:
    """Show the database's revision and the newest one available.

    Example: music-classifier db current
    """
    from music_classifier.db import migrate

    console.print(f"current: {migrate.current_revision(state(ctx).engine)}  head: {migrate.head_revision()}")


@db_app.command("grant-readonly")
@handle_errors
def grant_readonly(
    ctx: typer.Context,
    role: str | None = typer.Option(None, "--role", help="Role name (default: MUSIC_CLASSIFIER_READONLY_ROLE, "
                                                          "else one derived from the database and schema)."),
) -> None:
    """PostgreSQL: create this schema's login role holding only SELECT, for `music-classifier sql`.

    Each database and schema (each class) gets its own role, so one class cannot read another's. An
    existing role is reused only if this command made it for this database and schema and it still
    holds nothing but SELECT here; otherwise nothing is granted.

    Example: music-classifier --db postgresql://localhost/class db grant-readonly
    """
    from music_classifier.db.readonly_roles import ensure_readonly_role

    st = state(ctx)
    if st.engine.dialect.name != "postgresql":
        console.print("nothing to do on SQLite: `music-classifier sql` opens the file read-only")
        return
    with st.engine.begin() as conn:
        role_name, schema = ensure_readonly_role(conn, role or st.settings.readonly_role)
    console.print(f"role {role_name} can SELECT in schema {schema} (and nothing else)", markup=False,
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
