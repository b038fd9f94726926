"""`music-classifier audit` and `similar`: which labels the audio disputes, which tracks sound alike."""

from __future__ import annotations

from pathlib import Path

import typer

from music_classifier.commands.common import console, err_console, handle_errors, state


def _text(value: object):  # noqa: ANN202 - rich.text.Text, imported lazily
    """User data as a table cell, never parsed as rich markup, control characters escaped (text_safety)."""
    from rich.text import Text

    from music_classifier.text_safety import escape_controls

    return Text("" if value is None else escape_controls(str(value)))


def audit(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset name (see `music-classifier dataset list`)."),
    model: str = typer.Option("rf", "--model", help="Model kind: rf | logreg | svm | hgb | knn."),
    cv: int = typer.Option(5, "--cv", help="Folds per repeat (fewer when a genre has fewer tracks)."),
    repeats: int = typer.Option(5, "--repeats", help="Repeats of the K-fold split (new shuffle each)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and the classifier."),
    as_csv: bool = typer.Option(False, "--csv", help="Write the ranked list as CSV to standard output."),
    top: int = typer.Option(20, "--top", min=1, help="Rows of the table to print (CSV has every track)."),
) -> None:
    """Audit a dataset's sheet genres: the tracks whose label the audio most disputes, and who proposed them.

    Out-of-fold probabilities from repeated stratified K-fold; confident learning flags a track when
    it is confidently another genre; ranked by one score alone, highest first (a flag does not move a
    track up): (1 - P(sheet genre) + P(strongest other genre)) / 2, i.e. 1 - the normalized margin.
    The table lists the top disputed rows by that score (flagged, or heard as another genre).
    Stored in table label_issues (newest audit feeds the views student_summary, student_genres).

    Example: music-classifier audit gtzan70 --model rf --repeats 5 --csv > suspects.csv
    """
    from music_classifier.commands.models import _progress_bar
    from music_classifier.models.audit import SCORE_HELP, audit_csv, run_audit

    with _progress_bar("out-of-fold fits") as progress, state(ctx).engine.begin() as conn:
        result = run_audit(conn, dataset, kind=model, n_splits=cv, n_repeats=repeats, seed=seed, progress=progress)
    if as_csv:
        typer.echo(audit_csv(result), nl=False)
        err_console.print(f"audit {result.audit_id}: {len(result.flagged)} of {len(result.rows)} tracks flagged",
                          highlight=False)
        return
    from rich.table import Table

    console.print(f"audit {result.audit_id} of dataset {result.dataset}: {result.kind}, {result.n_repeats} x "
                  f"{result.n_splits}-fold, out-of-fold accuracy {result.accuracy:.3f}\n"
                  f"{len(result.flagged)} of {len(result.rows)} tracks flagged", highlight=False, markup=False,
                  soft_wrap=True)
    disputed = result.disputed
    if not result.flagged:
        console.print("nothing flagged: confident learning disputes none of the sheet genres", highlight=False)
    if not disputed:
        console.print("every track is heard as its sheet genre out of fold: no dispute to list (--csv lists every "
                      "track with its score)", highlight=False, soft_wrap=True)
        return
    shown = disputed[:top]
    # One order: by score, highest first (the rank column); the flag is a mark, not a sort key.
    table = Table("#", "track", "artist - title", "student", "sheet -> heard", "score", "settled",
                  title=f"Most disputed labels first, by score ({sum(r.flagged for r in shown)} of {len(shown)} "
                        "flagged)",
                  caption=f"* flagged by confident learning; {SCORE_HELP}; settled: a label decision "
                          "(music-classifier labels) gave the track this genre")
    for r in shown:
        table.add_row(f"{r.rank}{'*' if r.flagged else ''}", str(r.track_id), _text(f"{r.artist} - {r.title}"),
                      _text(r.student or "-"), _text(f"{r.sheet_genre} -> {r.heard_genre}"), f"{r.dispute_score:.2f}",
                      _text(r.settled or "-"))
    console.print(table)
    agreed = len(result.rows) - len(disputed)
    if agreed:
        console.print(f"{agreed} tracks heard as their sheet genre are not listed (--csv lists every track)",
                      highlight=False)


def similar(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="TRACK|FILE", help="A stored track id, or an audio file."),
    k: int = typer.Option(10, "--k", min=1, help="How many neighbours."),
    features: str = typer.Option("librosa", "--features",
                                 help="Feature set: librosa | musicnn | spotify | gtzan_csv, or a comma list."),
) -> None:
    """The stored tracks nearest to a track or an audio file: cosine similarity of standardised features.

    Example: music-classifier similar 12 --k 5 --features librosa
    """
    from rich.table import Table

    from music_classifier.models.similar import nearest_to_file, nearest_to_track

    st = state(ctx)
    with st.engine.connect() as conn:
        if target.isdigit():
            res = nearest_to_track(conn, int(target), k=k, features=features)
        else:
            with console.status("extracting features…"):
                res = nearest_to_file(conn, Path(target), k=k, features=features, settings=st.settings)
    console.print(f"{res.query} ({res.n_candidates} stored tracks with {features} features, "
                  f"{res.n_features} features, standardised)", highlight=False, markup=False)
    table = Table("#", "similarity", "track", "artist - title", "genre", "student")
    for i, n in enumerate(res.neighbours, start=1):
        table.add_row(str(i), f"{n.similarity:.3f}", str(n.track_id), _text(f"{n.artist} - {n.title}"),
                      _text(n.genre or "-"), _text(n.student or "-"))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("audit")(handle_errors(audit))
    app.command("similar")(handle_errors(similar))
