"""`music-classifier demo`: the whole pipeline on generated music, no credentials or services needed."""

from __future__ import annotations

from pathlib import Path

import typer

from music_classifier.commands.common import bold, console, handle_errors, is_tty, styled


@handle_errors
def demo(
    out: Path = typer.Option(Path("demo-output"), "--dir", metavar="DIR",
                             help="Where to write audio, database, report."),
    tracks_per_genre: int = typer.Option(8, "--tracks-per-genre", min=2, max=200, help="Tracks per genre (about)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the generated music and the model."),
    processes: int = typer.Option(0, "--processes", min=0, help="Feature processes (0: up to 2)."),
) -> None:
    """Generate six styles of music and run every step on them: sync, scan, features, dataset, train, report.

    Runs embedded: SQLite in DIR and jobs in this process; no Redis, PostgreSQL or credentials.

    Example: music-classifier demo --dir demo-output --tracks-per-genre 8
    """
    from music_classifier.demo.pipeline import TRY_NEXT, run_demo

    def log(step: str, summary: str) -> None:
        console.print(styled((f"✓ {step}", "bold green"), f"  {summary}"))

    result = run_demo(out, tracks_per_genre=tracks_per_genre, seed=seed, processes=processes or None, log=log,
                      show_progress=is_tty())
    console.print()
    console.print(styled(bold("database:"), f" {result.database_path}"))
    if result.report_path:
        console.print(styled(bold("report:"), f"   {result.report_path}"))
    if result.accuracy is not None:
        console.print(styled(bold(f"model {result.model_id}:"), f" test accuracy {result.accuracy:.2f}, macro F1 "
                             f"{result.macro_f1:.2f} (chance {result.chance:.2f})"))
    console.print(styled("\n", bold("Try next:")))
    for query in TRY_NEXT:
        console.print(f"  music-classifier --db {result.database_url} sql \"{query}\"", highlight=False,
                      markup=False, soft_wrap=True)
    console.print(styled("\n", bold("Listen to the audit's suspects, settle them and retrain, in the browser:")))
    console.print(f"  {result.serve_command}", highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
