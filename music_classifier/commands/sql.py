"""`music-classifier sql "SELECT …"`: a read-only query, enforced by the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from music_classifier.commands.common import console, handle_errors, state
from music_classifier.db.result_limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS
from music_classifier.errors import PartialSuccess

if TYPE_CHECKING:
    from rich.text import Text

    from music_classifier.db.result_limits import QueryStream

#: The table shows at most this many characters (or bytes) of a value.
TABLE_CELL_CHARS = 1000


@handle_errors
def sql(
    ctx: typer.Context,
    query: str = typer.Argument(..., metavar="QUERY", help="One SELECT statement."),
    as_csv: bool = typer.Option(False, "--csv", help="Write CSV (with a header row) to stdout instead of a table."),
    raw: bool = typer.Option(False, "--raw", help="With --csv: write text starting with = + - @ as it is, "
                                                  "without the ' that stops spreadsheets running it as a formula."),
    max_rows: int = typer.Option(DEFAULT_MAX_ROWS, "--max-rows", min=1,
                                 help="Stop after this many rows (a line on stderr says so; exit code 3)."),
    max_bytes: int = typer.Option(DEFAULT_MAX_BYTES, "--max-bytes", min=1,
                                  help="Stop before the row that would bring the values past this many bytes "
                                       "(text as UTF-8, blobs as stored)."),
) -> None:
    """Run one read-only query and print the result.

    Writes are refused by the database itself: SQLite is opened read-only with an authorizer that
    allows reads only; PostgreSQL runs as a SELECT-only role (`db grant-readonly`) in read-only
    transactions with a statement timeout. CSV cells that a spreadsheet would run as a formula get a
    leading ' unless --raw; control characters (ESC, BEL, ...) are always shown escaped, as \\x1b
    (see docs/security.md). Rows are written as they arrive, up to --max-rows (default 100,000) and
    --max-bytes (default 32 MiB); past either, the output stops with one line.

    Example: music-classifier sql "SELECT source, count(*) FROM tracks GROUP BY source" --csv
    """
    from music_classifier.db.readonly import open_readonly_query
    from music_classifier.db.result_limits import ResultLimits

    settings = state(ctx).settings
    limits = ResultLimits(max_rows=max_rows, max_bytes=max_bytes)
    with open_readonly_query(settings.resolved_database_url, query, readonly_url=settings.readonly_url,
                             role=settings.readonly_role, statement_timeout_ms=settings.statement_timeout_ms,
                             limits=limits) as stream:
        if as_csv:
            _write_csv(stream, raw)
        else:
            _print_table(stream)
    if stream.cut is not None:
        raise PartialSuccess(f"{stream.cut} (--max-{stream.cut.kind} to change)")


def _write_csv(stream: QueryStream, raw: bool) -> None:
    import csv
    import sys

    from music_classifier.csv_safety import neutralise_row
    from music_classifier.text_safety import escape_value

    def cell(value: object) -> object:
        if value is None:
            return ""
        if isinstance(value, (bytes, bytearray, memoryview)):
            # A blob as PostgreSQL's bytea text (\x + hex): 2 characters a byte, where Python's repr of
            # bytes takes up to 4 (a 30 MB blob peaked the CLI near 800 MiB that way).
            return "\\x" + bytes(value).hex()
        # Control characters are escaped even with --raw: a stored ESC must never reach a terminal.
        return escape_value(value)

    def cells(row):  # noqa: ANN001, ANN202
        values = [cell(v) for v in row]
        return values if raw else neutralise_row(values)

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(cells(stream.columns))
    for row in stream:  # one row at a time, as the database hands it over
        writer.writerow(cells(row))


def _print_table(stream: QueryStream) -> None:
    from rich.table import Table
    from rich.text import Text

    from music_classifier.text_safety import escape_controls

    # A table is laid out once all its rows are known: it holds at most the capped rows, and shows
    # the start of a long value (laying out megabytes of text would take far more memory than the value).
    table = Table()
    for column in stream.columns:
        table.add_column(Text(escape_controls(column)), overflow="fold")
    for row in stream:
        table.add_row(*(Text("NULL", style="dim") if v is None else _table_cell(v) for v in row))
    table.caption = f"{stream.rows} row(s)"
    console.print(table)


def _table_cell(value: object) -> Text:
    from rich.text import Text

    from music_classifier.text_safety import escape_controls

    if isinstance(value, (str, bytes, bytearray)) and len(value) > TABLE_CELL_CHARS:
        return Text.assemble(escape_controls(str(value[:TABLE_CELL_CHARS])),
                             (f" … ({len(value) - TABLE_CELL_CHARS:,} more; --csv writes it whole)", "dim"))
    return Text(escape_controls(str(value)))


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)
