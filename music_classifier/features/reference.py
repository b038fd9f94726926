"""The naive reference: each feature from its own librosa public call on the raw signal.

This is how GTZAN-style features are usually computed (one STFT per call, scipy's median filter
in HPSS, a second STFT for the CQT's tuning). It defines the values the fast extractor must
reproduce, and it is the baseline of ``benchmarks/bench_extractor.py``.
"""

from __future__ import annotations

import numpy as np

from music_classifier.features.librosa_extractor import N_MFCC, summarise, validate_signal


def reference_librosa_features(*, y: np.ndarray, sr: int) -> dict[str, float]:
    """Same contract as :func:`~music_classifier.features.librosa_extractor.extract_librosa_features`."""
    y = validate_signal(y, sr)
    import librosa

    y_harm, y_perc = librosa.effects.hpss(y)
    return summarise(
        chroma_stft=librosa.feature.chroma_stft(y=y, sr=sr),
        rms=librosa.feature.rms(y=y),
        spectral_centroid=librosa.feature.spectral_centroid(y=y, sr=sr),
        spectral_bandwidth=librosa.feature.spectral_bandwidth(y=y, sr=sr),
        rolloff=librosa.feature.spectral_rolloff(y=y, sr=sr),
        zero_crossing_rate=librosa.feature.zero_crossing_rate(y),
        harmony=y_harm,
        perceptr=y_perc,
        tempo=librosa.feature.tempo(y=y, sr=sr)[0],
        mfcc=librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC),
        spectral_contrast=librosa.feature.spectral_contrast(y=y, sr=sr),
        tonnetz=librosa.feature.tonnetz(y=y, sr=sr),
    )
