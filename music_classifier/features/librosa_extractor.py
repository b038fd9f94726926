"""The librosa feature set (GTZAN-style), computed fast and equal to the naive reference.

Speed comes from sharing work, never from changing the maths:

- one STFT (``n_fft=2048``, ``hop_length=512``, Hann, centred, zero padded — the parameters
  every librosa call of the reference uses) feeds the magnitude features (centroid, bandwidth,
  rolloff, contrast), the power features (chroma_stft, the mel spectrogram -> MFCC and the
  onset envelope -> tempo), the tuning estimates, and HPSS;
- HPSS is ``librosa.decompose.hpss``'s maths with :mod:`.median`'s exact numba running median
  in place of ``scipy.ndimage.median_filter`` (bit-identical output, several times faster), and
  its soft masks and mask-times-phase done by one numba pass that writes the percussive part
  over the STFT (bit-identical too);
- the constant-Q chroma behind tonnetz is librosa's own (exact); only its tuning estimate is
  taken from the shared STFT instead of a second one.

Every librosa call here is the one the reference makes, given the precomputed input librosa
would otherwise compute itself (``S=``, ``onset_envelope=``, ``chroma=``, ``tuning=``).
``tests/test_features_librosa.py`` checks all values against :mod:`.reference`.

Memory: the tuning estimates run piptrack per block of frames, big arrays are deleted after
their last use and HPSS writes its percussive part over the STFT, so a 10-minute track peaks
at about seven spectrogram-sized float32 arrays (see BENCHMARKS.md for the measured RSS).

librosa and numba are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from music_classifier.features.errors import FeatureError
from music_classifier.features.names import LIBROSA_FEATURE_NAMES

EXTRACTOR_NAME = "librosa"
EXTRACTOR_VERSION = "1"

N_FFT = 2048
HOP_LENGTH = 512
HPSS_KERNEL = 31  # librosa.decompose.hpss default, both directions
N_MFCC = 20
CQT_BINS_PER_OCTAVE = 36  # librosa.feature.chroma_cqt default; its tuning estimate uses it
#: Shorter signals are refused: below about a second the CQT and tempo are meaningless.
MIN_DURATION_S = 1.0
#: A signal whose peak amplitude stays below this (-80 dBFS) is silence, not music.
SILENCE_PEAK = 1e-4
#: Frames per call of the frame-local steps (piptrack, spectral features): bounds their temporaries.
_BLOCK_FRAMES = 2048


def params_hash(params: Mapping[str, Any]) -> str:
    """Stable short id of extraction parameters: sha256 of canonical JSON, first 16 hex digits.

    Keys are sorted and separators fixed, so ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` hash
    alike. Values must be JSON types (``TypeError`` otherwise).
    """
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def validate_signal(y: Any, sr: Any) -> np.ndarray:
    """Check a signal the way ``librosa.util.valid_audio`` does, plus length and silence.

    Returns ``y`` unchanged (a 1-D floating array); raises :class:`FeatureError` with a
    one-line reason otherwise.
    """
    if not isinstance(y, np.ndarray):
        raise FeatureError(f"audio must be a numpy array, got {type(y).__name__}")
    if not np.issubdtype(y.dtype, np.floating):
        raise FeatureError(f"audio must be floating-point, got dtype {y.dtype}")
    if y.ndim != 1:
        raise FeatureError(f"audio must be mono (1-D), got shape {y.shape}")
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr <= 0:
        raise FeatureError(f"sample rate must be a positive integer, got {sr!r}")
    if y.size == 0:
        raise FeatureError("audio is empty (0 samples)")
    if not np.all(np.isfinite(y)):
        raise FeatureError("audio contains NaN or infinite samples")
    if y.size < MIN_DURATION_S * sr:
        raise FeatureError(f"audio is too short: {y.size / sr:.3f} s < {MIN_DURATION_S} s")
    if float(np.max(np.abs(y))) < SILENCE_PEAK:
        raise FeatureError(f"audio is silent (peak amplitude below {SILENCE_PEAK:g}, i.e. -80 dBFS)")
    return y


def mean_var(x: np.ndarray) -> tuple[float, float]:
    """Mean and population variance of all values, accumulated in float64."""
    return float(np.mean(x, dtype=np.float64)), float(np.var(x, dtype=np.float64))


def summarise(
    *,
    chroma_stft: np.ndarray,
    rms: np.ndarray,
    spectral_centroid: np.ndarray,
    spectral_bandwidth: np.ndarray,
    rolloff: np.ndarray,
    zero_crossing_rate: np.ndarray,
    harmony: np.ndarray,
    perceptr: np.ndarray,
    tempo: float,
    mfcc: np.ndarray,
    spectral_contrast: np.ndarray,
    tonnetz: np.ndarray,
) -> dict[str, float]:
    """Frame-wise matrices -> the named summary values, in :data:`LIBROSA_FEATURE_NAMES` order.

    Shared by the fast extractor and the reference so both summarise identically; the frame-wise
    inputs are what differs. ``mfcc`` is (20, frames), ``spectral_contrast`` (7, frames),
    ``tonnetz`` (6, frames); whole matrices are summarised for chroma (GTZAN's convention), one
    row per coefficient/band/dimension otherwise.
    """
    out: dict[str, float] = {}

    def put(name: str, values: np.ndarray) -> None:
        out[f"{name}_mean"], out[f"{name}_var"] = mean_var(values)

    put("chroma_stft", chroma_stft)
    put("rms", rms)
    put("spectral_centroid", spectral_centroid)
    put("spectral_bandwidth", spectral_bandwidth)
    put("rolloff", rolloff)
    put("zero_crossing_rate", zero_crossing_rate)
    put("harmony", harmony)
    put("perceptr", perceptr)
    out["tempo"] = float(tempo)
    for i, row in enumerate(mfcc, start=1):
        put(f"mfcc{i}", row)
    for i, row in enumerate(spectral_contrast, start=1):
        put(f"spectral_contrast{i}", row)
    for i, row in enumerate(tonnetz, start=1):
        put(f"tonnetz{i}", row)
    if list(out) != LIBROSA_FEATURE_NAMES:  # a shape change in librosa must not go unnoticed
        unexpected = sorted(set(out) ^ set(LIBROSA_FEATURE_NAMES))
        raise FeatureError(f"extractor produced unexpected feature names: {unexpected}")
    bad = [name for name, value in out.items() if not np.isfinite(value)]
    if bad:
        raise FeatureError(f"features not finite: {', '.join(bad[:5])}")
    return out


def _blockwise(feature, S: np.ndarray, **kwargs) -> np.ndarray:
    """``feature(S=S, **kwargs)`` for a frame-local librosa feature, computed per block of frames."""
    blocks = [feature(S=S[:, i : i + _BLOCK_FRAMES], **kwargs) for i in range(0, S.shape[-1], _BLOCK_FRAMES)]
    return np.concatenate(blocks, axis=-1)


def estimate_tuning(S: np.ndarray, *, sr: int, bins_per_octave: int) -> float:
    """``librosa.estimate_tuning(S=S, sr=sr, bins_per_octave=...)``, computed per block of frames.

    piptrack is column-local (per-frame threshold, parabolic interpolation along frequency), so
    running it on blocks of frames and keeping only the detected peaks gives the same peaks; the
    median and the tuning histogram do not depend on their order. Same value, but without
    piptrack's half-dozen full-size temporaries (600 MB on a 10-minute track).

    Parameters
    ----------
    S : np.ndarray, shape (1 + n_fft/2, frames), magnitude or power spectrogram
    sr : int, Hz
    bins_per_octave : int

    Returns
    -------
    float, tuning offset in fractions of a bin, in [-0.5, 0.5)
    """
    import librosa

    pitches, mags = [], []
    for start in range(0, S.shape[-1], _BLOCK_FRAMES):
        pitch, mag = librosa.piptrack(S=S[:, start : start + _BLOCK_FRAMES], sr=sr, n_fft=N_FFT)
        found = pitch > 0
        pitches.append(pitch[found])
        mags.append(mag[found])
    pitch = np.concatenate(pitches)
    mag = np.concatenate(mags)
    threshold = np.median(mag) if pitch.size else 0.0
    return float(librosa.pitch_tuning(pitch[mag >= threshold], resolution=0.01, bins_per_octave=bins_per_octave))


def extract_librosa_features(*, y: np.ndarray, sr: int) -> dict[str, float]:
    """The GTZAN-style librosa feature set of one mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float32 or float64
        Mono audio, amplitude in [-1, 1] (full scale = 1), at least :data:`MIN_DURATION_S`
        long, finite, not silent. :func:`~music_classifier.features.audio_io.load_audio` gives
        this at 22,050 Hz (the rate GTZAN features are published at).
    sr : int
        Sample rate of ``y`` in Hz.

    Returns
    -------
    dict[str, float]
        The 83 features of :data:`music_classifier.features.names.LIBROSA_FEATURES`, in that
        order; units are documented there (Hz, BPM, dB, amplitude, dimensionless).

    Raises
    ------
    FeatureError
        Invalid, too short or silent input, or a non-finite result.

    Notes
    -----
    Peak memory is about six spectrogram-sized float32 arrays (``1025 x n_samples / 512``; about
    600 MiB for 10 minutes at 22,050 Hz): large arrays are released as soon as their last use
    is done, and HPSS overwrites the STFT with its percussive part.
    """
    y = validate_signal(y, sr)
    import librosa

    from music_classifier.features.median import median_filter_axis, split_hpss

    D = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)  # the one STFT, shape (1025, frames)
    S_mag = np.abs(D)

    # Power features. librosa's _spectrogram(power=2.0) computes exactly this from the same STFT.
    S_pow = S_mag**2.0
    chroma_stft = librosa.feature.chroma_stft(
        S=S_pow, sr=sr, tuning=estimate_tuning(S_pow, sr=sr, bins_per_octave=12)
    )
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(S=S_pow, sr=sr))
    del S_pow
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)
    onset_env = librosa.onset.onset_strength(S=log_mel, sr=sr)

    # Magnitude features. All are frame-local, so they run per block of frames: the same
    # values without full-size temporaries (librosa's bandwidth needs three).
    centroid = _blockwise(librosa.feature.spectral_centroid, S_mag, sr=sr)
    bandwidth = _blockwise(librosa.feature.spectral_bandwidth, S_mag, sr=sr)
    rolloff = _blockwise(librosa.feature.spectral_rolloff, S_mag, sr=sr)
    contrast = _blockwise(librosa.feature.spectral_contrast, S_mag, sr=sr)
    # chroma_cqt would run a second magnitude STFT just to estimate its tuning: reuse ours.
    cqt_tuning = estimate_tuning(S_mag, sr=sr, bins_per_octave=CQT_BINS_PER_OCTAVE)

    # HPSS (librosa.effects.hpss: decompose.hpss on this STFT, then two inverse STFTs).
    harm = median_filter_axis(S_mag, size=HPSS_KERNEL, axis=-1)  # along time -> harmonic
    perc = median_filter_axis(S_mag, size=HPSS_KERNEL, axis=-2)  # along frequency -> percussive
    del S_mag
    harmonic = split_hpss(D, harm, perc)  # D now holds the percussive part
    del harm, perc
    y_harm = librosa.istft(harmonic, dtype=y.dtype, n_fft=N_FFT, hop_length=HOP_LENGTH, length=y.shape[-1])
    del harmonic
    y_perc = librosa.istft(D, dtype=y.dtype, n_fft=N_FFT, hop_length=HOP_LENGTH, length=y.shape[-1])
    del D

    # Last, with the spectrograms gone: the steps with big temporaries of their own.
    tempo = librosa.feature.tempo(onset_envelope=onset_env, sr=sr, hop_length=HOP_LENGTH)[0]
    chroma_cqt = librosa.feature.chroma_cqt(y=y, sr=sr, tuning=cqt_tuning)
    tonnetz = librosa.feature.tonnetz(chroma=chroma_cqt, sr=sr)

    return summarise(
        chroma_stft=chroma_stft,
        rms=librosa.feature.rms(y=y),  # time domain: rms(S=) would differ from rms(y=)
        spectral_centroid=centroid,
        spectral_bandwidth=bandwidth,
        rolloff=rolloff,
        zero_crossing_rate=librosa.feature.zero_crossing_rate(y),
        harmony=y_harm,
        perceptr=y_perc,
        tempo=tempo,
        mfcc=mfcc,
        spectral_contrast=contrast,
        tonnetz=tonnetz,
    )


def segment_bounds(n_samples: int, sr: int, segment_s: float) -> list[tuple[int, int, int]]:
    """(index, first sample, end sample) of every full window; a trailing partial one is dropped."""
    seg_len = int(round(segment_s * sr))
    if seg_len <= 0:
        raise FeatureError(f"segment length must be positive, got {segment_s} s")
    return [(i, i * seg_len, (i + 1) * seg_len) for i in range(n_samples // seg_len)]


def extract_segment_features(
    *, y: np.ndarray, sr: int, segment_s: float = 3.0
) -> list[tuple[int, float, dict[str, float]]]:
    """The same feature set over consecutive fixed windows (GTZAN's 3-second table).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
        Mono audio (see :func:`extract_librosa_features`).
    sr : int
        Sample rate in Hz.
    segment_s : float
        Window length in seconds (>= :data:`MIN_DURATION_S`); windows do not overlap.

    Returns
    -------
    list of (segment index, start in seconds, features)
        One entry per full window, index counted from 0 at the start of ``y``. A trailing window
        shorter than ``segment_s`` is dropped, and so are silent windows (their index is
        skipped), so a silent intro does not fail the whole track. Empty when ``y`` is shorter
        than one window.
    """
    y = validate_signal(y, sr) if y.size >= MIN_DURATION_S * sr else y
    if segment_s < MIN_DURATION_S:
        raise FeatureError(f"segment length must be at least {MIN_DURATION_S} s, got {segment_s} s")
    results: list[tuple[int, float, dict[str, float]]] = []
    for index, first, end in segment_bounds(y.shape[-1], sr, segment_s):
        window = y[first:end]
        if float(np.max(np.abs(window))) < SILENCE_PEAK:
            continue
        results.append((index, first / sr, extract_librosa_features(y=window, sr=sr)))
    return results
