"""The musicnn extractor: MSD_musicnn embeddings and tag scores of a track, with no TensorFlow.

The input is built as the network was trained (musicnn's ``configuration`` and ``extractor``):
16 kHz mono (resampled here with soxr's HQ filter, as ``librosa.load`` does), a 96-band mel power
spectrogram (``librosa.feature.melspectrogram``: ``n_fft=512``, ``hop_length=256``, Hann window,
centred, Slaney mel scale and norm), compressed as ``log10(10000 x + 1)``, cut into consecutive,
non-overlapping 3-second patches of 187 frames (musicnn's default ``input_overlap=False``; the
trailing frames that do not fill a patch are left out). Unlike musicnn's own ``extractor()``, the
spectrogram stays float32 (musicnn casts it to float16, which overflows to inf on loud audio).

Each patch goes through :class:`.network.MusicnnNetwork`; a track is summarised by the mean and
population standard deviation of the penultimate layer over its patches and the mean of each tag's
score (:data:`.names.MUSICNN_FEATURES`). Patches run in batches of :data:`PATCH_BATCH`, so memory
stays bounded on long tracks.

librosa is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from music_classifier.features.errors import FeatureError
from music_classifier.features.musicnn.errors import MusicnnError
from music_classifier.features.musicnn.names import MUSICNN_FEATURE_NAMES, MUSICNN_TAGS
from music_classifier.features.musicnn.network import N_MELS, PATCH_FRAMES, MusicnnNetwork
from music_classifier.features.musicnn.weights import NETWORK_NAME, WEIGHTS_SHA256, load_weights

EXTRACTOR_NAME = "musicnn"
EXTRACTOR_VERSION = "1"

SR = 16000
N_FFT = 512
HOP_LENGTH = 256
LOG_SCALE = 10000.0
#: Patches per call of the network: bounds its temporaries (about 13 MB for 8 patches, 6 MB for one; the
#: convolutions work in cache-sized blocks). The mid-end's products span every patch of a call.
PATCH_BATCH = 8
#: Samples at 16 kHz that give one full patch (``1 + n // HOP_LENGTH >= PATCH_FRAMES`` frames).
MIN_SAMPLES_16K = (PATCH_FRAMES - 1) * HOP_LENGTH
#: The shortest audio analysed, in seconds (one patch: about 2.98 s).
MIN_DURATION_S = MIN_SAMPLES_16K / SR


def extractor_params() -> dict[str, Any]:
    """Everything that determines the extractor's output, for the params hash (JSON types only)."""
    return {
        "extractor": EXTRACTOR_NAME,
        "version": EXTRACTOR_VERSION,
        "network": NETWORK_NAME,
        "weights_sha256": WEIGHTS_SHA256,
        "sr": SR,
        "resampler": "soxr_hq",
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "n_mels": N_MELS,
        "mel": "librosa slaney, power 2, hann, centred",
        "log_compression": "log10(10000*x+1)",
        "patch_frames": PATCH_FRAMES,
        "patch_hop_frames": PATCH_FRAMES,
        "summary": "penultimate mean+std (ddof=0), taggram mean",
    }


@functools.lru_cache(maxsize=1)
def network() -> MusicnnNetwork:
    """The MSD_musicnn network with its verified weights, built once per process.

    Raises
    ------
    MusicnnError
        The ``musicnn`` package or its checkpoint is missing or altered (message names the fix).
    """
    return MusicnnNetwork(load_weights())


def _validated(y: Any, sr: Any) -> np.ndarray:
    """The librosa extractor's checks (1-D float, finite, >= 1 s, not silent), as :class:`MusicnnError`."""
    from music_classifier.features.librosa_extractor import validate_signal

    try:
        return validate_signal(y, sr)
    except FeatureError as exc:
        raise MusicnnError(str(exc)) from None


def to_16k(*, y: np.ndarray, sr: int) -> np.ndarray:
    """Mono audio at ``sr`` Hz -> float32 at 16 kHz (soxr HQ, as ``librosa.load`` resamples)."""
    import librosa

    y = y.astype(np.float32, copy=False)
    if sr == SR:
        return y
    return librosa.resample(y, orig_sr=sr, target_sr=SR, res_type="soxr_hq").astype(np.float32, copy=False)


def log_mel(*, y16: np.ndarray) -> np.ndarray:
    """The network's input representation of 16 kHz audio.

    Parameters
    ----------
    y16 : np.ndarray, shape (n_samples,), float32
        Mono audio at 16 kHz, amplitude full scale 1.

    Returns
    -------
    np.ndarray, shape (1 + n_samples // 256, 96), float32
        ``log10(10000 * mel_power + 1)`` per frame (16 ms hop) and mel band, time first.
    """
    import librosa

    # librosa.feature.melspectrogram's computation (|STFT|^2, then the mel basis), time first and with the
    # basis built once: its einsum path search and basis construction cost more than the product itself
    power = np.abs(librosa.stft(y16, n_fft=N_FFT, hop_length=HOP_LENGTH).T) ** 2  # (frames, 1 + n_fft / 2)
    mel = power @ _mel_basis_t()
    return np.log10(np.float32(LOG_SCALE) * mel + np.float32(1.0))


@functools.lru_cache(maxsize=1)
def _mel_basis_t() -> np.ndarray:
    """librosa's Slaney mel basis at 16 kHz, transposed: (1 + n_fft / 2, 96) float32, read-only."""
    import librosa

    basis = np.ascontiguousarray(librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS).T, dtype=np.float32)
    basis.flags.writeable = False
    return basis


def patches(mel: np.ndarray) -> np.ndarray:
    """(frames, 96) -> (n_patches, 187, 96) consecutive non-overlapping patches (a view; tail dropped)."""
    n_patches = mel.shape[0] // PATCH_FRAMES
    return mel[: n_patches * PATCH_FRAMES].reshape(n_patches, PATCH_FRAMES, mel.shape[1])


def run_patches(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network over patches, :data:`PATCH_BATCH` at a time.

    Parameters
    ----------
    batch : np.ndarray, shape (n_patches, 187, 96), float32
        Log-mel patches (:func:`patches`).

    Returns
    -------
    taggram : np.ndarray, shape (n_patches, 50), float32
        Tag scores in [0, 1] per patch, in :data:`.names.MUSICNN_TAGS` order.
    penultimate : np.ndarray, shape (n_patches, 200), float32
        Penultimate-layer embedding per patch.
    """
    net = network()
    tags, embeddings = [], []
    for start in range(0, len(batch), PATCH_BATCH):
        taggram, penultimate = net.forward(np.ascontiguousarray(batch[start : start + PATCH_BATCH]))
        tags.append(taggram)
        embeddings.append(penultimate)
    return np.concatenate(tags), np.concatenate(embeddings)


def patch_outputs(*, y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-patch tag scores and embeddings of a track.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
        Mono audio, amplitude full scale 1, at least :data:`MIN_DURATION_S` (about 2.98 s) long.
    sr : int
        Sample rate of ``y`` in Hz (resampled to 16 kHz here).

    Returns
    -------
    taggram : np.ndarray, shape (n_patches, 50), float32
        One row per consecutive 3-second patch (187 frames of 16 ms).
    penultimate : np.ndarray, shape (n_patches, 200), float32

    Raises
    ------
    MusicnnError
        Invalid, silent or too short audio; missing or altered weights.
    """
    y = _validated(y, sr)
    y16 = to_16k(y=y, sr=int(sr))
    if y16.size < MIN_SAMPLES_16K:
        raise MusicnnError(
            f"audio is too short for musicnn: {y.size / sr:.3f} s < {MIN_DURATION_S:.3f} s (one 3-second patch)"
        )
    return run_patches(patches(log_mel(y16=y16)))


def summarise(taggram: np.ndarray, penultimate: np.ndarray) -> dict[str, float]:
    """Per-patch outputs -> the named track features, in :data:`.names.MUSICNN_FEATURE_NAMES` order.

    Parameters
    ----------
    taggram : np.ndarray, shape (n_patches, 50)
    penultimate : np.ndarray, shape (n_patches, 200)

    Returns
    -------
    dict of str -> float
        Penultimate means, penultimate population standard deviations, tag-score means (float64 sums).
    """
    values = np.concatenate([
        penultimate.mean(axis=0, dtype=np.float64),
        penultimate.astype(np.float64).std(axis=0),
        taggram.mean(axis=0, dtype=np.float64),
    ])
    if values.shape[0] != len(MUSICNN_FEATURE_NAMES):
        raise MusicnnError(f"musicnn produced {values.shape[0]} values, expected {len(MUSICNN_FEATURE_NAMES)}")
    if not np.all(np.isfinite(values)):
        raise MusicnnError("musicnn features are not finite")
    return dict(zip(MUSICNN_FEATURE_NAMES, (float(v) for v in values), strict=True))


def extract_musicnn_features(*, y: np.ndarray, sr: int) -> dict[str, float]:
    """The musicnn features of a whole track.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
        Mono audio, amplitude full scale 1, at least :data:`MIN_DURATION_S` (about 2.98 s) long.
    sr : int
        Sample rate of ``y`` in Hz (any; resampled to 16 kHz).

    Returns
    -------
    dict of str -> float
        450 values keyed and ordered as :data:`.names.MUSICNN_FEATURE_NAMES`: ``emb001_mean`` ..
        ``emb200_std`` (dimensionless) and ``tag_*`` (tag score means in [0, 1]).

    Raises
    ------
    MusicnnError
        Invalid, silent or too short audio; missing or altered weights.
    """
    return summarise(*patch_outputs(y=y, sr=sr))


def extract_musicnn_segment_features(*, y: np.ndarray, sr: int, segment_s: float = 3.0) -> list[dict[str, float]]:
    """The musicnn features of each window of :func:`..librosa_extractor.segment_bounds`.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
        Mono audio, amplitude full scale 1.
    sr : int
        Sample rate of ``y`` in Hz.
    segment_s : float
        Window length in seconds, at least :data:`MIN_DURATION_S` (3.0 gives one patch a window).

    Returns
    -------
    list of dict of str -> float
        One dict per entry of ``segment_bounds(len(y), sr, segment_s)``, in that order (index i is
        window i), keyed as :func:`extract_musicnn_features`. The track is resampled once; each
        window is its 16 kHz slice, analysed alone (its own spectrogram and patches). A silent
        window is analysed too (the network accepts silence). A window with an std over a single
        patch gets std 0.

    Raises
    ------
    MusicnnError
        Invalid or silent track, ``segment_s`` too short, missing or altered weights.
    """
    from music_classifier.features.librosa_extractor import segment_bounds

    y = _validated(y, sr)
    if not segment_s >= MIN_DURATION_S:
        raise MusicnnError(f"musicnn segments must be at least {MIN_DURATION_S:.3f} s long, got {segment_s} s")
    bounds = segment_bounds(y.shape[-1], int(sr), segment_s)
    if not bounds:
        return []
    y16 = to_16k(y=y, sr=int(sr))
    per_window = []
    for _index, first, end in bounds:
        window = y16[int(round(first * SR / sr)) : int(round(end * SR / sr))]
        per_window.append(patches(log_mel(y16=window)))
    counts = [len(p) for p in per_window]
    if min(counts) < 1:
        raise MusicnnError(f"musicnn segments must be at least {MIN_DURATION_S:.3f} s long, got {segment_s} s")
    taggram, penultimate = run_patches(np.concatenate(per_window))
    edges = np.cumsum([0, *counts])
    return [summarise(taggram[a:b], penultimate[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def top_tags(*, y: np.ndarray, sr: int, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` MSD tags with the highest mean score over the track's patches.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
        Mono audio (see :func:`extract_musicnn_features`).
    sr : int
        Sample rate in Hz.
    k : int
        How many tags (1..50).

    Returns
    -------
    list of (tag, score)
        Tag names as MSD spells them (``"female vocalists"``, ``"Hip-Hop"``), scores in [0, 1],
        highest first.
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(MUSICNN_TAGS):
        raise MusicnnError(f"k must be an integer from 1 to {len(MUSICNN_TAGS)}, got {k!r}")
    taggram, _ = patch_outputs(y=y, sr=sr)
    means = taggram.mean(axis=0, dtype=np.float64)
    if not np.all(np.isfinite(means)):  # as extract_musicnn_features refuses them: never print NaN scores
        raise MusicnnError("musicnn tag scores are not finite")
    order = np.argsort(-means, kind="stable")[:k]
    return [(MUSICNN_TAGS[i], float(means[i])) for i in order]
