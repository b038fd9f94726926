"""Shared CLI plumbing: lazy state, one-line errors and exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.text import Text

from music_classifier.errors import MusicClassifierError
from music_classifier.text_safety import safe_console

F = TypeVar("F", bound=Callable[..., Any])

# Markup and highlighting are OFF by default: everything printed may hold user data (song titles, genre
# names, paths, database errors) and a "[/]" in it must show as typed, never be parsed. Styled output
# is built with :func:`styled`, which keeps every value literal. Both consoles also show control
# characters as escapes (text_safety.safe_console): a title holding ESC or BEL never drives the terminal.
console = safe_console(markup=False, highlight=False)
err_console = safe_console(stderr=True, markup=False, highlight=False)


@dataclass
class CliState:
    """Global options, turned into settings and an engine only when a command needs them."""

    db: str | None = None
    library: Path | None = None
    # Only `db upgrade` may create a SQLite file; every other command refuses a missing one (a typo).
    create_database: bool = False
    _settings: Any = field(default=None, repr=False)
    _engine: Any = field(default=None, repr=False)

    @property
    def settings(self):  # noqa: ANN201 - avoid importing pydantic types at start-up
        if self._settings is None:
            from music_classifier.settings import get_settings

            self._settings = get_settings(database_url=self.db, library=self.library)
        return self._settings

    @property
    def engine(self):  # noqa: ANN201
        if self._engine is None:
            from music_classifier.db.engine import open_engine

            self._engine = open_engine(self.settings.resolved_database_url, must_exist=not self.create_database)
        return self._engine


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = CliState()
    return root.obj


def bold(value: object) -> tuple[str, str]:
    """A part of :func:`styled` shown in bold (as typed: no markup)."""
    return (str(value), "bold")


def styled(*parts: str | tuple[str, str]) -> Text:
    """One line from plain strings and ``(text, style)`` pairs; no part is ever parsed as markup."""
    return Text.assemble(*parts)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line to stderr and return an Exit to raise. ``message`` is shown as typed."""
    err_console.print(styled(("error:", "bold red"), " ", str(message)), soft_wrap=True)
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """Map domain errors (and a few well-known library errors) to one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MusicClassifierError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted; the current transaction was rolled back", 130) from None
        except Exception as exc:  # database unreachable, missing schema, ...
            from sqlalchemy.exc import OperationalError, ProgrammingError

            if isinstance(exc, OperationalError | ProgrammingError):
                msg = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                hint = " (run `music-classifier db upgrade` first?)" if "no such table" in msg or (
                    "does not exist" in msg and "relation" in msg) else ""
                raise fail(f"database: {msg}{hint}") from None
            raise

    return wrapper  # type: ignore[return-value]


def is_tty() -> bool:
    return sys.stderr.isatty()
