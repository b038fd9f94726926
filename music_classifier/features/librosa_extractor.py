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
- the constant-Q chroma behind tonnetz follows ``librosa.cqt``'s own code path, except that its
  per-octave filter banks (identical up to the octave's sample rate) are built once per distinct
  bank rather than once per octave, sparsified straight into CSR (:func:`chroma_cqt`, bit-identical);
  its tuning estimate is taken from the shared STFT instead of a second one;
- both tuning estimates (chroma_stft's on ``|S|**2`` with 12 bins per octave, chroma_cqt's on
  ``|S|`` with 36: different inputs, so two estimates) run piptrack's peak picking as one numba
  pass (:func:`.median.piptrack_peaks`, bit-identical).

Every librosa call here is the one the reference makes, given the precomputed input librosa
would otherwise compute itself (``S=``, ``onset_envelope=``, ``chroma=``, ``tuning=``, ``C=``;
the CQT itself runs on librosa's private ``vqt`` helpers, see :func:`chroma_cqt`).
``tests/test_features_librosa.py`` checks all values against :mod:`.reference`.

Memory: the spectral features run per block of frames, the tuning estimates keep only the peaks
they find (no spectrogram-sized temporaries), big arrays are deleted after their last use, and
HPSS goes block by block of frames into streaming inverse STFTs (:class:`StreamingIstft`,
bit-identical to ``librosa.istft``), writing the percussive part over the STFT: a 10-minute track
peaks at about four spectrogram-sized float32 arrays (the complex STFT counts two; see
BENCHMARKS.md for the measured RSS).

Segments (GTZAN's 3 s table) come from the same analysis: :func:`extract_track_features` runs
:func:`analyse_track` once and :mod:`.librosa_segments` takes each segment's statistics from the
whole track's frames (extractor version 2; how close that is to analysing a segment alone, feature
by feature: ``docs/features.md``).

librosa and numba are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from music_classifier.features.errors import FeatureError
from music_classifier.features.names import LIBROSA_FEATURE_NAMES

EXTRACTOR_NAME = "librosa"
EXTRACTOR_VERSION = "2"  # 2: segments from the whole track's frames (docs/features.md)

N_FFT = 2048
HOP_LENGTH = 512
HPSS_KERNEL = 31  # librosa.decompose.hpss default, both directions
N_MFCC = 20
CQT_BINS_PER_OCTAVE = 36  # librosa.feature.chroma_cqt default; its tuning estimate uses it
#: Shorter signals are refused: below about a second the CQT and tempo are meaningless.
MIN_DURATION_S = 1.0
#: A signal whose peak amplitude stays below this (-80 dBFS) is silence, not music.
SILENCE_PEAK = 1e-4
#: Full scale is 1; a float file may exceed it a little (overs), never by 60 dB. Above this the float32
#: spectra overflow (finite samples of 1e30 square to inf and every feature turns NaN).
MAX_PEAK = 1e3
#: Frames per call of the frame-local spectral features: bounds their temporaries.
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
    peak = float(np.max(np.abs(y)))
    if peak < SILENCE_PEAK:
        raise FeatureError(f"audio is silent (peak amplitude below {SILENCE_PEAK:g}, i.e. -80 dBFS)")
    if peak > MAX_PEAK:
        raise FeatureError(f"audio amplitude {peak:.3g} is beyond {MAX_PEAK:g} (full scale is 1, i.e. more than "
                           "+60 dBFS): not a recording the extractors can analyse")
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
    harmony: np.ndarray | tuple[float, float],
    perceptr: np.ndarray | tuple[float, float],
    tempo: float,
    mfcc: np.ndarray,
    spectral_contrast: np.ndarray,
    tonnetz: np.ndarray,
) -> dict[str, float]:
    """Frame-wise matrices -> the named summary values, in :data:`LIBROSA_FEATURE_NAMES` order.

    Shared by the fast extractor and the reference so both summarise identically; the frame-wise
    inputs are what differs. ``mfcc`` is (20, frames), ``spectral_contrast`` (7, frames),
    ``tonnetz`` (6, frames); whole matrices are summarised for chroma (GTZAN's convention), one
    row per coefficient/band/dimension otherwise. ``harmony``/``perceptr`` may be given as their
    ``mean_var`` already (the extractor frees the long signals early).
    """
    out: dict[str, float] = {}

    def put(name: str, values: np.ndarray | tuple[float, float]) -> None:
        stats = values if isinstance(values, tuple) else mean_var(values)
        out[f"{name}_mean"], out[f"{name}_var"] = stats

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


def _blockwise(feature, S: np.ndarray, per_frame: dict[str, np.ndarray] | None = None, **kwargs) -> np.ndarray:
    """``feature(S=S, **per_frame, **kwargs)`` for a frame-local librosa feature, per block of frames.

    ``per_frame`` arrays (frames on the last axis, like ``S``) are sliced along with ``S``.
    """
    blocks = []
    for i in range(0, S.shape[-1], _BLOCK_FRAMES):
        sliced = {name: value[..., i : i + _BLOCK_FRAMES] for name, value in (per_frame or {}).items()}
        blocks.append(feature(S=S[:, i : i + _BLOCK_FRAMES], **sliced, **kwargs))
    return np.concatenate(blocks, axis=-1)


class StreamingIstft:
    """``librosa.istft(D, n_fft, hop_length, length=length, dtype=dtype)`` fed frames in order.

    Same values bit for bit: the same window, the same per-batch inverse FFTs over the same
    batches of frames (``librosa.util.MAX_MEM_BLOCK`` wide, aligned as librosa aligns them), the
    same numba overlap-add in frame order and the same window-sum normalisation. So the caller
    never needs the whole STFT at once: :meth:`block_bounds` says which frame ranges to feed.
    Centred frames, Hann window, ``win_length == n_fft`` (librosa's defaults) only.
    """

    def __init__(self, *, n_frames: int, n_fft: int, hop_length: int, length: int, dtype, complex_dtype):
        import librosa
        from librosa.core import spectrum

        self._overlap_add = getattr(spectrum, "__overlap_add")  # librosa's own numba kernel
        self._irfft = librosa.get_fftlib().irfft
        window = librosa.filters.get_window("hann", n_fft, fftbins=True)
        self._window = librosa.util.pad_center(window, size=n_fft)[:, np.newaxis]
        self.n_fft, self.hop = n_fft, hop_length
        self.n_frames = min(n_frames, int(np.ceil((length + 2 * (n_fft // 2)) / hop_length)))
        self.start_frame = int(np.ceil((n_fft // 2) / hop_length))  # frames of the "head"
        itemsize = np.dtype(complex_dtype).itemsize
        self.batch = max(int(librosa.util.MAX_MEM_BLOCK // ((n_fft // 2 + 1) * itemsize)), 1)
        self.y = np.zeros(length, dtype=dtype)
        self._next = 0

    def block_bounds(self, batches_per_block: int = 32) -> list[tuple[int, int]]:
        """Frame ranges to feed, in order, aligned to librosa's batches."""
        step = self.batch * batches_per_block
        edges = [0, *range(self.start_frame + step, self.n_frames, step), self.n_frames]
        return list(zip(edges[:-1], edges[1:], strict=True))

    def _frames(self, stft_block: np.ndarray) -> np.ndarray:
        return self._window * self._irfft(stft_block, n=self.n_fft, axis=-2)

    def add(self, stft_block: np.ndarray) -> None:
        """The next frames (shape ``(1 + n_fft/2, frames)``), starting where the last call ended."""
        first = self._next
        self._next += stft_block.shape[-1]
        stft_block = stft_block[:, : max(self.n_frames - first, 0)]
        if first == 0:  # librosa's head: the first frames overlap-added apart, then copied
            head_len = self.n_fft + self.hop * (self.start_frame - 1)
            head = np.zeros(head_len, dtype=self.y.dtype)
            self._overlap_add(head, self._frames(stft_block[:, : self.start_frame]), self.hop)
            half = self.n_fft // 2
            if self.y.shape[-1] < head_len - half:
                self.y[:] = head[half : self.y.shape[-1] + half]
            else:
                self.y[: head_len - half] = head[half:]
            stft_block = stft_block[:, self.start_frame :]
            first = self.start_frame
        if (first - self.start_frame) % self.batch:
            raise ValueError(f"block starting at frame {first} is not aligned to librosa's batches")
        offset = self.start_frame * self.hop - self.n_fft // 2
        for start in range(0, stft_block.shape[-1], self.batch):
            batch = stft_block[:, start : start + self.batch]
            at = (first + start - self.start_frame) * self.hop + offset
            self._overlap_add(self.y[at:], self._frames(batch), self.hop)

    def window_sum(self) -> np.ndarray:
        """librosa's normalisation (window_sumsquare), trimmed to the output length."""
        import librosa

        ws = librosa.filters.window_sumsquare(
            window="hann", n_frames=self.n_frames, win_length=self.n_fft, n_fft=self.n_fft,
            hop_length=self.hop, dtype=self.y.dtype,
        )
        return librosa.util.fix_length(ws[self.n_fft // 2 :], size=self.y.shape[-1])

    def finish(self, window_sum: np.ndarray | None = None) -> np.ndarray:
        """The signal; ``window_sum`` may be shared between streams with the same parameters."""
        import librosa

        ws = self.window_sum() if window_sum is None else window_sum
        tiny = librosa.util.tiny(ws)
        for start in range(0, self.y.shape[-1], 1 << 20):  # elementwise: blocks bound temporaries
            y_part, ws_part = self.y[start : start + (1 << 20)], ws[start : start + (1 << 20)]
            nonzero = ws_part > tiny
            y_part[nonzero] /= ws_part[nonzero]
        return self.y


def estimate_tuning(S: np.ndarray, *, sr: int, bins_per_octave: int) -> float:
    """``librosa.estimate_tuning(S=S, sr=sr, bins_per_octave=...)``, the same value.

    Its piptrack runs as one numba pass (:func:`.median.piptrack_peaks`: the detected peaks'
    pitches and magnitudes bit for bit, without piptrack's half-dozen spectrogram-sized
    temporaries, 600 MB on a 10-minute track); the median threshold and the tuning histogram are
    librosa's own and do not depend on the peaks' order.

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

    from music_classifier.features.median import piptrack_peaks

    pitch, mag = piptrack_peaks(S, sr=sr, n_fft=N_FFT)
    threshold = np.median(mag) if pitch.size else 0.0
    with warnings.catch_warnings():
        # A signal with no pitched peaks (a drum loop) gives librosa's own 0.0 tuning; its warning says
        # only that, and would otherwise print once per track in every worker.
        warnings.simplefilter("ignore", UserWarning)
        return float(librosa.pitch_tuning(pitch[mag >= threshold], resolution=0.01, bins_per_octave=bins_per_octave))


#: Constant-Q filter banks by (octave-normalised frequencies, bandwidths, dtype); see chroma_cqt.
_CQT_FILTERS: dict[tuple, tuple[Any, int]] = {}
#: A bank is small (sparse, about 7 KB at 22,050 Hz) and its frequencies depend on the track's tuning
#: estimate, which lies on librosa's grid of 0.01 bin (100 values): a process that analyses many tracks
#: keeps the banks of every tuning it meets (a few per tuning), a few MB at most.
_CQT_FILTERS_MAX = 1024


def _cqt_octave_filters(sr: float, freqs: np.ndarray, alpha: np.ndarray, dtype, octave: int) -> tuple[Any, int]:
    """librosa's ``__vqt_filter_fft(sr, freqs, 1, 1, 0.01, window="hann", gamma=0, dtype, alpha)``.

    The filter bank depends on ``freqs / sr`` only: an octave down, the frequencies and the
    (early-downsampled) rate are both the top ones divided by 2**octave, which is exact in
    floating point (``interval_frequencies`` builds octaves as ``2**k * ratio * fmin``), and every
    step of the construction (lengths ``Q * sr / freqs``, phasor ``n * 2 * pi * freq / sr``,
    window, norm, FFT, sparsity) sees the same values. So the bank is computed once per distinct
    (frequencies * 2**octave, bandwidths) — librosa's per-octave bandwidths differ only at the
    ends of the range — and reused, bit for bit (tested against ``librosa.cqt``). Kept across
    tracks too (tracks with the same tuning estimate share their banks), at most 1024 entries.
    """
    key = ((freqs * 2.0**octave).tobytes(), alpha.tobytes(), float(sr) * 2.0**octave, np.dtype(dtype).str)
    hit = _CQT_FILTERS.get(key)
    if hit is None:
        basis, n_fft = _vqt_filter_fft(sr, freqs, alpha, dtype)
        if len(_CQT_FILTERS) >= _CQT_FILTERS_MAX:
            _CQT_FILTERS.pop(next(iter(_CQT_FILTERS)))
        hit = _CQT_FILTERS[key] = (basis, n_fft)
    return hit[0].copy(), hit[1]  # copied: the caller rescales it in place


def _vqt_filter_fft(sr: float, freqs: np.ndarray, alpha: np.ndarray, dtype) -> tuple[Any, int]:
    """librosa's ``__vqt_filter_fft(sr, freqs, 1, 1, 0.01, window="hann", gamma=0, dtype=dtype, alpha=alpha)``.

    The same steps (``librosa.filters.wavelet``, the length re-normalisation, the FFT) and the same
    sparsification as ``librosa.util.sparsify_rows(quantile=0.01)``, but the sparse matrix is built
    directly in CSR form instead of element by element through a ``lil_matrix`` (which was about
    half of the bank's cost). Same kept entries, same values, same sorted indices (tested: the
    chroma equals ``librosa.feature.chroma_cqt`` bit for bit).
    """
    import librosa
    import scipy.sparse

    basis, lengths = librosa.filters.wavelet(freqs=freqs, sr=sr, filter_scale=1, norm=1, pad_fft=True,
                                             window="hann", gamma=0, alpha=alpha)
    n_fft = basis.shape[1]
    basis *= lengths[:, np.newaxis] / float(n_fft)
    x = librosa.get_fftlib().fft(basis, n=n_fft, axis=1)[:, : (n_fft // 2) + 1]
    # sparsify_rows: per row, keep the entries at or above the magnitude below which 1% of the
    # row's total magnitude lies.
    mags = np.abs(x)
    norms = np.sum(mags, axis=1, keepdims=True)
    mag_sort = np.sort(mags, axis=1)
    cumulative_mag = np.cumsum(mag_sort / norms, axis=1)
    threshold_idx = np.argmin(cumulative_mag < 0.01, axis=1)
    keep = mags >= mag_sort[np.arange(x.shape[0]), threshold_idx][:, np.newaxis]
    rows, cols = np.nonzero(keep)  # row by row, columns ascending: the order tocsr() gives
    values = x[rows, cols].astype(dtype)
    stored = values != 0  # lil_matrix drops an assigned zero
    rows, cols, values = rows[stored], cols[stored], values[stored]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=x.shape[0]))]).astype(np.int32)
    matrix = scipy.sparse.csr_matrix((values, cols.astype(np.int32), indptr), shape=x.shape)
    return matrix, n_fft


def chroma_cqt(y: np.ndarray, *, sr: int, tuning: float) -> np.ndarray:
    """``librosa.feature.chroma_cqt(y=y, sr=sr, tuning=tuning)`` with its defaults, bit for bit.

    The constant-Q transform is ``librosa.cqt``'s own code path (``vqt`` with ``gamma=0``: early
    downsampling, per-octave STFT responses with librosa's private helpers, soxr_hq halving,
    trimming, length scaling), except that the seven octaves' filter banks, identical up to the
    octave's sample rate, are built once (:func:`_cqt_octave_filters`) instead of seven times:
    building them was about two thirds of librosa's CQT time on a 30-second clip.
    """
    import librosa
    from librosa import filters
    from librosa.core import constantq

    hop_length, n_octaves, bins_per_octave = HOP_LENGTH, 7, CQT_BINS_PER_OCTAVE
    n_bins, n_filters = n_octaves * bins_per_octave, bins_per_octave
    dtype = librosa.util.dtype_r2c(y.dtype)
    fmin = librosa.note_to_hz("C1") * 2.0 ** (tuning / bins_per_octave)
    freqs = librosa.interval_frequencies(n_bins=n_bins, fmin=fmin, intervals="equal",
                                         bins_per_octave=bins_per_octave, sort=True)
    alpha = filters._relative_bandwidth(freqs=freqs)
    _, filter_cutoff = filters.wavelet_lengths(freqs=freqs, sr=sr, window="hann", filter_scale=1, gamma=0,
                                               alpha=alpha)
    if filter_cutoff > sr / 2.0:
        raise FeatureError(f"constant-Q filters exceed the Nyquist frequency at sr={sr}")
    early_downsample = getattr(constantq, "__early_downsample")
    cqt_response = getattr(constantq, "__cqt_response")
    trim_stack = getattr(constantq, "__trim_stack")
    y_oct, sr_oct, hop = early_downsample(y, sr, hop_length, "soxr_hq", n_octaves, sr / 2.0, filter_cutoff, True)
    sr_top, responses = sr_oct, []
    for i in range(n_octaves):
        sl = slice(-n_filters, None) if i == 0 else slice(-n_filters * (i + 1), -n_filters * i)
        basis, n_fft = _cqt_octave_filters(sr_oct, freqs[sl], alpha[sl], dtype, i)
        basis[:] *= np.sqrt(sr_top / sr_oct)  # vqt's rescaling, the same operation
        with warnings.catch_warnings():
            # On a clip of a second or two the lowest octaves, downsampled, are shorter than their filter
            # frame: librosa's STFT pads them (what chroma_cqt itself computes) and warns "n_fft=1024 is
            # too large for input signal of length=…" once per octave and clip, on stderr of every worker.
            # Nothing is wrong and nothing can be done about it per file, so it is not shown.
            warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large", category=UserWarning)
            responses.append(cqt_response(y_oct, n_fft, hop, basis, "constant", dtype=dtype))
        if hop % 2 == 0:
            hop //= 2
            sr_oct /= 2.0
            y_oct = librosa.resample(y_oct, orig_sr=2, target_sr=1, res_type="soxr_hq", scale=True)
    C = trim_stack(responses, n_bins, dtype)
    # scale=True: vqt recomputes the lengths at the early-downsampled rate before dividing.
    lengths, _ = filters.wavelet_lengths(freqs=freqs, sr=sr_top, window="hann", filter_scale=1, gamma=0, alpha=alpha)
    C /= np.sqrt(librosa.util.expand_to(lengths, ndim=C.ndim, axes=-2))
    return librosa.feature.chroma_cqt(C=np.abs(C), sr=sr, tuning=tuning)


@dataclass
class TrackFrames:
    """What one pass over a signal leaves for summaries: frame-wise matrices and HPSS statistics.

    ``frames`` maps a :func:`summarise` argument to its frame-wise matrix, shape ``(rows,
    n_frames)``, every one on the same frame grid (frame ``t`` centred at sample ``t * HOP_LENGTH``);
    ``onset_env`` (``n_frames``,) is the onset strength behind the tempo. HPSS yields signals, not
    frames: their ``(mean, variance)`` over the whole signal and over each requested window of
    samples are taken before the signals are freed.
    """

    frames: dict[str, np.ndarray]
    onset_env: np.ndarray
    #: The mel power spectrogram (128, n_frames) and the spectral contrast's band peaks and valleys
    #: (7, n_frames): frame-local, while their dB values are clipped relative to the loudest value of
    #: what is summarised, so a segment converts its own frames (:mod:`.librosa_segments`).
    mel: np.ndarray
    contrast_peak: np.ndarray
    contrast_valley: np.ndarray
    tempo: float
    harmony: tuple[float, float]
    perceptr: tuple[float, float]
    window_harmony: list[tuple[float, float]]
    window_perceptr: list[tuple[float, float]]


def analyse_track(*, y: np.ndarray, sr: int, windows: Sequence[tuple[int, int]] = ()) -> TrackFrames:
    """Every frame-wise quantity of the feature set, computed once over the whole signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float32 or float64
        A valid signal (:func:`validate_signal`).
    sr : int
        Sample rate in Hz.
    windows : list of (first sample, end sample)
        Windows whose harmonic/percussive sample statistics are wanted too (segments).

    Returns
    -------
    TrackFrames
        Matrices of ``n_frames = 1 + n_samples // HOP_LENGTH`` frames.
    """
    import librosa

    from music_classifier.features.contrast import contrast_db, contrast_peak_valley
    from music_classifier.features.filter_cache import melspectrogram
    from music_classifier.features.median import median_filter_axis, split_hpss

    D = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)  # the one STFT, shape (1025, frames)
    S_mag = np.abs(D)

    # Power features. librosa's _spectrogram(power=2.0) computes exactly this from the same STFT.
    S_pow = S_mag**2.0
    chroma_stft = librosa.feature.chroma_stft(
        S=S_pow, sr=sr, tuning=estimate_tuning(S_pow, sr=sr, bins_per_octave=12)
    )
    mel = melspectrogram(S=S_pow, sr=sr, n_fft=N_FFT)
    log_mel = librosa.power_to_db(mel)
    del S_pow
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)
    onset_env = librosa.onset.onset_strength(S=log_mel, sr=sr)

    # Magnitude features. All are frame-local, so they run per block of frames: the same
    # values without full-size temporaries (librosa's bandwidth needs three).
    centroid = _blockwise(librosa.feature.spectral_centroid, S_mag, sr=sr)
    # spectral_bandwidth would recompute this very centroid (same call): hand it over.
    bandwidth = _blockwise(librosa.feature.spectral_bandwidth, S_mag, {"centroid": centroid}, sr=sr)
    rolloff = _blockwise(librosa.feature.spectral_rolloff, S_mag, sr=sr)
    # librosa's spectral_contrast in two steps, so segments can clip their own dB values.
    peak, valley = contrast_peak_valley(S=S_mag, sr=sr, n_fft=N_FFT)
    # chroma_cqt would run a second magnitude STFT just to estimate its tuning: reuse ours.
    cqt_tuning = estimate_tuning(S_mag, sr=sr, bins_per_octave=CQT_BINS_PER_OCTAVE)

    # HPSS (librosa.effects.hpss: decompose.hpss on this STFT, then two inverse STFTs), block by
    # block of frames: each block of D is split into its harmonic part and (in place) its
    # percussive part, and both go straight into streaming inverse STFTs.
    harm = median_filter_axis(S_mag, size=HPSS_KERNEL, axis=-1)  # along time -> harmonic
    del S_mag
    istft_args = dict(n_frames=D.shape[-1], n_fft=N_FFT, hop_length=HOP_LENGTH, length=y.shape[-1],
                      dtype=y.dtype, complex_dtype=D.dtype)
    harmonic, percussive = StreamingIstft(**istft_args), StreamingIstft(**istft_args)
    for first, end in harmonic.block_bounds():
        block = D[:, first:end]
        # The percussive median runs along frequency, within each frame: per block, from the
        # block's magnitude (numpy's abs again: the same values as S_mag).
        perc = median_filter_axis(np.abs(block), size=HPSS_KERNEL, axis=-2)
        harmonic.add(split_hpss(block, harm[:, first:end], perc))
        percussive.add(block)  # split_hpss left the percussive part in it
    del D, harm, perc, block
    window_sum = harmonic.window_sum()
    # GTZAN summarises the signals themselves; windows take theirs from the same signals.
    y_harm = harmonic.finish(window_sum)
    harmony, window_harmony = mean_var(y_harm), [mean_var(y_harm[a:b]) for a, b in windows]
    del y_harm
    y_perc = percussive.finish(window_sum)
    perceptr, window_perceptr = mean_var(y_perc), [mean_var(y_perc[a:b]) for a, b in windows]
    del window_sum, harmonic, percussive, y_perc

    # Last, with the spectrograms gone: the steps with big temporaries of their own.
    tempo = librosa.feature.tempo(onset_envelope=onset_env, sr=sr, hop_length=HOP_LENGTH)[0]
    tonnetz = librosa.feature.tonnetz(chroma=chroma_cqt(y, sr=sr, tuning=cqt_tuning), sr=sr)

    frames = dict(
        chroma_stft=chroma_stft,
        rms=librosa.feature.rms(y=y),  # time domain: rms(S=) would differ from rms(y=)
        spectral_centroid=centroid,
        spectral_bandwidth=bandwidth,
        rolloff=rolloff,
        zero_crossing_rate=librosa.feature.zero_crossing_rate(y),
        mfcc=mfcc,
        spectral_contrast=contrast_db(peak, valley),
        tonnetz=tonnetz,
    )
    n_frames = chroma_stft.shape[-1]
    if any(m.shape[-1] != n_frames for m in frames.values()) or onset_env.shape[-1] != n_frames:
        raise FeatureError(f"frame grids differ: { {k: m.shape for k, m in frames.items()} }")
    return TrackFrames(frames, onset_env, mel, peak, valley, float(tempo), harmony, perceptr, window_harmony,
                       window_perceptr)


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
    Peak memory is about four spectrogram-sized float32 arrays (``1025 x n_samples / 512``, about
    100 MiB each for 10 minutes at 22,050 Hz): see the module docstring.
    """
    y = validate_signal(y, sr)
    track = analyse_track(y=y, sr=sr)
    return summarise(**track.frames, harmony=track.harmony, perceptr=track.perceptr, tempo=track.tempo)


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

    Computed from the whole signal's frames (:func:`extract_track_features`, which also gives the
    whole-signal values in the same pass): within the tolerances of ``docs/features.md`` of
    analysing each window on its own.

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
    return extract_track_features(y=y, sr=sr, segment_s=segment_s, whole=False)[1]


def extract_track_features(
    *, y: np.ndarray, sr: int, segment_s: float | None, whole: bool = True
) -> tuple[dict[str, float], list[tuple[int, float, dict[str, float]]] | None]:
    """Whole-signal features and per-segment features from ONE analysis of the signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
        Mono audio (see :func:`extract_librosa_features`).
    sr : int
        Sample rate in Hz.
    segment_s : float or None
        Segment length in seconds (see :func:`extract_segment_features`); None: no segments.
    whole : bool
        Whether to return the whole-signal values (``{}`` otherwise; the analysis is the same).

    Returns
    -------
    (whole values, segments or None)
        Whole values equal :func:`extract_librosa_features`; segments as
        :func:`extract_segment_features` returns them.
    """
    from music_classifier.features.librosa_segments import window_summaries

    if segment_s is None and not whole:
        return {}, None
    if segment_s is not None and segment_s < MIN_DURATION_S:
        raise FeatureError(f"segment length must be at least {MIN_DURATION_S} s, got {segment_s} s")
    shorter_than_a_window = (segment_s is not None and not whole and isinstance(y, np.ndarray)
                             and isinstance(sr, int) and 0 < sr and y.size < segment_s * sr)
    if shorter_than_a_window:
        return {}, []
    y = validate_signal(y, sr)  # a wholly silent or invalid signal fails here, once
    bounds = segment_bounds(y.shape[-1], sr, segment_s) if segment_s is not None else []
    # A silent window is skipped (its index too), so a silent intro does not fail the whole track.
    kept = [(index, first, end) for index, first, end in bounds
            if float(np.max(np.abs(y[first:end]))) >= SILENCE_PEAK]
    track = analyse_track(y=y, sr=sr, windows=[(first, end) for _, first, end in kept])
    values = (summarise(**track.frames, harmony=track.harmony, perceptr=track.perceptr, tempo=track.tempo)
              if whole else {})
    if segment_s is None:
        return values, None
    summaries = window_summaries(track, [(first, end) for _, first, end in kept], sr=sr)
    return values, [(index, first / sr, seg) for (index, first, _), seg in zip(kept, summaries, strict=True)]
