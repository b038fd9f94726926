"""CSV cells that a spreadsheet will not run as formulas (CSV or "formula" injection).

Spreadsheets (Excel, LibreOffice, Google Sheets) evaluate a cell whose text starts with ``=``, ``+``,
``-`` or ``@`` as a formula (``=cmd|' /C calc'!A0``, ``=IMPORTXML(...)``, ``@HYPERLINK(...)``), and
strip a leading tab or carriage return before doing so. Sheet cells reach our tables verbatim, so
every CSV the project writes passes its cells through :func:`neutralise_cell`, which prefixes such
text with ``'`` (shown by spreadsheets as plain text; OWASP's recommendation).

Decisions: only text is changed. Numbers (int, float, Decimal) are written as they are, so a
negative number stays a number. Text that is entirely a plain decimal number (``-3``, ``-0.25``,
``+1e-5``) is left alone too: a spreadsheet reads it as that number and no formula fits in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise_cell(value: Any) -> Any:
    """``value`` made safe to open in a spreadsheet: text starting with ``= + - @``, a tab or a
    carriage return gets a leading ``'``; anything else (numbers, None, other text) is returned as is.

    >>> neutralise_cell("=IMPORTXML(A1)"), neutralise_cell(-3), neutralise_cell("-3"), neutralise_cell("Queen")
    ("'=IMPORTXML(A1)", -3, '-3', 'Queen')
    """
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralise_row(row: Iterable[Any]) -> list[Any]:
    """:func:`neutralise_cell` applied to every cell of ``row``."""
    return [neutralise_cell(v) for v in row]
