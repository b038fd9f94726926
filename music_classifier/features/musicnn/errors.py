"""Domain error of the musicnn extractor."""

from __future__ import annotations

from music_classifier.features.errors import FeatureError


class MusicnnError(FeatureError):
    """The musicnn network cannot run or the audio cannot be analysed by it; one-line message."""
