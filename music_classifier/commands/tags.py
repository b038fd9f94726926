"""`music-classifier tags TRACK|FILE`: the Million Song Dataset tags the musicnn network hears."""

from __future__ import annotations

from pathlib import Path

import typer

from music_classifier.commands.common import console, handle_errors, state


def tags(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="TRACK|FILE",
                                 help="A stored track id (its stored taggram), or an audio file (computed now)."),
    k: int = typer.Option(10, "--k", help="How many tags (1-50)."),
) -> None:
    """The top MSD tags of a track (stored musicnn taggram) or of an audio file (computed), most likely first.

    Example: music-classifier tags 12 --k 5
    """
    from rich.table import Table

    from music_classifier.db.tags import check_k, track_top_tags

    check_k(k)
    if target.isdigit() and not Path(target).is_file():
        with state(ctx).engine.connect() as conn:
            found = track_top_tags(conn, int(target), k=k)
        top = found.tags
        heading = f"track {found.track_id} ({found.artist} - {found.title}): stored musicnn extraction " \
                  f"{found.extraction_id}"
    else:
        from music_classifier.jobs.audio_extract import file_top_tags

        with console.status("running musicnn…"):
            top = file_top_tags(Path(target), k=k)
        heading = f"file {target}: computed now"
    console.print(heading, markup=False, highlight=False)
    table = Table("#", "MSD tag", "probability", "")
    for i, (tag, score) in enumerate(top, start=1):
        table.add_row(str(i), tag, f"{score:.3f}", "█" * max(1, round(20 * score)))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("tags")(handle_errors(tags))
