"""Control characters in text from outside: removed on the way in, shown as escapes on the way out.

A song title is printed to terminals (``sql``, ``audit``, every table of the CLI) and into HTML
reports. A title holding ``ESC ] 0 ; ... BEL`` retitles the terminal, ``ESC ] 52`` may write the
clipboard, ``ESC [ 31 m`` recolours what follows, a carriage return overwrites the line, and the bidi
overrides (U+202A-U+202E, U+2066-U+2069) make a table show text in another order than stored
("Trojan Source"). None of them belongs in an artist, a title, a genre or a playlist name.

Two rules, one set of characters (:data:`CONTROL_CHARS`): C0 (U+0000-U+001F) except tab, DEL
(U+007F), C1 (U+0080-U+009F), and the nine bidi embedding, override and isolate controls. Tab is
kept (harmless, and the CSV and sheet readers treat it as a separator or space). The bidi marks
U+200E/U+200F and the joiners are kept: they cannot reorder text beyond one character and emoji
sequences need the joiners.

- In: :func:`clean_text` for every text read from audio tags, file names, Spotify and CSV imports
  (the sheet path refuses such cells outright): line breaks and other space-like controls become a
  space, every other control character is removed. Paths and ids are identity, not text: they are
  stored as found (the path must still open the file) and only escaped on output.
- Out: :func:`escape_controls` for every value printed or exported, because rows stored before this
  rule, or written by other tools, may still hold control characters: each one is shown as
  ``\\x1b``, ``\\x9b`` or ``\\u202e``, so nothing reaches a terminal raw. Newline is kept on output
  (it ends a line, it does not drive the terminal); tab too.
"""

from __future__ import annotations

import functools
import re
from typing import Any

_BIDI = "\u202a-\u202e\u2066-\u2069"
CONTROL_CHARS = f"\x00-\x08\x0a-\x1f\x7f-\x9f{_BIDI}"  # a regex character class body
_CONTROL = re.compile(f"[{CONTROL_CHARS}]")
# Line and page breaks read as a space, not as nothing: "Artist\nTitle" must not become "ArtistTitle".
_SPACE_LIKE = {c: " " for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85"}
_OUTPUT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")  # as CONTROL_CHARS, newline kept


def has_controls(text: str) -> bool:
    """True when ``text`` holds a character of :data:`CONTROL_CHARS`."""
    # str.isprintable (C, ~3x faster than the regex) is False for every control character, and True
    # for almost all real text: the regex only runs on text with a tab, a no-break space or worse.
    return not text.isprintable() and _CONTROL.search(text) is not None


def clean_text(text: str) -> str:
    """``text`` without control characters: space-like ones (newline, CR, VT, FF, NEL, the
    separators U+001C-U+001F) become a space, the others are removed.

    >>> clean_text("Evil\\x1b]0;TITLE\\x07 - Song\\x1b[31m")
    'Evil]0;TITLE - Song[31m'
    """
    if not has_controls(text):  # the common case: no copy
        return text
    return _CONTROL.sub(lambda m: _SPACE_LIKE.get(m.group(), ""), text)


def clean_optional(text: str | None) -> str | None:
    """:func:`clean_text`, None stays None."""
    return None if text is None else clean_text(text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with each control character but newline and tab shown as an escape (``\\x1b``,
    ``\\u202e``): safe to print to a terminal or into a page, whatever was stored.

    >>> escape_controls("Evil\\x1b]0;TITLE\\x07")
    'Evil\\\\x1b]0;TITLE\\\\x07'
    """
    if text.isprintable() or _OUTPUT.search(text) is None:
        return text
    return _OUTPUT.sub(_escape, text)


def escape_value(value: Any) -> Any:
    """:func:`escape_controls` for text; any other value (numbers, None, bytes) as it is."""
    return escape_controls(value) if isinstance(value, str) else value


@functools.cache
def _safe_console_class() -> type:
    from rich.console import Console
    from rich.segment import Segment

    class SafeConsole(Console):
        """A rich Console whose printed text never carries a raw control character."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            # rich freezes COLUMNS/LINES as they are at construction; the CLI's consoles are built once, at
            # import, so a width set later (a resized terminal, ``COLUMNS=200 music-classifier ...`` from a
            # caller that imported us first) would be ignored. Unless given, the size is read at each print.
            self._width = kwargs.get("width")
            self._height = kwargs.get("height")

        def render(self, renderable: Any, options: Any = None) -> Any:
            for segment in super().render(renderable, options):
                if not segment.control:  # rich's own cursor moves (progress bars, spinners) stay
                    text = escape_controls(segment.text)
                    if text is not segment.text:  # escape_controls returns its argument when nothing changes
                        segment = Segment(text, segment.style)
                yield segment

    return SafeConsole


def safe_console(**kwargs: Any) -> Any:
    """A ``rich.console.Console(**kwargs)`` that shows control characters in printed text as escapes.

    Every table, message and error goes through ``Console.render``, so a song title or file name
    holding ESC or BEL cannot drive the terminal, whatever prints it. Tables of stored text should
    still escape their cells first (:func:`escape_controls`): escaping here comes after the layout,
    so a column holding control characters would be printed wider than measured.
    """
    return _safe_console_class()(**kwargs)
