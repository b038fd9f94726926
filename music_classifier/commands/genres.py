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
    source: list[str] | None = typer.Option(
        None, "--source", metavar="S",
        help="Count only tracks from this source (repeatable): sheet, file, spotify_playlist, csv."),
) -> None:
    """Show live tracks per coarse genre, per source (sheet, file, spotify_playlist, csv), with audio and with
    a Spotify id, and what the top N genres lack to reach K.

    Example: music-classifier genres --top 8 --min 40 --source sheet --source file
    """
    if ctx.invoked_subcommand is not None:
        return
    from music_classifier.ingest.genre_report import genre_report

    with state(ctx).engine.connect() as conn:
        result = genre_report(conn, top=top, min_tracks=min_tracks, sources=source)
    console.print(_genre_table("live tracks per coarse genre", ("tracks", *result.sources, "with audio",
                                                                 "with Spotify id"),
                               [(c.genre, c.tracks, *(result.by_source.get(c.genre, {}).get(s, 0)
                                                       for s in result.sources), c.with_audio, c.with_spotify_id)
                                for c in result.counts]))
    if not result.counts:
        console.print("no live tracks with a coarse genre yet")
        return
    n = min(result.top, len(result.counts))
    if not result.shortfalls:
        console.print(f"all top {n} genres have at least {result.min_tracks} tracks with audio")
        return
    console.print(_genre_table(f"top {n} genres below {result.min_tracks} tracks",
                               ("tracks", "need tracks", "need with audio"),
                               [(s.genre, s.tracks, s.need_tracks, s.need_audio) for s in result.shortfalls]))


def _genre_table(title: str, count_columns: tuple[str, ...], rows: list[tuple[str, *tuple[int, ...]]]):  # noqa: ANN202
    """A genre column (as plain text: genre names are not Rich markup) then right-aligned counts."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    table.add_column("genre")
    for column in count_columns:
        table.add_column(column, justify="right")
    for genre, *counts in rows:
        table.add_row(Text(genre), *(str(c) for c in counts))
    return table


@genres_app.command("alias")
@handle_errors
def alias(
    ctx: typer.Context,
    source: str = typer.Argument(..., metavar="FROM", help="The spelling to map, e.g. Indi_Rock."),
    target: str = typer.Argument(..., metavar="TO", help="The genre it means, e.g. 'Indie Rock' (it must exist)."),
    new_genre: bool = typer.Option(False, "--new-genre", help="Create TO when no genre of that name exists yet."),
) -> None:
    """Make FROM a spelling of genre TO, for every track source. When FROM is a genre, it is merged into TO:
    its tracks and dataset members move to TO, dataset views are rebuilt, models keep their recorded genres.

    Example: music-classifier genres alias Indi_Rock "Indie Rock"
    """
    from music_classifier.ingest.genres import add_alias

    with state(ctx).engine.begin() as conn:  # one transaction: a refusal or a failure writes nothing
        result = add_alias(conn, source, target, new_genre=new_genre)
    console.print(result.describe(source), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(genres_app, name="genres")
