"""`music-classifier labels …`: settle a track's genre (label decisions) without editing the students' sheet."""

from __future__ import annotations

import typer

from music_classifier.commands.common import console, handle_errors, state

labels_app = typer.Typer(
    help="Label decisions: file a track under another genre, keep the sheet's genre, undo, list.\n\n"
    "The students' sheet genres are never changed; a decision wins over the sheet (view track_effective_genres).\n\n"
    "Example: music-classifier labels set 42 Jazz --note 'brushes and walking bass'",
    no_args_is_help=True,
)

TRACK = typer.Argument(..., metavar="TRACK", help="Track id (see `audit`, or: sql \"SELECT id, artist, title FROM "
                       "tracks\").")
NOTE = typer.Option(None, "--note", help="Why (kept with the decision).")
BY = typer.Option(None, "--by", metavar="NAME", help="Who decided (default: the login name).")


def _who(by: str | None) -> str | None:
    if by is not None:
        return by
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container without USER): record nobody
        return None


def _say(outcome) -> None:  # noqa: ANN001 - label_decisions.DecisionOutcome, imported lazily
    console.print(outcome.message, highlight=False, markup=False, soft_wrap=True)


@labels_app.command("set")
@handle_errors
def set_(ctx: typer.Context, track: str = TRACK,
         genre: str = typer.Argument(..., metavar="GENRE", help="An existing genre (or an alias of one)."),
         note: str | None = NOTE, by: str | None = BY) -> None:
    """File TRACK under GENRE: its effective genre for `dataset create`, `genres` and the audit.

    Example: music-classifier labels set 42 Jazz --note 'brushes and walking bass'
    """
    from music_classifier.ingest.label_decisions import set_genre

    with state(ctx).engine.begin() as conn:
        _say(set_genre(conn, track, genre, decided_by=_who(by), note=note))


@labels_app.command("keep")
@handle_errors
def keep(ctx: typer.Context, track: str = TRACK, note: str | None = NOTE, by: str | None = BY) -> None:
    """Confirm the sheet's genre of TRACK: the audit shows it as settled.

    Example: music-classifier labels keep 42
    """
    from music_classifier.ingest.label_decisions import keep_genre

    with state(ctx).engine.begin() as conn:
        _say(keep_genre(conn, track, decided_by=_who(by), note=note))


@labels_app.command("undo")
@handle_errors
def undo(ctx: typer.Context, track: str = TRACK, note: str | None = NOTE, by: str | None = BY) -> None:
    """Cancel TRACK's newest decision (an 'undo' row is appended; the one before it, or the sheet, applies).

    Example: music-classifier labels undo 42
    """
    from music_classifier.ingest.label_decisions import undo_decision

    with state(ctx).engine.begin() as conn:
        _say(undo_decision(conn, track, decided_by=_who(by), note=note))


@labels_app.command("list")
@handle_errors
def list_(ctx: typer.Context,
          as_csv: bool = typer.Option(False, "--csv", help="Write CSV to standard output (cells that a "
                                      "spreadsheet would run as a formula are neutralised).")) -> None:
    """List every decision, oldest first, with its status (standing, superseded, undone, undo).

    Example: music-classifier labels list --csv > decisions.csv
    """
    from music_classifier.ingest.label_decisions import decisions_csv, list_decisions

    with state(ctx).engine.connect() as conn:
        decisions = list_decisions(conn)
    if as_csv:
        typer.echo(decisions_csv(decisions), nl=False)
        return
    if not decisions:
        console.print("no label decisions yet (music-classifier labels set TRACK GENRE | keep TRACK)",
                      highlight=False)
        return
    # One line per decision (a wide table wraps its cells in a narrow terminal); user text as typed.
    for d in decisions:
        change = (f"{d.action} {d.genre_before or '-'} -> {d.genre or '-'}" if d.action == "set"
                  else f"keep {d.genre}" if d.action == "keep" else f"undo of decision {d.undoes_id} ({d.genre})")
        console.print(f"{d.id}. track {d.track_id} ({d.artist} - {d.title}): {change}, {d.status}, "
                      f"by {d.decided_by or '-'}, {str(d.decided_at)[:16]}" + (f"; note: {d.note}" if d.note else ""),
                      highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(labels_app, name="labels")
