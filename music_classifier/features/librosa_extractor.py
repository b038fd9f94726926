"""The librosa feature set (GTZAN-style), computed fast and equal to the naive reference.

Speed comes from sharing work, never from changing the maths:

- one STFT (``n_fft=2048``, ``hop_length=512``, Hann, centred, zero padded — the parameters
  every librosa call of the reference uses) feeds the magnitude features (centroid, bandwidth,
  rolloff, contrast), the power features (chroma_stft, the mel spectrogram -> MFCC and the
  onset envelope -> tempo), the CQT's tuning estimate, and HPSS;
- HPSS is ``librosa.decompose.hpss``'s maths with :mod:`.median`'s exact numba running median
  in place of ``scipy.ndimage.median_filter`` (bit-identical output, several times faster), and
  its softmask and phase applied by one fused numba pass (bit-identical too, and without the
  full-size temporaries that matter on a 10-minute track);
- the constant-Q chroma behind tonnetz is librosa's own (exact), only its tuning estimate is
  taken from the shared STFT instead of a second one.

Every librosa call here is the one the reference makes, given the precomputed input librosa
would otherwise compute itself (``S=``, ``onset_envelope=``, ``chroma=``, ``tuning=``).
``tests/test_features_librosa.py`` checks all values against :mod:`.reference`.

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


def hpss_signals(D: np.ndarray, S_mag: np.ndarray, *, length: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive signals, as ``librosa.effects.hpss(y)`` returns them.

    Parameters
    ----------
    D : np.ndarray, shape (1 + n_fft/2, frames), complex
        ``librosa.stft(y)`` with the default parameters.
    S_mag : np.ndarray, same shape, real
        ``np.abs(D)``.
    length : int
        ``len(y)``; the inverse STFT is trimmed/padded to it.
    dtype : np.dtype
        ``y.dtype``.

    Returns
    -------
    (y_harmonic, y_percussive) : two np.ndarray of shape (length,), amplitude
    """
    import librosa

    from music_classifier.features.median import masked_spectrum, median_filter_axis

    # decompose.hpss: median along time -> harmonic, along frequency -> percussive; then each
    # component is magnitude * softmask(power=2, split_zeros=True since margin == 1) * phase.
    harm = median_filter_axis(S_mag, size=HPSS_KERNEL, axis=-1)
    perc = median_filter_axis(S_mag, size=HPSS_KERNEL, axis=-2)
    signals = []
    for target, other in ((harm, perc), (perc, harm)):
        part = masked_spectrum(D, S_mag, target, other)
        signals.append(
            librosa.istft(part, dtype=dtype, n_fft=N_FFT, hop_length=HOP_LENGTH, length=length)
        )
        del part
    return signals[0], signals[1]


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
    """
    y = validate_signal(y, sr)
    import librosa

    D = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)  # the one STFT, shape (1025, frames)
    S_mag = np.abs(D)
    S_pow = S_mag**2.0  # what librosa's _spectrogram(power=2.0) computes from the same STFT

    chroma_stft = librosa.feature.chroma_stft(S=S_pow, sr=sr)  # tuning estimated from S_pow, as librosa does
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(S=S_pow, sr=sr))
    del S_pow
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)
    onset_env = librosa.onset.onset_strength(S=log_mel, sr=sr)
    tempo = librosa.feature.tempo(onset_envelope=onset_env, sr=sr, hop_length=HOP_LENGTH)[0]

    centroid = librosa.feature.spectral_centroid(S=S_mag, sr=sr)
    bandwidth = librosa.feature.spectral_bandwidth(S=S_mag, sr=sr)
    rolloff = librosa.feature.spectral_rolloff(S=S_mag, sr=sr)
    contrast = librosa.feature.spectral_contrast(S=S_mag, sr=sr)
    # chroma_cqt would re-run a magnitude STFT just to estimate the tuning: reuse ours.
    tuning = librosa.estimate_tuning(S=S_mag, sr=sr, bins_per_octave=CQT_BINS_PER_OCTAVE)

    y_harm, y_perc = hpss_signals(D, S_mag, length=y.shape[-1], dtype=y.dtype)
    del D, S_mag

    chroma_cqt = librosa.feature.chroma_cqt(y=y, sr=sr, tuning=tuning)
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
