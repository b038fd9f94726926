"""`music-classifier sheet …`: sync the class sheet into the database, push the results back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from music_classifier.commands.common import console, err_console, fail, handle_errors, state

sheet_app = typer.Typer(
    help="Sync the class's song sheet into the database, and push the results back to a tab of its own.\n\n"
         "Example: music-classifier sheet sync --csv songs.csv",
    no_args_is_help=True,
)


def _load_table(settings: Any, sheet: str | None, worksheet: str | None, credentials: Path | None,
                csv: Path | None, xlsx: Path | None) -> Any:
    from music_classifier.ingest import sheet_source

    if csv is not None:
        return sheet_source.read_csv(csv)
    if xlsx is not None:
        return sheet_source.read_xlsx(xlsx, worksheet=worksheet)
    # GOOGLE_APPLICATION_CREDENTIALS="" reaches the settings as Path("."): treat it as unset.
    env_credentials = settings.google_credentials if str(settings.google_credentials or ".") != "." else None
    if credentials is not None or env_credentials is not None:
        return sheet_source.read_google_sheet(sheet, worksheet=worksheet, credentials=credentials or env_credentials,
                                              settings=settings)
    if worksheet is not None:
        raise fail("--worksheet needs the Sheets API: give --credentials FILE or GOOGLE_APPLICATION_CREDENTIALS "
                   "(a sheet shared by link is read from its first worksheet, or the URL's #gid=)")
    return sheet_source.read_sheet_csv_export(sheet, settings=settings)


def _hash_progress() -> Any:
    """A progress bar on stderr while the files the sheet names are hashed (nothing when not a terminal)."""
    from contextlib import nullcontext

    from music_classifier.commands.common import is_tty

    if not is_tty():
        return nullcontext(None)
    from music_classifier.commands.audio import _RichHashProgress

    return _RichHashProgress()


def _print_report(report: Any) -> None:
    from rich.table import Table

    title = "sheet sync (dry run: nothing written)" if report.dry_run else "sheet sync"
    table = Table(title=title, title_justify="left")
    table.add_column("tracks", style="bold")
    table.add_column("count", justify="right")
    for label, value in (("added", report.added), ("revived", report.revived), ("updated", report.updated),
                         ("removed", report.removed), ("unchanged", report.unchanged),
                         ("rows skipped", len(report.skipped_rows))):
        if label != "revived" or value:
            table.add_row(label, str(value))
    console.print(table)
    console.print(f"proposals: +{report.proposals_added} -{report.proposals_removed} "
                  f"moved {report.proposals_moved}; new students: {report.students_added}", highlight=False)
    if report.genre_mapping_applied:
        console.print("genre mapping applied:", highlight=False)
        for raw, name in sorted(report.genre_mapping_applied.items(), key=lambda kv: kv[0].casefold()):
            console.print(f"  {raw} -> {name}", highlight=False, markup=False)
    if report.genres_created:
        verb = "would create" if report.dry_run else "created"
        console.print(f"genres {verb}: {', '.join(report.genres_created)}", highlight=False, markup=False)
    files = report.files
    if files.linked or files.unchanged or files.unpinned or report.file_problems:
        verb = "to link" if report.dry_run else "linked"
        console.print(f"audio files named by the sheet: {files.linked} {verb}, {files.unchanged} unchanged"
                      + (f", {len(report.file_problems)} unusable (listed above)" if report.file_problems else "")
                      + (f", {files.unpinned} no longer named" if files.unpinned else "")
                      + (f"; {files.marked_stale} feature extractions marked stale" if files.marked_stale else ""),
                      highlight=False)
    for note in files.taken:
        console.print(note, highlight=False, markup=False, soft_wrap=True)
    if report.decision_conflicts:  # not an error: the decisions stand, the teacher sees where the sheet moved
        console.print(f"label decisions the sheet now disagrees with: {len(report.decision_conflicts)}",
                      highlight=False)
        for conflict in report.decision_conflicts:
            console.print(f"  conflict: {conflict}", highlight=False, markup=False, soft_wrap=True)


@sheet_app.command("sync")
@handle_errors
def sync(
    ctx: typer.Context,
    sheet: str | None = typer.Option(None, "--sheet", metavar="KEY_OR_URL", help="Google Sheet key or URL."),
    worksheet: str | None = typer.Option(None, "--worksheet", metavar="NAME",
                                         help="Worksheet (tab) name; default the first one."),
    credentials: Path | None = typer.Option(None, "--credentials", metavar="FILE",
                                            help="Service-account JSON (default GOOGLE_APPLICATION_CREDENTIALS; "
                                                 "without one, --sheet reads the link-shared CSV export)."),
    csv: Path | None = typer.Option(None, "--csv", metavar="FILE", help="A CSV export of the sheet."),
    xlsx: Path | None = typer.Option(None, "--xlsx", metavar="FILE", help="An XLSX export of the sheet."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the diff; write nothing."),
    strict: bool = typer.Option(False, "--strict", help="Abort, writing nothing, if any row is bad or a new "
                                "coarse genre looks like a typo of a known one (Bleus/Blues)."),
    allow_removals: bool = typer.Option(False, "--allow-removals",
                                        help="Allow a sync that removes more than 20% of the sheet tracks."),
    allow_relabel: bool = typer.Option(False, "--allow-relabel",
                                       help="Allow a sync that changes the coarse genre of more than 20% of the "
                                            "sheet tracks."),
) -> None:
    """Sync students, tracks, proposals and genres from the class sheet (one transaction).

    An optional column `file` (or `audio`, `path`, `filename`) names each row's audio file, relative to the
    library root or as a bare file name found anywhere under it; that file becomes the track's audio, and
    `audio scan` keeps it.

    Exit codes: 0 every row synced, 3 some rows (or file cells) skipped and the rest committed, 1 nothing
    written.

    Example: music-classifier sheet sync --csv songs.csv --dry-run
    """
    from music_classifier.ingest.sheet_sync import parse_for_sync, sync_sheet

    sources = [name for name, value in (("--sheet", sheet), ("--csv", csv), ("--xlsx", xlsx)) if value is not None]
    if len(sources) != 1:
        raise fail("give exactly one source: --sheet KEY_OR_URL, --csv FILE or --xlsx FILE"
                   + (f" (got {' and '.join(sources)})" if sources else ""))
    if credentials is not None and sheet is None:
        raise fail("--credentials is only used with --sheet")
    st = state(ctx)
    table = _load_table(st.settings, sheet, worksheet, credentials, csv, xlsx)
    with st.engine.connect() as conn:  # one transaction: committed only at the end, rolled back on any error
        parsed = parse_for_sync(conn, table)
        for bad in parsed.bad_rows:
            err_console.print(str(bad), highlight=False, markup=False, soft_wrap=True)
        with _hash_progress() as progress:
            report = sync_sheet(conn, parsed, dry_run=dry_run, strict=strict, allow_removals=allow_removals,
                                allow_relabel=allow_relabel, library_root=st.settings.library, progress=progress)
        if not dry_run:
            conn.commit()
    for problem in report.file_problems:
        err_console.print(str(problem), highlight=False, markup=False, soft_wrap=True)
    for near in report.genre_near_misses:
        err_console.print(f"warning: {near}", highlight=False, markup=False, soft_wrap=True)
    _print_report(report)
    if report.skipped_rows or report.file_problems:
        raise typer.Exit(3)


MAX_DIFF_LINES = 20  # per kind: a dry run of a whole class stays readable


def _print_push(result: Any) -> None:
    diff = result.diff
    verb = "would write" if result.dry_run else "wrote"
    tab = f"worksheet {result.worksheet!r}" + (" (new)" if result.created else "")
    head = "sheet push (dry run: nothing written): " if result.dry_run else "sheet push: "
    console.print(f"{head}{verb} {result.n_rows} tracks to {tab} of Google Sheet {result.key}: "
                  f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed, "
                  f"{diff.unchanged} unchanged", markup=False, highlight=False, soft_wrap=True)
    if not result.dry_run:
        return
    lines = ([f"  + track {t}" for t in diff.added[:MAX_DIFF_LINES]]
             + [f"  ~ track {t}: {', '.join(cols)}" for t, cols in list(diff.changed.items())[:MAX_DIFF_LINES]]
             + [f"  - row {k or '(no track id)'}" for k in diff.removed[:MAX_DIFF_LINES]])
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    more = sum(max(0, n - MAX_DIFF_LINES) for n in (len(diff.added), len(diff.changed), len(diff.removed)))
    if more:
        console.print(f"  … and {more} more", markup=False, highlight=False)


@sheet_app.command("push")
@handle_errors
def push(
    ctx: typer.Context,
    sheet: str | None = typer.Option(None, "--sheet", metavar="KEY_OR_URL", help="Google Sheet key or URL."),
    worksheet: str = typer.Option("music-classifier", "--worksheet", metavar="NAME",
                                  help="The tab to write (created when missing; never the students' tab)."),
    credentials: Path | None = typer.Option(None, "--credentials", metavar="FILE",
                                            help="Service-account JSON (default GOOGLE_APPLICATION_CREDENTIALS); "
                                                 "the sheet must be shared with it as Editor."),
    csv: Path | None = typer.Option(None, "--csv", metavar="OUT", help="Write a CSV file instead."),
    xlsx: Path | None = typer.Option(None, "--xlsx", metavar="OUT", help="Write an XLSX workbook instead."),
    model: int | None = typer.Option(None, "--model", metavar="ID",
                                     help="Model for the predicted genre (default: the newest final model, "
                                          "else the newest)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --sheet: say which rows would be added, changed "
                                 "or removed; write nothing."),
) -> None:
    """Write one row per track (song, student, sheet genre, effective genre, decision, predicted genre,
    confidence, top tags, audit score) to a tab of its own in the class's Google Sheet, or to a file.

    The tab is rewritten in place in one request; the students' tab is never written.

    Example: music-classifier sheet push --csv class-results.csv
    """
    from music_classifier.ingest import sheet_push
    from music_classifier.ingest.push_rows import push_rows

    targets = [name for name, value in (("--sheet", sheet), ("--csv", csv), ("--xlsx", xlsx)) if value is not None]
    if len(targets) != 1:
        raise fail("give exactly one target: --sheet KEY_OR_URL, --csv OUT or --xlsx OUT"
                   + (f" (got {' and '.join(targets)})" if targets else ""))
    if credentials is not None and sheet is None:
        raise fail("--credentials is only used with --sheet")
    if dry_run and sheet is None:
        raise fail("--dry-run compares with the Google Sheet's tab: use it with --sheet")
    st = state(ctx)
    with st.engine.connect() as conn:
        table = push_rows(conn, model_id=model, settings=st.settings)
    if csv is not None:
        sheet_push.write_csv(table, csv)
        console.print(f"wrote {len(table.rows)} tracks to {csv}", markup=False, highlight=False, soft_wrap=True)
        return
    if xlsx is not None:
        sheet_push.write_xlsx(table, xlsx, worksheet=worksheet)
        console.print(f"wrote {len(table.rows)} tracks to {xlsx}", markup=False, highlight=False, soft_wrap=True)
        return
    env_credentials = st.settings.google_credentials if str(st.settings.google_credentials or ".") != "." else None
    result = sheet_push.push_to_google_sheet(table, sheet, worksheet=worksheet,
                                             credentials=credentials or env_credentials, settings=st.settings,
                                             dry_run=dry_run)
    _print_push(result)


def register(app: typer.Typer) -> None:
    app.add_typer(sheet_app, name="sheet")
