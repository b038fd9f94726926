"""`music-classifier audio …`: link the audio library's files to tracks."""

from __future__ import annotations

from pathlib import Path

import typer

from music_classifier.commands.common import console, err_console, handle_errors, state

audio_app = typer.Typer(
    help="Scan the audio library and link files to tracks.\n\nExample: music-classifier --library ~/music audio scan",
    no_args_is_help=True,
)


class _RichHashProgress:
    """A transient rich progress bar (bytes hashed) on stderr, so stdout stays the report."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("hashing {task.fields[files]} files"), BarColumn(), DownloadColumn(),
                                  TimeRemainingColumn(), console=err_console, transient=True)
        self._task = None

    def __enter__(self) -> _RichHashProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, total_bytes: int, files: int) -> None:
        self._task = self._progress.add_task("hash", total=total_bytes, files=files)

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, nbytes)


@audio_app.command("scan")
@handle_errors
def scan(
    ctx: typer.Context,
    directory: Path | None = typer.Argument(
        None, metavar="[DIR]", help="Directory inside the library root to scan (default: the whole root)."),
    add_unmatched: bool = typer.Option(
        False, "--add-unmatched", help="Register files that match no track as new tracks (needs --genre)."),
    genre: str | None = typer.Option(
        None, "--genre", metavar="G", help="Coarse genre of the files --add-unmatched adds."),
) -> None:
    """Link audio files (mp3, flac, ogg, wav; m4a with ffmpeg) to tracks by tags, file name or fuzzy match.

    Records path, sha256, duration, sample rate and channels; a changed file marks its features stale.

    Example: music-classifier --library ~/music audio scan ~/music/jazz --add-unmatched --genre Jazz
    """
    from music_classifier.errors import ConfigError
    from music_classifier.ingest.audio_scan import scan_library

    if add_unmatched and not genre:
        raise ConfigError("--add-unmatched needs --genre G (the coarse genre of the files it adds)")
    if genre and not add_unmatched:
        raise ConfigError("--genre only applies with --add-unmatched")
    st = state(ctx)
    with st.engine.begin() as conn, _RichHashProgress() as progress:
        report = scan_library(conn, root=st.settings.library_root, subdir=directory,
                              add_unmatched_genre=genre if add_unmatched else None, progress=progress)
    _print_report(report)


def _print_report(report) -> None:  # noqa: ANN001 - ScanReport, imported lazily
    from rich.markup import escape
    from rich.table import Table

    console.print(f"audio scan of [bold]{escape(str(report.directory))}[/]", soft_wrap=True)
    summary = Table(show_header=False)
    summary.add_column("what")
    summary.add_column("count", justify="right")
    how: dict[str, int] = {}
    for m in report.matched:
        how[m.how] = how.get(m.how, 0) + 1
    rows = [
        ("audio files found", report.files_seen),
        ("matched to tracks", len(report.matched)),
        *((f"  by {k}", v) for k, v in sorted(how.items())),
        ("tracks updated", report.updated),
        ("tracks unchanged", report.unchanged),
        ("features marked stale", report.marked_stale),
        ("new tracks added", len(report.added)),
        ("unmatched files", len(report.unmatched)),
        ("skipped files", len(report.skipped)),
        ("live tracks without audio", len(report.without_audio)),
    ]
    for label, count in rows:
        summary.add_row(label, str(count))
    console.print(summary)
    for spelling, display in report.genre_applied.items():
        console.print(f"genre {spelling!r} -> {display!r}", markup=False, highlight=False)
    _listing("unmatched files", ("file", "artist", "title", "reason"),
             [(u.path, u.artist or "", u.title or "", u.reason) for u in report.unmatched])
    _listing("skipped files", ("file", "reason"), [(s.path, s.reason) for s in report.skipped])
    _listing("live tracks without audio", ("track", "artist", "title", "reason"),
             [(str(t.track_id), t.artist, t.title, t.reason) for t in report.without_audio])


def _listing(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    if not rows:
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # file names may hold "[...]": never markup
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(audio_app, name="audio")
