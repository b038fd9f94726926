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
        None, metavar="[DIR]",
        help="Directory inside the library root to scan, relative to the root (default: the whole root). The "
             "first scan, with no root set, makes DIR (default: the working directory) the root."),
    add_unmatched: bool = typer.Option(
        False, "--add-unmatched", help="Register files that match no track as new tracks (needs --genre)."),
    genre: str | None = typer.Option(
        None, "--genre", metavar="G", help="Coarse genre of the files --add-unmatched adds."),
    genre_from_folder: bool = typer.Option(
        False, "--genre-from-folder",
        help="Register files that match no track as new tracks whose coarse genre is their top folder below DIR."),
    new_genre: bool = typer.Option(
        False, "--new-genre",
        help="Create a genre (--genre G, or a folder's) even though it looks like a typo of a known one (Jaz/Jazz)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (for scripts) instead of tables."),
    move_root: bool = typer.Option(
        False, "--move-root",
        help="Make DIR (or --library DIR) the library root in place of the stored one, rewriting the stored audio "
             "paths to stay relative to it; without it a scan of another root is refused."),
) -> None:
    """Link audio files (mp3, flac, ogg, wav; m4a with ffmpeg) to tracks by tags, file name or fuzzy match.

    Records path, sha256, duration, sample rate and channels; a changed file marks its features stale.
    Every unmatched file and every track without audio is listed with its closest candidates and the
    command that fixes it (README: "How files are matched").

    Example: music-classifier audio scan ../shared/data/audio/gtzan_subset_zenny126 --genre-from-folder
    """
    from music_classifier.errors import ConfigError
    from music_classifier.ingest.audio_scan import scan_library

    if add_unmatched and not genre:
        raise ConfigError("--add-unmatched needs --genre G (the coarse genre of the files it adds)")
    if genre and not add_unmatched:
        raise ConfigError("--genre only applies with --add-unmatched")
    if new_genre and not (genre or genre_from_folder):
        raise ConfigError("--new-genre only applies with --add-unmatched --genre G or --genre-from-folder")
    if genre_from_folder and add_unmatched:
        raise ConfigError("--genre-from-folder and --add-unmatched --genre G exclude each other")
    st = state(ctx)
    with st.engine.begin() as conn, _RichHashProgress() as progress:
        report = scan_library(conn, root=st.settings.library, subdir=directory,
                              add_unmatched_genre=genre if add_unmatched else None,
                              genre_from_folder=genre_from_folder, new_genre=new_genre, progress=progress,
                              move_root=move_root)
    if as_json:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    _print_report(report)


@audio_app.command("link")
@handle_errors
def link(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="Audio file inside the library root (relative to the root "
                                "or the working directory, or absolute)."),
    track: int = typer.Option(..., "--track", metavar="ID", help="Id of the track this file is the audio of."),
) -> None:
    """Link one audio file to one track: the fix `audio scan` offers for a file or track it could not match.

    Later scans keep the link. A file linked to another track moves (that track's features turn stale).

    Example: music-classifier audio link "rock/03 - Innuendo.mp3" --track 12
    """
    from music_classifier.ingest.audio_link import link_file

    st = state(ctx)
    with st.engine.begin() as conn:
        result = link_file(conn, root=st.settings.library, file=file, track_id=track)
    what = "linked" if result.changed else "already linked"
    line = f"{what}: {result.path} -> track #{result.track_id} ({result.artist} - {result.title})"
    if result.taken_from is not None:
        line += f"; unlinked from track #{result.taken_from}"
    if result.replaced_path is not None:
        line += f"; replaces {result.replaced_path}"
    if result.marked_stale:
        line += f"; {result.marked_stale} feature extraction(s) marked stale"
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_report(report) -> None:  # noqa: ANN001 - ScanReport, imported lazily
    from rich.table import Table
    from rich.text import Text

    console.print(f"audio scan of {report.directory}", markup=False, highlight=False, soft_wrap=True)
    console.print(report.root_note, markup=False, highlight=False, soft_wrap=True)
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
        *((f"  genre {g}", n) for g, n in report.added_per_genre.items()),
        ("unmatched files", len(report.unmatched)),
        ("copies of known audio", len(report.copies)),
        ("skipped files", len(report.skipped)),
        ("live tracks without audio", len(report.without_audio)),
    ]
    for label, count in rows:
        summary.add_row(Text(label), str(count))  # genre names are user data: never markup
    console.print(summary)
    for spelling, display in report.genre_applied.items():
        console.print(f"genre {spelling!r} -> {display!r}", markup=False, highlight=False)
    _misses("unmatched files", [
        (u.path + (f"  (read as: {_song(u.artist, u.title)})" if u.artist or u.title else ""), u.reason,
         [f"#{c.track_id} {_song(c.artist, c.title)} ({c.score:.0f})" for c in u.candidates], u.fix)
        for u in report.unmatched])
    _copies(report)
    _shared_audio(report)
    _misses("skipped files", [(s.path, s.reason, None, "") for s in report.skipped])
    _misses("live tracks without audio", [
        (f"#{t.track_id} {_song(t.artist, t.title)}", t.reason,
         [f"{c.path} ({c.score:.0f})" for c in t.candidates], t.fix)
        for t in report.without_audio])


def _copies(report) -> None:  # noqa: ANN001 - ScanReport, imported lazily
    """Files with the same content as a track's audio (or another file's): listed, never registered."""
    if not report.copies:
        return
    lines = [f"\ncopies of known audio (same sha256; {len(report.copies)}):"]
    for c in report.copies:
        lines.append(f"  {c.text()}")
        lines.append(f"    fix: {c.fix}")
    if report.copies_not_added:
        n = len(report.copies_not_added)
        lines.append(f"not registered as new tracks: {n} cop{'y' if n == 1 else 'ies'} of known audio "
                     f"({', '.join(report.copies_not_added)})")
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def _shared_audio(report) -> None:  # noqa: ANN001 - ScanReport, imported lazily
    """Tracks that already hold the same audio (registered before the scan knew copies)."""
    if report.shared_audio:
        lines = [f"\ntracks with the same audio ({len(report.shared_audio)}):"]
        lines += [f"  {s.text()}" for s in report.shared_audio]
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def _song(artist: str | None, title: str | None) -> str:
    return f"{artist} - {title}" if artist and title else (title or "")


def _misses(title: str, items: list[tuple[str, str, list[str] | None, str]]) -> None:
    """One block per miss: what, why, the closest candidates with scores, and the fix. Never markup."""
    if not items:
        return
    lines = [f"\n{title} ({len(items)}):"]
    for what, reason, candidates, fix in items:
        lines.append(f"  {what}: {reason}")
        if candidates is not None:
            lines.append(f"    closest: {'; '.join(candidates) if candidates else 'none close'}")
        if fix:
            conditional = candidates and "audio link" in fix
            lines.append(f"    fix{' (if the closest is right)' if conditional else ''}: {fix}")
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audio_app, name="audio")
