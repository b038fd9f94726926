"""Frozen feature-column lists, version by version, for the SQL views.

Views are DDL, and DDL belongs to migrations; migrations must not change meaning when the code
moves on, so the columns a view exposes are frozen here (the extractors' own name lists are tested
to equal these). A new extractor version adds a new list and a migration that recreates the views.
"""

from __future__ import annotations

_SPECTRAL = ["chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff", "zero_crossing_rate",
             "harmony", "perceptr"]

# The GTZAN 30 s feature table's columns (without filename, length, label), in its order.
GTZAN_V1: list[str] = (
    [f"{n}_{s}" for n in _SPECTRAL for s in ("mean", "var")]
    + ["tempo"]
    + [f"mfcc{i}_{s}" for i in range(1, 21) for s in ("mean", "var")]
)

# Ours: the GTZAN set plus spectral contrast (7 bands) and tonnetz (6 dimensions).
LIBROSA_V1: list[str] = (
    GTZAN_V1
    + [f"spectral_contrast{i}_{s}" for i in range(1, 8) for s in ("mean", "var")]
    + [f"tonnetz{i}_{s}" for i in range(1, 7) for s in ("mean", "var")]
)

# Spotify's audio-features fields that describe the audio (the "12 audio-feature columns").
SPOTIFY_V1: list[str] = [
    "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "duration_ms",
]

# view name -> (extractor name, columns). Per-track views take each track's newest `done` extraction.
FEATURE_VIEWS_V1: dict[str, tuple[str, list[str]]] = {
    "librosa_features": ("librosa", LIBROSA_V1),
    "spotify_features": ("spotify", SPOTIFY_V1),
    "gtzan_features": ("gtzan_csv", GTZAN_V1),
}
# view name -> (extractor name, columns), one row per (track, segment).
SEGMENT_VIEWS_V1: dict[str, tuple[str, list[str]]] = {
    "librosa_segment_features": ("librosa", LIBROSA_V1),
}
