"""numba kernels of the fast extractor: an exact running median filter (a drop-in for
``scipy.ndimage.median_filter(..., mode="reflect")``) and one fused pass for the soft masks and
mask-times-phase, all bit-identical to what ``librosa.decompose.hpss`` computes; and the peak
picking of ``librosa.piptrack`` behind the tuning estimates, bit-identical too.

librosa's HPSS spends most of its time in scipy's generic rank filter, which re-selects the
median of every window from scratch. Here each line keeps its window sorted and slides it: two
branch-free rank counts and one block move per output sample instead of a fresh selection. The median of
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

#: Rows (frames, for librosa's Fortran-ordered STFT) per block of magnitudes split_hpss recomputes.
_ABS_BLOCK_ROWS = 1024


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
        # Ranks by counting, without branches (the loop vectorises): `old` sits at p, the first
        # of its equals; with it removed, `new` belongs at q.
        p = 0
        q = 0
        for k in range(size):
            w = window[k]
            p += w < old
            q += w < new
        # Slide the elements between the two positions by one and drop `new` in at q.
        if old < new:
            q -= 1
            for k in range(p, q):
                window[k] = window[k + 1]
        else:
            for k in range(p, q, -1):
                window[k] = window[k - 1]
        window[q] = new


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
def _split(d_ri, mag, harm, perc, harm_ri, zero, one, half, tiny):
    """Harmonic part into ``harm_ri``, percussive part over ``d_ri`` (complex as interleaved reals).

    Per element, the operations of ``librosa.decompose.hpss`` (margin 1, power 2) in its order and
    precision: ``librosa.magphase``'s phase; ``librosa.util.softmask``'s Z = max of the two
    medians, both masks 0.5 below ``tiny``, else (X/Z)**2 / ((X/Z)**2 + (X_ref/Z)**2) (the sum is
    the same for both masks, IEEE addition commutes); then numpy's real-times-complex product.
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
            h = harm[r, c]
            p = perc[r, c]
            z = h if h >= p else p
            if z < tiny:
                mask_h = half
                mask_p = half
            else:
                a = h / z
                b = p / z
                a = a * a
                b = b * b
                mask_h = a / (a + b)
                mask_p = b / (a + b)
            scaled = m * mask_h
            harm_ri[r, 2 * c] = scaled * ph_re - zero * ph_im
            harm_ri[r, 2 * c + 1] = scaled * ph_im + zero * ph_re
            scaled = m * mask_p
            d_ri[r, 2 * c] = scaled * ph_re - zero * ph_im
            d_ri[r, 2 * c + 1] = scaled * ph_im + zero * ph_re


def _c_views(*arrays: np.ndarray) -> tuple[list[np.ndarray], bool]:
    """C-contiguous views of same-layout 2-D arrays: themselves, or their transposes when all are
    Fortran-ordered (``librosa.stft`` returns Fortran order: each frame contiguous)."""
    if all(a.ndim == 2 and a.flags.c_contiguous for a in arrays):
        return list(arrays), False
    if all(a.ndim == 2 and a.flags.f_contiguous for a in arrays):
        return [a.T for a in arrays], True
    raise ValueError("arrays must be 2-D and all C-contiguous or all Fortran-contiguous")


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
    np.ndarray, same shape, dtype and memory order (C or Fortran) as ``x``
    """
    if x.ndim != 2:
        raise ValueError(f"median_filter_axis expects a 2-D array, got shape {x.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if axis not in (0, 1, -1, -2):
        raise ValueError(f"axis must be 0 or 1 for a 2-D array, got {axis}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if x.shape[axis] < size:
        # Lines shorter than the window: scipy's 'reflect' extension is irregular when a pad is
        # longer than the line (it is not a plain repeated mirror), so defer to scipy itself.
        # librosa's HPSS never gets here on the >= 1 s signals the extractor accepts.
        from scipy.ndimage import median_filter

        footprint = (1, size) if axis in (1, -1) else (size, 1)
        return median_filter(x, size=footprint, mode="reflect")
    along_rows = axis in (1, -1)  # the window runs along each row
    if x.flags.f_contiguous and not x.flags.c_contiguous:
        x, along_rows, transposed = x.T, not along_rows, True
    else:
        x, transposed = np.ascontiguousarray(x), False
    out = np.empty_like(x)
    if x.size:
        if along_rows:
            _median_rows(x, out, size)
        else:
            _median_cols(x, out, size)
    return out.T if transposed else out


def split_hpss(D: np.ndarray, harm: np.ndarray, perc: np.ndarray) -> np.ndarray:
    """Harmonic and percussive STFTs from the STFT and its two median-filtered magnitudes.

    Returns the harmonic part and OVERWRITES ``D`` with the percussive part: exactly the pair
    ``librosa.decompose.hpss(D)`` returns (margin 1, power 2), bit for bit, with one new
    spectrogram instead of librosa's eight full-size temporaries (magnitude, phase, two masks and
    their intermediates). ``|D|`` is recomputed per block with numpy's ``abs`` (bit-identical to
    ``librosa.magphase``'s).

    Parameters
    ----------
    D : np.ndarray, shape (freq, frames), complex64 or complex128
        The STFT (``librosa.stft`` gives Fortran order; C order works too). Consumed.
    harm, perc : np.ndarray, same shape and memory order, the matching real dtype
        ``|D|`` median-filtered along time and along frequency (:func:`median_filter_axis`).

    Returns
    -------
    np.ndarray, same shape, dtype and memory order as ``D``: the harmonic STFT
    """
    if not (D.shape == harm.shape == perc.shape):
        raise ValueError(f"shape mismatch: {D.shape}, {harm.shape}, {perc.shape}")
    if harm.dtype != perc.dtype or np.dtype(harm.dtype).itemsize * 2 != D.dtype.itemsize:
        raise ValueError(f"dtype mismatch: {D.dtype}, {harm.dtype}, {perc.dtype}")
    out = np.empty_like(D)
    (d, h, p, o), _ = _c_views(D, harm, perc, out)
    real = harm.dtype.type
    rows, cols = d.shape
    d_ri = d.view(real).reshape(rows, 2 * cols)
    out_ri = o.view(real).reshape(rows, 2 * cols)
    tiny = real(np.finfo(harm.dtype).tiny)
    for start in range(0, rows, _ABS_BLOCK_ROWS):
        block = slice(start, start + _ABS_BLOCK_ROWS)
        mag = np.abs(d[block])  # before the kernel overwrites this block of D
        _split(d_ri[block], mag, h[block], p[block], out_ri[block], real(0), real(1), real(0.5), tiny)
    return out


@numba.njit(cache=True, nogil=True)
def _piptrack_peaks(S, lo, hi, threshold, sr, n_fft, zero, half, two, cast, pitch_out, mag_out):
    """The peaks ``librosa.piptrack(S=S, sr=sr, n_fft=n_fft)`` reports, frame by frame.

    For each frame (column of ``S``, a magnitude or power spectrogram): ``threshold`` times the
    frame's maximum; the local maxima (``x[i] > x[i-1] and x[i] >= x[i+1]``) of ``S`` zeroed at
    or below it, among the bins ``lo <= i < hi`` (the fmin..fmax mask, never the first or last
    bin); the parabolic shift and gradient there. Writes each peak's pitch and magnitude, and
    returns how many. Same operations, operand types and order as librosa (its numba stencils:
    the literal ``2`` makes ``a``, ``b`` and the shift float64 before the float32 store;
    ``numpy.gradient``'s interior ``(x[i+1] - x[i-1]) / 2``; the pitch in float64), so the same
    values bit for bit, without piptrack's full-size temporaries. ``zero``, ``half`` and ``two``
    come in ``S``'s dtype; ``cast`` (one element of that dtype) rounds a float64 as a store would.
    """
    rows, cols = S.shape
    count = 0
    for c in range(cols):
        peak = S[0, c]
        for r in range(1, rows):
            if S[r, c] > peak:  # np.max: NaN never occurs (finite magnitudes)
                peak = S[r, c]
        ref = threshold * peak
        for r in range(lo, hi):
            x0 = S[r, c] if S[r, c] > ref else zero
            xm = S[r - 1, c] if S[r - 1, c] > ref else zero
            xp = S[r + 1, c] if S[r + 1, c] > ref else zero
            if not (x0 > xm and x0 >= xp):
                continue
            s0, sm, sp = S[r, c], S[r - 1, c], S[r + 1, c]
            a = sp + sm - 2 * s0
            b = (sp - sm) / 2
            cast[0] = 0.0 if np.abs(b) >= np.abs(a) else -b / a
            shift = cast[0]
            avg = (sp - sm) / two
            dskew = half * avg * shift
            pitch_out[count] = (np.float64(r) + np.float64(shift)) * sr / np.float64(n_fft)
            if pitch_out[count] > 0:
                mag_out[count] = s0 + dskew
                count += 1
    return count


def piptrack_peaks(S: np.ndarray, *, sr: int, n_fft: int, fmin: float = 150.0, fmax: float = 4000.0,
                   threshold: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Pitches and magnitudes of the peaks ``librosa.piptrack(S=S, ...)`` finds (those with pitch > 0).

    ``librosa.estimate_tuning`` keeps exactly these (``pitch > 0``) from piptrack's two
    spectrogram-sized arrays; order differs (frame by frame here), which neither its median nor
    its histogram sees. Bit-identical values (tested), one pass, no full-size temporaries.

    Parameters
    ----------
    S : np.ndarray, shape (1 + n_fft/2, frames), float32 or float64, non-negative, finite
    sr, n_fft : int
    fmin, fmax, threshold : float
        piptrack's defaults.

    Returns
    -------
    (pitches, mags) : two 1-D arrays of ``S``'s dtype, Hz and magnitude
    """
    import librosa

    if S.ndim != 2 or S.dtype not in (np.float32, np.float64):
        raise ValueError(f"piptrack_peaks expects a 2-D float spectrogram, got {S.dtype} {S.shape}")
    fft_freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    feasible = np.flatnonzero((max(fmin, 0) <= fft_freqs) & (fft_freqs < min(fmax, float(sr) / 2)))
    if feasible.size == 0 or S.shape[-1] == 0:
        empty = np.empty(0, dtype=S.dtype)
        return empty, empty.copy()
    lo, hi = int(feasible[0]), int(feasible[-1]) + 1
    # librosa's stencils leave the first and last bin out of the local maxima (edge value 0 and
    # x[-1] > x[-2], which the mask never includes for fmin > 0 and fmax < sr/2).
    if lo < 1 or hi > S.shape[0] - 1:
        raise ValueError("piptrack_peaks needs fmin > 0 and fmax below the Nyquist bin")
    capacity = ((hi - lo) // 2 + 1) * S.shape[-1]  # peaks in a frame are never adjacent
    pitches = np.empty(capacity, dtype=S.dtype)
    mags = np.empty(capacity, dtype=S.dtype)
    real = S.dtype.type
    n = _piptrack_peaks(S, lo, hi, real(threshold), float(sr), int(n_fft), real(0), real(0.5), real(2),
                        np.empty(1, dtype=S.dtype), pitches, mags)
    return pitches[:n], mags[:n]
