"""Domain errors. The CLI maps each to a one-line message and an exit code; nothing else is shown."""

from __future__ import annotations


class MusicClassifierError(Exception):
    """Base class: a problem the user can fix, reported as one line without a traceback."""

    exit_code = 1


class ConfigError(MusicClassifierError):
    """A setting or option is missing or invalid."""


class InputError(MusicClassifierError):
    """A file, row or value given by the user cannot be used."""


class PartialSuccess(MusicClassifierError):
    """Some items were skipped; the rest were committed (exit code 3)."""

    exit_code = 3


class RemoteError(MusicClassifierError):
    """A remote service (Google, Spotify) refused or failed."""


class PathOutsideLibrary(InputError):
    """A path resolves outside the configured library root."""
