"""`music-classifier sql "SELECT …"`: a read-only query, enforced by the database."""

from __future__ import annotations

import typer

from music_classifier.commands.common import console, handle_errors, state


@handle_errors
def sql(
    ctx: typer.Context,
    query: str = typer.Argument(..., metavar="QUERY", help="One SELECT statement."),
    as_csv: bool = typer.Option(False, "--csv", help="Write CSV (with a header row) to stdout instead of a table."),
    raw: bool = typer.Option(False, "--raw", help="With --csv: write text starting with = + - @ as it is, "
                                                  "without the ' that stops spreadsheets running it as a formula."),
) -> None:
    """Run one read-only query and print the result.

    Writes are refused by the database itself: SQLite is opened read-only with an authorizer that
    allows reads only; PostgreSQL runs as a SELECT-only role (`db grant-readonly`) in read-only
    transactions with a statement timeout. CSV cells that a spreadsheet would run as a formula get a
    leading ' unless --raw; control characters (ESC, BEL, ...) are always shown escaped, as \\x1b
    (see docs/security.md).

    Example: music-classifier sql "SELECT source, count(*) FROM tracks GROUP BY source" --csv
    """
    from music_classifier.db.readonly import run_readonly_query

    settings = state(ctx).settings
    result = run_readonly_query(settings.resolved_database_url, query, readonly_url=settings.readonly_url,
                                role=settings.readonly_role, statement_timeout_ms=settings.statement_timeout_ms)
    if as_csv:
        import csv
        import sys

        from music_classifier.csv_safety import neutralise_row
        from music_classifier.text_safety import escape_value

        def cells(row):  # noqa: ANN001, ANN202
            # Control characters are escaped even with --raw: a stored ESC must never reach a terminal.
            values = ["" if v is None else escape_value(v) for v in row]
            return values if raw else neutralise_row(values)

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(cells(result.columns))
        writer.writerows(cells(row) for row in result.rows)
        return
    from rich.table import Table
    from rich.text import Text

    from music_classifier.text_safety import escape_controls

    table = Table(caption=f"{len(result.rows)} row(s)")
    for column in result.columns:
        table.add_column(Text(escape_controls(column)), overflow="fold")
    for row in result.rows:
        table.add_row(*(Text("NULL", style="dim") if v is None else Text(escape_controls(str(v))) for v in row))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)
