"""Exact running median filter, a drop-in for ``scipy.ndimage.median_filter(..., mode="reflect")``.

librosa's HPSS spends most of its time in scipy's generic rank filter, which re-selects the
median of every window from scratch. Here each line keeps its window sorted and slides it: one
binary search and one block move per output sample instead of a fresh selection. The median of
a window is one of its elements, so picking the element of the same rank gives scipy's output
bit for bit (tested against scipy, ties included). NaN is not supported (scipy's answer for
NaN depends on its selection order); callers pass finite magnitudes.

numba is imported lazily, inside :func:`_kernels`, so importing this module stays cheap and
``NUMBA_CACHE_DIR`` (set by the Makefile) is honoured when the kernels compile (``cache=True``).
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def _kernels():
    """Compile (or load from numba's on-disk cache) the two line kernels."""
    import numba

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
            ext[j] = line[_reflect_index(j - left, n)]
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

    return _median_rows, _median_cols


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
    rows_kernel, cols_kernel = _kernels()
    if axis in (1, -1):
        rows_kernel(x, out, size)
    elif axis in (0, -2):
        cols_kernel(x, out, size)
    else:
        raise ValueError(f"axis must be 0 or 1 for a 2-D array, got {axis}")
    return out
