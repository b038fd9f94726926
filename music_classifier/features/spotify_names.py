"""The Spotify audio-features fields that describe the audio: the names the ``spotify`` extractor declares.

Light on purpose (no imports): the extractor registry and the CSV import read it.
"""

from __future__ import annotations

#: The 12 fields of Spotify's audio-features object the project keeps, in this order.
SPOTIFY_FEATURE_NAMES: list[str] = [
    "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "duration_ms",
]
