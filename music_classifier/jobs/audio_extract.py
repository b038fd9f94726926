"""Audio extractors called the same way by jobs and by ``predict`` on files: signal in, values out.

:func:`extract_audio` returns ``(values, segments)`` for one decoded signal, where segments are
``(index, start in seconds, values)`` of the fixed windows of
:func:`~music_classifier.features.librosa_extractor.segment_bounds`, so the librosa and musicnn
segments of a track share their indices. Nothing here touches the database.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from music_classifier.features.registry import get_extractor

Segments = list[tuple[int, float, dict[str, float]]]


def extract_audio(extractor: str, *, y: np.ndarray, sr: int, segment_s: float | None,
                  whole: bool = True) -> tuple[dict[str, float], Segments | None]:
    """Whole-signal values (``{}`` when not ``whole``) and, when ``segment_s``, per-segment values of an
    audio extractor."""
    if extractor == "librosa":
        from music_classifier.features.librosa_extractor import extract_track_features

        # One analysis of the signal gives both: segments are taken from the whole track's frames.
        return extract_track_features(y=y, sr=sr, segment_s=float(segment_s) if segment_s else None, whole=whole)
    if extractor == "musicnn":
        from music_classifier.features.librosa_extractor import segment_bounds
        from music_classifier.features.musicnn.extractor import (
            extract_musicnn_features,
            extract_musicnn_segment_features,
        )

        values = extract_musicnn_features(y=y, sr=sr) if whole else {}
        if not segment_s:
            return values, None
        per_segment = extract_musicnn_segment_features(y=y, sr=sr, segment_s=float(segment_s))
        bounds = segment_bounds(int(np.asarray(y).shape[-1]), sr, float(segment_s))
        return values, [(index, first / sr, seg) for (index, first, _), seg in zip(bounds, per_segment, strict=False)
                        if seg]
    raise ValueError(f"{extractor!r} is not an audio extractor")


def version_and_params(extractor: str) -> tuple[str, dict[str, Any]]:
    """The feature module's ``EXTRACTOR_VERSION`` and ``extractor_params()`` (``{}`` when it has none).

    musicnn's params name the network and the sha256 of its weights, so new weights make new
    extractions instead of silently mixing values of two networks.
    """
    info = get_extractor(extractor)
    if info.preflight:
        check_module, _, check = info.preflight.partition(":")
        getattr(importlib.import_module(check_module), check)()
    module = importlib.import_module(info.feature_module or "")
    params = module.extractor_params() if hasattr(module, "extractor_params") else {}
    return str(module.EXTRACTOR_VERSION), dict(params)


def file_top_tags(path: Path, *, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` most likely MSD tags of an audio file (musicnn taggram mean), computed now."""
    from music_classifier.errors import InputError
    from music_classifier.features.audio_io import load_audio
    from music_classifier.features.musicnn.extractor import top_tags

    if not Path(path).is_file():
        raise InputError(f"{path}: file not found (give a stored track id or an audio file)")
    y, sr = load_audio(path)
    return top_tags(y=y, sr=sr, k=k)
