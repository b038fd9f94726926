"""Errors of the Spotify (and compatible) clients. Each is one line the CLI can show as is."""

from __future__ import annotations

from music_classifier.errors import RemoteError

AUDIO_FEATURES_FORBIDDEN_MESSAGE = (
    "Spotify refused audio-features (403): apps created after 2024-11-27 no longer get it. "
    "Alternatives: import a public Spotify-features dataset (`music-classifier spotify import-csv FILE`, "
    "then `spotify match-local`) or set AUDIO_FEATURES_PROVIDER=reccobeats"
)


class RateLimited(RemoteError):
    """HTTP 429. Raised at once, never slept through: the caller re-enqueues after ``retry_after_s``."""

    def __init__(self, retry_after_s: float, service: str = "Spotify") -> None:
        self.retry_after_s = float(retry_after_s)
        super().__init__(f"{service} rate limit (429): retry after {self.retry_after_s:g} s")


class AudioFeaturesForbidden(RemoteError):
    """HTTP 403 on audio-features: the app has no access; every worker must stop (the breaker)."""

    def __init__(self, message: str = AUDIO_FEATURES_FORBIDDEN_MESSAGE) -> None:
        super().__init__(message)


class TransientSpotifyError(RemoteError):
    """A 5xx or a network failure that persisted through our bounded backoff."""


class PlaylistNotFound(RemoteError):
    """HTTP 404 on a playlist (private, deleted, mistyped, or an editorial playlist closed to new apps)."""
