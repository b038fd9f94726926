"""numba kernels of the fast HPSS: an exact running median filter (a drop-in for
``scipy.ndimage.median_filter(..., mode="reflect")``) and the fused softmask-and-phase pass.

librosa's HPSS spends most of its time in scipy's generic rank filter, which re-selects the
median of every window from scratch. Here each line keeps its window sorted and slides it: one
binary search and one block move per output sample instead of a fresh selection. The median of
a window is one of its elements, so picking the element of the same rank gives scipy's output
bit for bit (tested against scipy, ties included). Lines shorter than the window go to scipy.
NaN is not supported (scipy's answer for NaN depends on its selection order); callers pass
finite magnitudes.

This module imports numba at its top (module-level kernels are what numba's on-disk cache,
``cache=True`` under ``NUMBA_CACHE_DIR``, can reuse across processes; kernels defined in a
closure recompile in every process). Only the extractor imports it, lazily, inside a function:
nothing the CLI imports at start-up pulls numba in.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _reflect_index(j: int, n: int) -> int:
    # scipy's 'reflect' (d c b a | a b c d | d c b a): period 2n, mirrored half.
    m = j % (2 * n)
    if m < n:
        return m
    return 2 * n - 1 - m


@numba.njit(cache=True, nogil=True)
def _median_line(line, out, size, ext, window):
    """Running median of ``line`` into ``out`` (same length), window ``size``."""
    n = line.shape[0]
    left = size // 2  # scipy centres a window of `size` at offset size // 2 (origin 0)
    rank = size // 2  # scipy's median_filter takes the element of rank size // 2
    total = n + size - 1
    for j in range(total):
        k = j - left
        ext[j] = line[k] if 0 <= k < n else line[_reflect_index(k, n)]
    # Sorted copy of the first window (insertion sort: size is small).
    for j in range(size):
        v = ext[j]
        k = j
        while k > 0 and window[k - 1] > v:
            window[k] = window[k - 1]
            k -= 1
        window[k] = v
    for i in range(n):
        out[i] = window[rank]
        if i == n - 1:
            break
        old = ext[i]
        new = ext[i + size]
        # Position of one element equal to `old` (binary search, leftmost).
        lo = 0
        hi = size
        while lo < hi:
            mid = (lo + hi) >> 1
            if window[mid] < old:
                lo = mid + 1
            else:
                hi = mid
        p = lo
        # Slide `new` into the hole left by `old`, keeping the window sorted.
        if new > old:
            while p + 1 < size and window[p + 1] < new:
                window[p] = window[p + 1]
                p += 1
        else:
            while p > 0 and window[p - 1] > new:
                window[p] = window[p - 1]
                p -= 1
        window[p] = new


@numba.njit(cache=True, nogil=True)
def _median_rows(x, out, size):
    """Median along axis 1 (each row) of a 2-D array."""
    rows, cols = x.shape
    ext = np.empty(cols + size - 1, dtype=x.dtype)
    window = np.empty(size, dtype=x.dtype)
    for r in range(rows):
        _median_line(x[r], out[r], size, ext, window)


@numba.njit(cache=True, nogil=True)
def _median_cols(x, out, size):
    """Median along axis 0 (each column) of a 2-D array, via contiguous line buffers."""
    rows, cols = x.shape
    ext = np.empty(rows + size - 1, dtype=x.dtype)
    window = np.empty(size, dtype=x.dtype)
    line = np.empty(rows, dtype=x.dtype)
    res = np.empty(rows, dtype=x.dtype)
    for c in range(cols):
        for r in range(rows):
            line[r] = x[r, c]
        _median_line(line, res, size, ext, window)
        for r in range(rows):
            out[r, c] = res[r]


@numba.njit(cache=True, nogil=True)
def _masked_spectrum(d_ri, mag, target, other, out_ri, zero, one, half, tiny):
    """out = (mag * softmask(target, other, power=2, split_zeros=True)) * phase(D), fused.

    ``d_ri``/``out_ri`` are complex arrays viewed as (rows, 2 * cols) reals. Each operation
    is the one ``librosa.magphase`` / ``librosa.util.softmask`` / numpy's complex multiply
    performs, in the same precision and order, so the result is bit-identical.
    """
    rows, cols = mag.shape
    for r in range(rows):
        for c in range(cols):
            re = d_ri[r, 2 * c]
            im = d_ri[r, 2 * c + 1]
            m = mag[r, c]
            zeros_to_ones = one if m == zero else zero
            m_nonzero = m + zeros_to_ones
            ph_re = re / m_nonzero + zeros_to_ones
            ph_im = im / m_nonzero
            x = target[r, c]
            x_ref = other[r, c]
            z = x if x >= x_ref else x_ref
            if z < tiny:
                mask = half
            else:
                a = x / z
                b = x_ref / z
                a = a * a
                b = b * b
                mask = a / (a + b)
            scaled = m * mask
            out_ri[r, 2 * c] = scaled * ph_re - zero * ph_im
            out_ri[r, 2 * c + 1] = scaled * ph_im + zero * ph_re


def median_filter_axis(x: np.ndarray, *, size: int, axis: int) -> np.ndarray:
    """Median over a window of ``size`` samples along one axis, edges mirrored.

    Equals ``scipy.ndimage.median_filter(x, size=s, mode="reflect")`` where ``s`` is ``size`` on
    ``axis`` and 1 elsewhere — librosa's HPSS uses ``axis=-1`` (harmonic, along time) and
    ``axis=-2`` (percussive, along frequency).

    Parameters
    ----------
    x : np.ndarray, shape (n_rows, n_cols), float32 or float64, finite
    size : int >= 1
        Window length in samples along ``axis``.
    axis : {0, 1, -1, -2}

    Returns
    -------
    np.ndarray, same shape and dtype as ``x``
    """
    if x.ndim != 2:
        raise ValueError(f"median_filter_axis expects a 2-D array, got shape {x.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    if x.size == 0:
        return out
    if axis not in (0, 1, -1, -2):
        raise ValueError(f"axis must be 0 or 1 for a 2-D array, got {axis}")
    if x.shape[axis] < size:
        # Lines shorter than the window: scipy's 'reflect' extension is irregular when a pad is
        # longer than the line (it is not a plain repeated mirror), so defer to scipy itself.
        # librosa's HPSS never gets here on the >= 1 s signals the extractor accepts.
        from scipy.ndimage import median_filter

        footprint = (1, size) if axis in (1, -1) else (size, 1)
        return median_filter(x, size=footprint, mode="reflect")
    if axis in (1, -1):
        _median_rows(x, out, size)
    else:
        _median_cols(x, out, size)
    return out


def masked_spectrum(D: np.ndarray, mag: np.ndarray, target: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``(mag * librosa.util.softmask(target, other, power=2, split_zeros=True)) * phase(D)``.

    What ``librosa.decompose.hpss`` returns for one component (margin 1), in one pass and
    without its five full-size temporaries.

    Parameters
    ----------
    D : np.ndarray, shape (freq, frames), complex64 or complex128
        The STFT.
    mag : np.ndarray, same shape, float32 or float64
        ``np.abs(D)``.
    target, other : np.ndarray, same shape and dtype as ``mag``
        The median-filtered magnitudes of this component and of the other one.

    Returns
    -------
    np.ndarray, same shape and dtype as ``D``
    """
    if not (D.shape == mag.shape == target.shape == other.shape):
        raise ValueError(f"shape mismatch: {D.shape}, {mag.shape}, {target.shape}, {other.shape}")
    real = mag.dtype.type
    D = np.ascontiguousarray(D)
    out = np.empty_like(D)
    rows, cols = D.shape
    d_ri = D.view(real).reshape(rows, 2 * cols)
    out_ri = out.view(real).reshape(rows, 2 * cols)
    _masked_spectrum(
        d_ri, np.ascontiguousarray(mag), np.ascontiguousarray(target), np.ascontiguousarray(other),
        out_ri, real(0), real(1), real(0.5), real(np.finfo(mag.dtype).tiny),
    )
    return out
