"""`music-classifier genres …`: tracks per coarse genre, and genre aliases."""

from __future__ import annotations

import typer

from music_classifier.commands.common import console, handle_errors, state

genres_app = typer.Typer(
    help="Tracks per coarse genre; genre aliases.\n\nExample: music-classifier genres --top 8 --min 40",
    invoke_without_command=True,
)


@genres_app.callback(invoke_without_command=True)
@handle_errors
def report(
    ctx: typer.Context,
    top: int = typer.Option(10, "--top", metavar="N", min=1, help="How many of the biggest genres to check."),
    min_tracks: int = typer.Option(
        30, "--min", metavar="K", min=1, help="Tracks each of the top N genres should have."),
) -> None:
    """Show live tracks per coarse genre (with audio, with a Spotify id) and what the top N genres lack to reach K.

    Example: music-classifier genres --top 8 --min 40
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table
    from rich.text import Text

    from music_classifier.ingest.genre_report import genre_report

    with state(ctx).engine.connect() as conn:
        result = genre_report(conn, top=top, min_tracks=min_tracks)
    table = Table(title="live tracks per coarse genre")
    for column in ("genre", "tracks", "with audio", "with Spotify id"):
        table.add_column(column, justify="left" if column == "genre" else "right")
    for c in result.counts:
        table.add_row(Text(c.genre), str(c.tracks), str(c.with_audio), str(c.with_spotify_id))
    console.print(table)
    if not result.counts:
        console.print("no live tracks with a coarse genre yet")
        return
    n = min(result.top, len(result.counts))
    if not result.shortfalls:
        console.print(f"all top {n} genres have at least {result.min_tracks} tracks with audio")
        return
    short = Table(title=f"top {n} genres below {result.min_tracks} tracks")
    for column in ("genre", "tracks", "need tracks", "need with audio"):
        short.add_column(column, justify="left" if column == "genre" else "right")
    for s in result.shortfalls:
        short.add_row(Text(s.genre), str(s.tracks), str(s.need_tracks), str(s.need_audio))
    console.print(short)


@genres_app.command("alias")
@handle_errors
def alias(
    ctx: typer.Context,
    source: str = typer.Argument(..., metavar="FROM", help="The spelling to map, e.g. Indi_Rock."),
    target: str = typer.Argument(..., metavar="TO", help="The genre it means, e.g. 'Indie Rock' (created if new)."),
) -> None:
    """Make FROM a spelling of genre TO, for every track source; tracks filed under FROM move to TO.

    Example: music-classifier genres alias Indi_Rock "Indie Rock"
    """
    from music_classifier.ingest.genres import add_alias

    with state(ctx).engine.begin() as conn:
        alias_key, display = add_alias(conn, source, target)
    console.print(f"genre alias: {source!r} (key {alias_key!r}) -> {display!r}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(genres_app, name="genres")
