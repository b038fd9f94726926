"""Spectral contrast in two steps: per-frame band peaks and valleys, then their dB difference.

``librosa.feature.spectral_contrast`` (defaults: ``fmin=200``, ``n_bands=6``, ``quantile=0.02``,
``linear=False``) returns ``power_to_db(peak) - power_to_db(valley)``, and ``power_to_db`` clips
at 80 dB below the loudest value of the array it is given: so contrast is NOT frame-local, a
segment's contrast depends on the segment's own loudest peak. Keeping ``peak`` and ``valley``
(frame-local, the same numbers librosa computes) lets the whole track and each segment apply their
own clipping to the same frames: :func:`contrast_db` of the whole matrices is librosa's value.
"""

from __future__ import annotations

import numpy as np

FMIN = 200.0
N_BANDS = 6
QUANTILE = 0.02
#: Frames per block: bounds the per-band sorted copies on long tracks.
_BLOCK_FRAMES = 2048


def _band_masks(n_bins: int, sr: int, n_fft: int) -> list[tuple[np.ndarray, int, bool]]:
    """librosa's bands: (bins of the band, how many values average into peak/valley, drop last bin)."""
    import librosa

    freq = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    if len(freq) != n_bins:
        raise ValueError(f"spectrogram has {n_bins} bins, n_fft={n_fft} gives {len(freq)}")
    octa = np.zeros(N_BANDS + 2)
    octa[1:] = FMIN * (2.0 ** np.arange(0, N_BANDS + 1))
    if np.any(octa[:-1] >= 0.5 * sr):
        raise ValueError("spectral contrast bands exceed the Nyquist frequency")
    bands = []
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:], strict=True)):
        current = np.logical_and(freq >= f_low, freq <= f_high)
        idx = np.flatnonzero(current)
        if k > 0:
            current[idx[0] - 1] = True
        if k == N_BANDS:
            current[idx[-1] + 1 :] = True
        count = int(np.maximum(np.rint(QUANTILE * np.sum(current)), 1))
        bands.append((current, count, k < N_BANDS))
    return bands


def contrast_peak_valley(*, S: np.ndarray, sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame band peaks and valleys of a magnitude spectrogram, as librosa computes them.

    Parameters
    ----------
    S : np.ndarray, shape (1 + n_fft // 2, frames), magnitude spectrogram
    sr : int, Hz
    n_fft : int

    Returns
    -------
    (peak, valley) : two float64 arrays, shape (7, frames), linear magnitude: the mean of the
        top / bottom 2% of each octave band's bins (six bands from 200 Hz, then the rest)
    """
    bands = _band_masks(S.shape[-2], sr, n_fft)
    n_frames = S.shape[-1]
    peak = np.zeros((N_BANDS + 1, n_frames))
    valley = np.zeros_like(peak)
    for start in range(0, n_frames, _BLOCK_FRAMES):
        cols = slice(start, start + _BLOCK_FRAMES)
        for k, (current, count, drop_last) in enumerate(bands):
            sub_band = S[current, cols]
            if drop_last:
                sub_band = sub_band[:-1, :]
            sortedr = np.sort(sub_band, axis=-2)
            valley[k, cols] = np.mean(sortedr[:count, :], axis=-2)
            peak[k, cols] = np.mean(sortedr[-count:, :], axis=-2)
    return peak, valley


def contrast_db(peak: np.ndarray, valley: np.ndarray) -> np.ndarray:
    """``power_to_db(peak) - power_to_db(valley)`` (librosa's defaults: 80 dB floor below each's max).

    Returns
    -------
    np.ndarray, same shape as ``peak``, dB
    """
    import librosa

    return librosa.power_to_db(peak) - librosa.power_to_db(valley)
