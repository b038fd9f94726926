"""Segment features from the whole track's analysis (extractor v2): the pieces equal librosa's, and the
segments stay within docs/features.md's tolerance of analysing each window alone."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from music_classifier.features.librosa_extractor import (
    HOP_LENGTH,
    N_FFT,
    extract_librosa_features,
    extract_segment_features,
    extract_track_features,
)
from music_classifier.features.librosa_segments import window_frames

SR = 22050
REPO = Path(__file__).resolve().parents[1]


def _tolerance_module():
    """benchmarks/segment_tolerance.py (the benchmarks folder is not a package)."""
    path = REPO / "benchmarks" / "segment_tolerance.py"
    spec = importlib.util.spec_from_file_location("mc_segment_tolerance", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _spectrogram(seconds: float = 4.0, seed: int = 3) -> np.ndarray:
    import librosa

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    y[: SR // 2] *= 1e-6  # a near-silent start: values below the 80 dB floor get clipped
    return np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH))


@pytest.mark.parametrize("long", [False, True])
def test_contrast_in_two_steps_equals_librosa_bit_for_bit(long):
    import librosa

    from music_classifier.features.contrast import contrast_db, contrast_peak_valley

    S = _spectrogram()
    if long:  # a quiet first block (2048 frames), then loud frames: the 80 dB floor is the whole matrix's
        rng = np.random.default_rng(1)
        quiet = np.tile(S * 1e-5, (1, 2100 // S.shape[1] + 1))[:, :2100]
        S = np.concatenate([quiet, rng.random((S.shape[0], 300), dtype=np.float32)], axis=1)
        first_block_alone = librosa.feature.spectral_contrast(S=S[:, :2048], sr=SR)
        assert not np.array_equal(first_block_alone, librosa.feature.spectral_contrast(S=S, sr=SR)[:, :2048])
    peak, valley = contrast_peak_valley(S=S, sr=SR, n_fft=N_FFT)
    np.testing.assert_array_equal(contrast_db(peak, valley), librosa.feature.spectral_contrast(S=S, sr=SR))


def test_cached_mel_basis_gives_librosas_melspectrogram_bit_for_bit():
    import librosa

    from music_classifier.features.filter_cache import mel_basis, melspectrogram

    S = _spectrogram() ** 2
    np.testing.assert_array_equal(melspectrogram(S=S, sr=SR, n_fft=N_FFT), librosa.feature.melspectrogram(S=S, sr=SR))
    basis = mel_basis(sr=SR, n_fft=N_FFT)
    assert basis is mel_basis(sr=SR, n_fft=N_FFT)  # built once per parameter set
    assert not basis.flags.writeable
    assert mel_basis(sr=16000, n_fft=N_FFT).shape == basis.shape
    assert not np.array_equal(mel_basis(sr=16000, n_fft=N_FFT), basis)  # the rate is part of the key


@pytest.mark.parametrize("first,end,n_frames,expected", [
    (0, 66150, 1000, slice(0, 130)),  # a 3 s window alone has 1 + 66150 // 512 = 130 frames
    (66150, 132300, 1000, slice(129, 259)),  # 66150 / 512 = 129.2: the nearest track frame
    (132300, 198450, 300, slice(170, 300)),  # at the track's end: moved back, never shortened
])
def test_window_frames(first, end, n_frames, expected):
    assert window_frames(first, end, n_frames) == expected


def test_whole_values_and_segments_come_from_one_analysis():
    rng = np.random.default_rng(5)
    t = np.arange(7 * SR) / SR
    y = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    whole, segments = extract_track_features(y=y, sr=SR, segment_s=3.0)
    assert whole == extract_librosa_features(y=y, sr=SR)
    assert segments == extract_segment_features(y=y, sr=SR, segment_s=3.0)
    assert [(i, start) for i, start, _ in segments] == [(0, 0.0), (1, 3.0)]
    assert extract_track_features(y=y, sr=SR, segment_s=None) == (whole, None)


@pytest.mark.shared_data
def test_segments_stay_within_the_documented_tolerance_on_real_clips(shared_data):
    tolerance = _tolerance_module()
    clips = tolerance.pick_clips(shared_data, 20)
    if len(clips) < 20:
        pytest.skip("fewer than 20 GTZAN clips in the shared data")
    documented = tolerance.read_table((REPO / "docs" / "features.md").read_text(encoding="utf-8"))
    measured = tolerance.measure(clips)
    assert documented.keys() == measured.keys()
    # The table is printed to 3 decimals: a value may exceed its rounded figure by half a unit.
    over = {name: (measured[name], documented[name]) for name in measured
            if measured[name][1] > documented[name][1] + 5e-4 or measured[name][2] > documented[name][2] + 5e-4}
    assert not over, over
