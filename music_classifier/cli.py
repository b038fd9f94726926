"""The ``music-classifier`` command line.

A command parses its options, calls one library function and maps domain errors to a one-line
message and an exit code. Each group lives in ``music_classifier.commands.<name>`` and exposes
``register(app)``; nothing below this module imports it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from music_classifier.commands.common import state

app = typer.Typer(
    name="music-classifier",
    help="A class's song sheet -> SQL tables -> audio features -> genre classifiers.\n\n"
    "Example: music-classifier --db sqlite:///class.db sheet sync --csv songs.csv",
    no_args_is_help=True,
    rich_markup_mode=None,  # help text is shown as written: "[a-z]{0,40}" must not be read as markup
    pretty_exceptions_enable=False,
)

# Each module registers its commands on `app`. Order is the order of `--help`.
COMMAND_MODULES = [
    "db",
    "sheet",
    "audio",
    "genres",
    "sql",
    "features",
    "jobs",
    "spotify",
    "imports",
    "models",
    "demo",
    "plots",
    "audit",
    "labels",
    "tags",
    "serve",
]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"music-classifier {version('music-classifier')}")
        except PackageNotFoundError:  # running from a source tree that was never installed
            typer.echo("music-classifier (not installed: version unknown)")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: str | None = typer.Option(
        None, "--db", metavar="URL", help="Database URL (default: DATABASE_URL, else ./music_classifier.db)."
    ),
    library: Path | None = typer.Option(
        None, "--library", metavar="DIR",
        help="Audio library root, set once: its first use is remembered by the database (default: "
             "MUSIC_CLASSIFIER_LIBRARY, else the remembered root)."
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
) -> None:
    """A class's song sheet -> SQL tables -> audio features -> genre classifiers.

    Example: music-classifier --db postgresql://localhost/class sheet sync --sheet KEY
    """
    st = state(ctx)
    st.db = db
    st.library = library


for _name in COMMAND_MODULES:
    importlib.import_module(f"music_classifier.commands.{_name}").register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
