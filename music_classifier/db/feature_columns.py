"""Frozen feature-column lists, version by version, for the SQL views.

Views are DDL, and DDL belongs to migrations; migrations must not change meaning when the code
moves on, so the columns a view exposes are frozen here (the extractors' own name lists are tested
to equal these). A new extractor version adds a new list and a migration that recreates the views.
"""

from __future__ import annotations

from typing import NamedTuple

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

# The musicnn extractor (MSD_musicnn): the penultimate layer's mean and standard deviation over 3 s patches,
# then the 50 MSD tags' mean probability (tag names lower-cased, runs of other characters as "_").
MSD_TAG_COLUMNS_V1: list[str] = [
    "tag_rock", "tag_pop", "tag_alternative", "tag_indie", "tag_electronic", "tag_female_vocalists", "tag_dance",
    "tag_00s", "tag_alternative_rock", "tag_jazz", "tag_beautiful", "tag_metal", "tag_chillout",
    "tag_male_vocalists", "tag_classic_rock", "tag_soul", "tag_indie_rock", "tag_mellow", "tag_electronica",
    "tag_80s", "tag_folk", "tag_90s", "tag_chill", "tag_instrumental", "tag_punk", "tag_oldies", "tag_blues",
    "tag_hard_rock", "tag_ambient", "tag_acoustic", "tag_experimental", "tag_female_vocalist", "tag_guitar",
    "tag_hip_hop", "tag_70s", "tag_party", "tag_country", "tag_easy_listening", "tag_sexy", "tag_catchy",
    "tag_funk", "tag_electro", "tag_heavy_metal", "tag_progressive_rock", "tag_60s", "tag_rnb", "tag_indie_pop",
    "tag_sad", "tag_house", "tag_happy",
]
MUSICNN_V1: list[str] = (
    [f"emb{i:03d}_mean" for i in range(1, 201)] + [f"emb{i:03d}_std" for i in range(1, 201)] + MSD_TAG_COLUMNS_V1
)


class WideStore(NamedTuple):
    """Where an extractor keeps its values: one row per extraction (per segment), one column per feature.

    A pivot of the long ``features`` table costs (features)^2 CASE evaluations per row on SQLite
    (450 musicnn values: 50 ms per track), and on PostgreSQL reading a pivot view costs 12-27x reading a
    wide table (issue 19); a float array per row costs 11x on a view read (BENCHMARKS.md, "Storage
    design"). Since 0009 every extractor has such tables and its views are plain joins.
    """

    table: str  # one row per extraction
    segment_table: str | None  # one row per (extraction, segment); None when the extractor has no segments
    columns: list[str]


# extractor name -> its wide tables. Extractors not listed keep their values in `features` (long form).
WIDE_STORES_V1: dict[str, WideStore] = {
    "musicnn": WideStore("musicnn_values", "musicnn_segment_values", MUSICNN_V1),
}

# Since 0009_wide_features: every extractor (the long `features`/`segment_features` tables became views).
WIDE_STORES_V2: dict[str, WideStore] = {
    "librosa": WideStore("librosa_values", "librosa_segment_values", LIBROSA_V1),
    "spotify": WideStore("spotify_values", None, SPOTIFY_V1),
    "gtzan_csv": WideStore("gtzan_csv_values", None, GTZAN_V1),
    **WIDE_STORES_V1,
}

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

# Since 0005_musicnn: the musicnn views (read from WIDE_STORES_V1's tables).
FEATURE_VIEWS_V2: dict[str, tuple[str, list[str]]] = {**FEATURE_VIEWS_V1, "musicnn_features": ("musicnn", MUSICNN_V1)}
SEGMENT_VIEWS_V2: dict[str, tuple[str, list[str]]] = {
    **SEGMENT_VIEWS_V1, "musicnn_segment_features": ("musicnn", MUSICNN_V1)}

# The lists valid at the head of the migration chain: what a NEW migration passes to views_dropped
# (``views_dropped(conn, FEATURE_VIEWS_LATEST, SEGMENT_VIEWS_LATEST, wide_stores=WIDE_STORES_LATEST,
# long_views=True)``; and what datasets read). Move these when a migration adds a version.
FEATURE_VIEWS_LATEST = FEATURE_VIEWS_V2
SEGMENT_VIEWS_LATEST = SEGMENT_VIEWS_V2
WIDE_STORES_LATEST = WIDE_STORES_V2
