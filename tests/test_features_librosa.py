"""The fast librosa extractor: exact median filter, equality with the naive reference, known answers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import median_filter

from music_classifier.features.errors import FeatureError
from music_classifier.features.librosa_extractor import (
    EXTRACTOR_NAME,
    EXTRACTOR_VERSION,
    extract_librosa_features,
    extract_segment_features,
    extract_track_features,
    params_hash,
)
from music_classifier.features.median import median_filter_axis
from music_classifier.features.names import LIBROSA_FEATURE_NAMES, LIBROSA_FEATURES
from music_classifier.features.reference import reference_librosa_features

SR = 22050
RTOL, ATOL = 1e-4, 1e-8


def _music_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Tones, a few notes, clicks and noise: exercises every feature, including HPSS and CQT."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 330 * t * (1 + 0.01 * t))
    for onset in np.arange(0, seconds, 0.25):
        start = int(onset * SR)
        y[start : start + 200] += rng.uniform(-0.5, 0.5, size=len(y[start : start + 200]))
    y += 0.01 * rng.standard_normal(len(t))
    return y.astype(np.float32)


def _assert_same_features(ours: dict[str, float], reference: dict[str, float]) -> None:
    assert list(ours) == LIBROSA_FEATURE_NAMES
    assert list(reference) == LIBROSA_FEATURE_NAMES
    names = np.array(LIBROSA_FEATURE_NAMES)
    a = np.array([ours[n] for n in names])
    b = np.array([reference[n] for n in names])
    close = np.isclose(a, b, rtol=RTOL, atol=ATOL)
    assert close.all(), dict(zip(names[~close], zip(a[~close], b[~close], strict=True), strict=True))


# --- the exact median filter -------------------------------------------------------------------


@pytest.mark.parametrize("order", ["C", "F"])  # librosa.stft returns Fortran order
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("shape", [(1025, 120), (7, 40), (40, 7), (1, 1), (3, 16)])
def test_median_filter_equals_scipy_bit_for_bit(dtype, ties, shape, order):
    rng = np.random.default_rng(abs(hash((shape, ties))) % 2**32)
    x = rng.random(shape)
    if ties:
        x = np.round(x * 3)  # few distinct values: many equal elements per window
    x = np.asarray(x.astype(dtype), order=order)
    for size in (31, 30, 5, 2, 1):  # 31 is librosa's HPSS kernel; short lines reflect repeatedly
        for axis, footprint in ((1, (1, size)), (0, (size, 1))):
            expected = median_filter(x, size=footprint, mode="reflect")
            got = median_filter_axis(x, size=size, axis=axis)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            assert got.tobytes() == expected.tobytes(), (size, axis)  # bit for bit, C order


def test_median_filter_rejects_bad_arguments():
    with pytest.raises(ValueError, match="2-D"):
        median_filter_axis(np.zeros(5), size=3, axis=0)
    with pytest.raises(ValueError, match="axis"):
        median_filter_axis(np.zeros((2, 2)), size=3, axis=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_hpss_spectra_equal_librosa_decompose_hpss_bit_for_bit(dtype):
    import librosa

    from music_classifier.features.median import split_hpss

    y = _music_like(2.0).astype(dtype)
    y[SR // 2 : SR] = 0.0  # silent stretch: zero magnitudes and both-zero masks (split to 0.5)
    D = librosa.stft(y)
    expected_harm, expected_perc = librosa.decompose.hpss(D)
    S = np.abs(D)
    harm = median_filter_axis(S, size=31, axis=-1)
    perc = median_filter_axis(S, size=31, axis=-2)
    assert (harm + perc == 0).any()  # the split_zeros branch is exercised
    assert split_hpss(D, harm, perc).tobytes() == expected_harm.tobytes()
    assert D.tobytes() == expected_perc.tobytes()  # D was overwritten with the percussive part


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seconds", [1.0, 3.1, 31.0])
def test_streaming_istft_equals_librosa_istft_bit_for_bit(dtype, seconds):
    import librosa

    from music_classifier.features.librosa_extractor import StreamingIstft

    rng = np.random.default_rng(3)
    y = rng.standard_normal(int(seconds * SR) + 17).astype(dtype)
    D = librosa.stft(y) * (rng.random((1025, 1)) > 0.3)  # some bins zeroed: not a consistent STFT
    expected = librosa.istft(D, dtype=dtype, n_fft=2048, hop_length=512, length=len(y))
    stream = StreamingIstft(n_frames=D.shape[-1], n_fft=2048, hop_length=512, length=len(y), dtype=dtype,
                            complex_dtype=D.dtype)
    bounds = stream.block_bounds(batches_per_block=2)
    assert bounds[0][0] == 0 and bounds[-1][1] == D.shape[-1]
    for first, end in bounds:
        stream.add(D[:, first:end])
    got = stream.finish()
    assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()


def test_blockwise_tuning_estimate_equals_librosa():
    import librosa

    from music_classifier.features import librosa_extractor

    y = _music_like(4.0)
    S = np.abs(librosa.stft(y))
    expected = librosa.estimate_tuning(S=S, sr=SR, bins_per_octave=36)
    old_block = librosa_extractor._BLOCK_FRAMES
    try:
        librosa_extractor._BLOCK_FRAMES = 7  # many blocks, one partial
        got = librosa_extractor.estimate_tuning(S, sr=SR, bins_per_octave=36)
    finally:
        librosa_extractor._BLOCK_FRAMES = old_block
    assert got == expected


@pytest.mark.parametrize("power", [1.0, 2.0])  # chroma_cqt's estimate uses |S|, chroma_stft's |S|**2
def test_piptrack_peaks_equal_librosa_piptrack_bit_for_bit(power):
    import librosa

    from music_classifier.features.median import piptrack_peaks

    S = np.abs(librosa.stft(_music_like(3.0, seed=3))) ** power
    pitch, mag = librosa.piptrack(S=S, sr=SR, n_fft=2048)
    found = (pitch > 0).T  # frame by frame, the order piptrack_peaks reports them in
    got_pitch, got_mag = piptrack_peaks(S, sr=SR, n_fft=2048)
    assert got_pitch.size > 100
    assert got_pitch.tobytes() == pitch.T[found].tobytes() and got_mag.tobytes() == mag.T[found].tobytes()


@pytest.mark.parametrize("dtype,tuning", [(np.float32, 0.0), (np.float32, -0.23), (np.float64, 0.31)])
def test_chroma_cqt_with_shared_octave_filters_equals_librosa_bit_for_bit(dtype, tuning):
    import librosa

    from music_classifier.features import librosa_extractor

    y = _music_like(2.5, seed=4).astype(dtype)
    librosa_extractor._CQT_FILTERS.clear()
    for _ in range(2):  # filter banks built, then reused from the cache
        got = librosa_extractor.chroma_cqt(y, sr=SR, tuning=tuning)
        expected = librosa.feature.chroma_cqt(y=y, sr=SR, tuning=tuning)
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
    assert 0 < len(librosa_extractor._CQT_FILTERS) < 7  # fewer banks than octaves were built


# --- equality with the naive reference -------------------------------------------------------


@pytest.mark.parametrize("seconds,seed", [(3.0, 0), (5.3, 1)])
def test_extractor_equals_reference_on_generated_signals(seconds, seed):
    y = _music_like(seconds, seed)
    _assert_same_features(extract_librosa_features(y=y, sr=SR), reference_librosa_features(y=y, sr=SR))


def test_extractor_equals_reference_on_float64_noise():
    y = np.random.default_rng(7).uniform(-0.3, 0.3, size=int(2.5 * SR))
    _assert_same_features(extract_librosa_features(y=y, sr=SR), reference_librosa_features(y=y, sr=SR))


@pytest.mark.shared_data
@pytest.mark.parametrize("clip", ["blues/blues.00000.wav", "classical/classical.00001.wav", "metal/metal.00002.wav"])
def test_extractor_equals_reference_on_real_gtzan_clips(shared_data, clip):
    from music_classifier.features.audio_io import load_audio

    path = shared_data / "audio" / "gtzan_subset_zenny126" / clip
    if not path.is_file():
        pytest.skip(f"{path} not present")
    y, sr = load_audio(path, duration_s=8.0)  # 8 s keeps the test short; full clips behave alike
    assert sr == SR and y.dtype == np.float32
    _assert_same_features(extract_librosa_features(y=y, sr=sr), reference_librosa_features(y=y, sr=sr))


# --- known answers ---------------------------------------------------------------------------


def test_1khz_sine_has_centroid_near_1khz():
    t = np.arange(3 * SR) / SR
    features = extract_librosa_features(y=(0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), sr=SR)
    assert features["spectral_centroid_mean"] == pytest.approx(1000, rel=0.02)
    assert features["rolloff_mean"] == pytest.approx(1000, rel=0.05)
    assert features["rms_mean"] == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_120_bpm_click_track_has_tempo_near_120():
    import librosa

    y = librosa.clicks(times=np.arange(0, 8, 0.5), sr=SR, length=8 * SR).astype(np.float32)
    tempo = extract_librosa_features(y=y, sr=SR)["tempo"]
    # librosa's tempo grid at hop 512 has 117.45 and 123.05 BPM around 120: the nearest is right.
    assert abs(tempo - 120) < 3


# --- segments --------------------------------------------------------------------------------


def test_segments_cover_full_windows_and_skip_silence():
    y = _music_like(10.5)
    y[3 * SR : 6 * SR] = 0.0  # segment 1 silent
    segments = extract_segment_features(y=y, sr=SR, segment_s=3.0)
    assert [(i, start) for i, start, _ in segments] == [(0, 0.0), (2, 6.0)]  # 9..10.5 s dropped
    # Taken from the whole signal's frames (test_librosa_segments.py measures how close they come to
    # analysing the window alone); the whole-signal values come from the same analysis.
    whole, together = extract_track_features(y=y, sr=SR, segment_s=3.0)
    assert together == segments
    _assert_same_features(whole, extract_librosa_features(y=y, sr=SR))


def test_segments_of_a_signal_shorter_than_one_window_are_empty():
    assert extract_segment_features(y=_music_like(2.0), sr=SR, segment_s=3.0) == []


def test_segments_of_bad_signals_raise_feature_error():
    with pytest.raises(FeatureError, match="silent"):
        extract_segment_features(y=np.zeros(10 * SR, dtype=np.float32), sr=SR)
    with pytest.raises(FeatureError, match="numpy array"):
        extract_segment_features(y=[0.1] * 10 * SR, sr=SR)
    with pytest.raises(FeatureError, match="at least"):
        extract_segment_features(y=_music_like(4.0), sr=SR, segment_s=0.5)


# --- input validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "y,sr,message",
    [
        (np.zeros(SR * 2, dtype=np.int16), SR, "floating"),
        (np.zeros((2, SR * 2), dtype=np.float32), SR, "mono"),
        (np.full(SR * 2, np.nan, dtype=np.float32), SR, "NaN"),
        (np.ones(100, dtype=np.float32) * 0.1, SR, "too short"),
        (np.zeros(0, dtype=np.float32), SR, "empty"),
        (np.zeros(SR * 2, dtype=np.float32), SR, "silent"),
        (np.ones(SR * 2, dtype=np.float32) * 0.1, 0, "sample rate"),
        ([0.1] * SR * 2, SR, "numpy array"),
    ],
)
def test_bad_signals_raise_feature_error(y, sr, message):
    with pytest.raises(FeatureError, match=message):
        extract_librosa_features(y=y, sr=sr)


# --- identity of an extraction ---------------------------------------------------------------


def test_params_hash_is_canonical_and_short():
    assert EXTRACTOR_NAME == "librosa" and EXTRACTOR_VERSION == "2"
    h = params_hash({"excerpt_s": 30, "sr": 22050})
    assert h == params_hash({"sr": 22050, "excerpt_s": 30})
    assert h != params_hash({"excerpt_s": None, "sr": 22050})
    assert len(h) == 16 and int(h, 16) >= 0
    # Pinned: a change here silently orphans every stored extraction.
    assert params_hash({}) == "44136fa355b3678a"


def test_feature_names_are_documented_once_with_units():
    assert len(LIBROSA_FEATURES) == 83 == len(set(LIBROSA_FEATURE_NAMES))
    assert all(spec.unit and spec.description for spec in LIBROSA_FEATURES)
    units = {spec.name: spec.unit for spec in LIBROSA_FEATURES}
    assert units["spectral_centroid_mean"] == "Hz" and units["spectral_centroid_var"] == "Hz^2"
    assert units["tempo"] == "BPM"


def test_importing_the_extractor_is_light():
    code = (
        "import sys, music_classifier.features.librosa_extractor, music_classifier.features.audio_io;"
        "heavy = [m for m in ('librosa', 'numba', 'scipy', 'soundfile') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_short_clip_prints_no_librosa_n_fft_warning():
    """Issue 16.7a: a 1.2 s clip made librosa warn 'n_fft=1024 is too large for input signal' twice per file."""
    import warnings

    from music_classifier.features.librosa_extractor import extract_librosa_features

    sr = 22050
    y = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(1.2 * sr)) / sr)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = extract_librosa_features(y=y, sr=sr)
    assert not [str(w.message) for w in caught if "is too large" in str(w.message)]
    assert all(np.isfinite(v) for v in values.values())
