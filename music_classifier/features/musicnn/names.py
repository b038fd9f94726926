"""The musicnn feature set: names, units and meaning, in ONE place.

The extractor runs the MSD_musicnn network (Pons & Serra, trained on the Million Song Dataset's 50
most frequent Last.fm tags) over consecutive 3-second patches of a track and summarises per track:

- ``emb001_mean`` .. ``emb200_mean`` and ``emb001_std`` .. ``emb200_std``: the mean and population
  standard deviation (``ddof=0``) over patches of the penultimate layer (the batch-normalised output
  of the 200-unit dense layer; musicnn calls it ``penultimate``);
- ``tag_<name>``: the mean over patches of each tag's sigmoid output (the taggram), a probability-like
  score in [0, 1], named after the tag (lowercase, non-alphanumerics as ``_``: ``tag_hip_hop``).

Views and docs read :data:`MUSICNN_FEATURES`; the extractor returns its values in exactly this order.
"""

from __future__ import annotations

import re

from music_classifier.features.names import FeatureSpec

#: The 50 MSD tags in the network's output order (musicnn's ``configuration.MSD_LABELS``).
MUSICNN_TAGS: list[str] = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
    "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
    "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist",
    "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy", "catchy", "funk",
    "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
]

#: Width of the penultimate layer (``dense/kernel`` is 1506 x 200 in the checkpoint).
EMBEDDING_SIZE = 200


def tag_feature_name(tag: str) -> str:
    """``"female vocalists"`` -> ``"tag_female_vocalists"``; ``"Hip-Hop"`` -> ``"tag_hip_hop"``."""
    return "tag_" + re.sub(r"[^a-z0-9]+", "_", tag.lower()).strip("_")


#: ``emb001_mean`` .. ``emb200_mean`` then ``emb001_std`` .. ``emb200_std``.
EMBEDDING_FEATURES: list[str] = [f"emb{i:03d}_mean" for i in range(1, EMBEDDING_SIZE + 1)] + [
    f"emb{i:03d}_std" for i in range(1, EMBEDDING_SIZE + 1)
]

#: One name per tag, in :data:`MUSICNN_TAGS` order.
TAG_FEATURES: list[str] = [tag_feature_name(tag) for tag in MUSICNN_TAGS]


def _build() -> list[FeatureSpec]:
    specs: list[FeatureSpec] = []
    for i in range(1, EMBEDDING_SIZE + 1):
        specs.append(FeatureSpec(
            f"emb{i:03d}_mean", "dimensionless (batch-normalised activation)",
            f"mean over 3 s patches of MSD_musicnn penultimate-layer unit {i}",
        ))
    for i in range(1, EMBEDDING_SIZE + 1):
        specs.append(FeatureSpec(
            f"emb{i:03d}_std", "dimensionless (batch-normalised activation)",
            f"population standard deviation over 3 s patches of MSD_musicnn penultimate-layer unit {i}",
        ))
    for tag, name in zip(MUSICNN_TAGS, TAG_FEATURES, strict=True):
        specs.append(FeatureSpec(
            name, "probability (0-1)", f"mean over 3 s patches of the MSD_musicnn score of the tag '{tag}'",
        ))
    return specs


#: Every feature the musicnn extractor returns, in output order: 200 means, 200 stds, 50 tags.
MUSICNN_FEATURES: list[FeatureSpec] = _build()

#: The names alone, in output order.
MUSICNN_FEATURE_NAMES: list[str] = [spec.name for spec in MUSICNN_FEATURES]
