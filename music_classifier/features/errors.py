"""Domain error of the feature extractors."""

from __future__ import annotations

from music_classifier.errors import InputError


class FeatureError(InputError):
    """Audio that cannot be analysed (corrupt, empty, not audio, silent, too short); one-line message."""
