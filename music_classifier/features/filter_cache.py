"""Filter banks built once per process and parameter set, not once per call.

librosa builds its mel basis in every ``melspectrogram`` call (about 4 ms at 22,050 Hz, ``n_fft=2048``):
the same matrix for every track of one sample rate. Here it is built on first use for each
``(sr, n_fft, n_mels, dtype)`` (every parameter it depends on; the others are librosa's defaults,
fixed) and kept, read-only, for the life of the process: whole tracks and segments share it, and
so do all tracks a worker process analyses. The constant-Q banks have their own cache
(:func:`music_classifier.features.librosa_extractor._cqt_octave_filters`): they also depend on the
track's tuning estimate.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def mel_basis(*, sr: int, n_fft: int, n_mels: int = 128, dtype: str = "float32") -> np.ndarray:
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, dtype=dtype)``, cached and read-only.

    Returns
    -------
    np.ndarray, shape (n_mels, 1 + n_fft // 2), weights per (mel band, FFT bin)
    """
    import librosa

    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, dtype=np.dtype(dtype))
    basis.setflags(write=False)  # shared by every caller: nobody may change it in place
    return basis


def melspectrogram(*, S: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    """``librosa.feature.melspectrogram(S=S, sr=sr)`` (its defaults), bit for bit, with a cached basis.

    Parameters
    ----------
    S : np.ndarray, shape (1 + n_fft // 2, frames), power spectrogram
    sr : int, Hz
    n_fft : int, the FFT length behind ``S``

    Returns
    -------
    np.ndarray, shape (128, frames), mel power spectrogram
    """
    if S.shape[-2] != 1 + n_fft // 2:
        raise ValueError(f"spectrogram has {S.shape[-2]} bins, n_fft={n_fft} gives {1 + n_fft // 2}")
    # librosa's own product (same einsum, same operand order): the same values.
    return np.einsum("...ft,mf->...mt", S, mel_basis(sr=int(sr), n_fft=int(n_fft)), optimize=True)
