"""The caps on the shape of an input table (a class sheet, a feature CSV), shared by the readers.

A class sheet has about ten columns and a Spotify feature table about twenty. The caps bound the
work a hostile file can ask for: without them a 5 KB XLSX or one CSV line of commas makes a reader
build millions (or billions) of empty cells. docs/security.md lists them and what the tool does.
"""

from __future__ import annotations

from pathlib import Path

from music_classifier.errors import InputError

MAX_COLUMNS = 1024  # column AMJ
MAX_ROWS = 1_048_576  # Excel's own limit; an XLSX row number beyond it is refused
# Cells an XLSX may make the reader build (each row as wide as its last value): 100,000 songs x 50
# columns. A CSV is bounded by its size; an XLSX is compressed (1,000:1 for repeated cells).
MAX_CELLS = 5_000_000


def check_line_widths(path: Path, delimiter: bytes = b",") -> None:
    """Refuse a file with a physical line of :data:`MAX_COLUMNS` delimiters or more, naming the
    line, before a parser builds one cell per delimiter. One pass over the bytes, one line in
    memory at a time (a line ends at ``\\n``; a ``\\r``-only file is split at ``\\r`` too)."""
    try:
        with path.open("rb") as fh:
            number = 0
            for chunk in fh:
                pieces = chunk.split(b"\r") if chunk.count(delimiter) >= MAX_COLUMNS else [chunk]
                if len(pieces) > 1 and pieces[-1] in (b"", b"\n"):
                    pieces.pop()  # the line's own \r\n ending
                for line in pieces:
                    number += 1
                    if line.count(delimiter) >= MAX_COLUMNS:
                        raise InputError(f"{path}: line {number} has more than {MAX_COLUMNS} cells (the cap is "
                                         f"{MAX_COLUMNS} columns); delete the cells far to the right")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
