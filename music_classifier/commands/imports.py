"""`music-classifier spotify import-csv` and `music-classifier features import-csv`: public feature tables.

The commands join the `spotify` and `features` groups, which their own modules create and register.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from music_classifier.commands.common import console, handle_errors, state
from music_classifier.commands.features import features_app
from music_classifier.commands.spotify import spotify_app

if TYPE_CHECKING:
    from music_classifier.ingest.csv_import import ImportReport

MAX_BAD_ROWS_SHOWN = 20


@spotify_app.command("import-csv")
@handle_errors
def spotify_import_csv(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="A Spotify audio-features CSV (e.g. spotify_songs.csv)."),
    layout: str | None = typer.Option(
        None, "--layout", metavar="NAME", help="tidytuesday or tracks114k (default: detected from the header)."),
    strict: bool = typer.Option(False, "--strict", help="Refuse the whole file if any row is bad."),
) -> None:
    """Load a public Spotify-features dataset as tracks (source csv), genres and Spotify features.

    The first row of each track id wins (later rows are the same song in other playlists); genres
    go through the alias table (edm -> Electronic, rap -> Hip-Hop). Bad rows are skipped and listed
    with their line numbers (exit code 3), or with --strict nothing is written.

    Example: music-classifier spotify import-csv ../shared/data/tables/spotify_songs.csv
    """
    from music_classifier.ingest.csv_import import import_spotify_csv

    with console.status("importing…") as status, state(ctx).engine.begin() as conn:
        report = import_spotify_csv(conn, file, layout=layout, strict=strict,
                                    progress=lambda msg: status.update(Text(msg)))
    _finish(report)


@features_app.command("import-csv")
@handle_errors
def features_import_csv(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="The GTZAN feature table (features_30_sec.csv)."),
    layout: str = typer.Option("gtzan", "--layout", metavar="NAME", help="Table layout: gtzan."),
    strict: bool = typer.Option(False, "--strict", help="Refuse the whole file if any row is bad."),
) -> None:
    """Load the published GTZAN feature table as extractor gtzan_csv (never mixed with computed librosa features).

    Tracks are keyed gtzan:<filename> (artist GTZAN), the genre comes from `label` through the
    alias table. Bad rows are skipped and listed with their line numbers (exit code 3).

    Example: music-classifier features import-csv ../shared/data/tables/gtzan_features_30_sec.csv --layout gtzan
    """
    from music_classifier.errors import InputError
    from music_classifier.ingest.csv_import import import_gtzan_csv

    if layout != "gtzan":
        raise InputError(f"--layout {layout!r}: features import-csv reads the gtzan layout; "
                         "Spotify tables go through `music-classifier spotify import-csv`")
    with console.status("importing…") as status, state(ctx).engine.begin() as conn:
        report = import_gtzan_csv(conn, file, strict=strict, progress=lambda msg: status.update(Text(msg)))
    _finish(report)


def _finish(report: ImportReport) -> None:
    """Print the summary; exit 3 (after the commit) when rows were skipped."""
    from music_classifier.errors import PartialSuccess

    console.print(
        f"{report.file} ({report.layout} layout, extractor {report.extractor}): {report.rows_read:,} rows read; "
        f"tracks: {report.tracks_added:,} added, {report.tracks_updated:,} updated, "
        f"{report.tracks_unchanged:,} unchanged; {report.duplicates_skipped:,} duplicate rows skipped "
        f"(first row per id kept); {len(report.bad_rows):,} bad rows", highlight=False)
    if report.genre_counts:
        counts = ", ".join(f"{name} {n:,}" for name, n in report.genre_counts.items())
        console.print(f"genres: {counts}", highlight=False)
    if report.genre_mapping_applied:
        mapping = ", ".join(f"{raw} -> {disp}" for raw, disp in report.genre_mapping_applied.items())
        console.print(f"genre aliases applied: {mapping}", highlight=False)
    if report.genres_created:
        console.print(f"genres created: {', '.join(report.genres_created)}", highlight=False)
    for bad in report.bad_rows[:MAX_BAD_ROWS_SHOWN]:
        console.print(f"  skipped {bad}", highlight=False, markup=False)
    if len(report.bad_rows) > MAX_BAD_ROWS_SHOWN:
        console.print(f"  … and {len(report.bad_rows) - MAX_BAD_ROWS_SHOWN:,} more bad rows", highlight=False)
    if report.bad_rows:
        raise PartialSuccess(f"{len(report.bad_rows):,} bad row(s) skipped (first {report.bad_rows[0]}); "
                             "the other rows were imported")


def register(app: typer.Typer) -> None:
    """Nothing to add: the commands live on the `spotify` and `features` groups, registered by their modules."""
