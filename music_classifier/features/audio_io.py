"""Decode audio files into the mono 22,050 Hz float32 signal the extractors take.

Decoding uses soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3 since libsndfile 1.1) and falls
back to audioread for anything libsndfile refuses. Channels are averaged to mono (as
``librosa.to_mono`` does) and the rate converted with soxr's HQ mode (librosa's default,
``res_type="soxr_hq"``).

Memory is bounded by a CAP, not by streaming the analysis: at most ``max_duration_s`` seconds
(default :data:`MAX_ANALYSED_S`, 10 minutes) of a track are analysed. A longer track, or a longer
requested window, is reduced to its central ``max_duration_s`` seconds. Only those frames are read
(soundfile seeks, then decodes block by block, mixing each block to mono and feeding it to a
streaming resampler), so a 1-hour file costs no more memory than a 10-minute one. MP3 windows are
decoded in a single read (a libsndfile 1.2.2 defect, see ``_read_soundfile``): up to
``max_duration_s`` of native-rate multichannel float32 (212 MB for 10 min of 44.1 kHz stereo)
is held briefly before mixing. The audioread
fallback cannot seek: it decodes from the start, keeps only the frames of the window and stops
reading at its end (when the duration is unknown, the window is the first ``max_duration_s``).

Every failure (missing, empty, zero-length, corrupt, not audio, silent) raises
:class:`~music_classifier.features.errors.FeatureError` with one line naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from music_classifier.features.decoder_notes import captured_decoder_notes, summarise_notes
from music_classifier.features.errors import FeatureError

log = logging.getLogger(__name__)

TARGET_SR = 22050
#: Longest stretch of a track that is decoded and analysed, in seconds (the memory cap).
MAX_ANALYSED_S = 600.0
#: Peak amplitude below which decoded audio counts as silence (-80 dBFS).
SILENCE_PEAK = 1e-4
_BLOCK_FRAMES = 1 << 16
#: What a file that exists but that no decoder reads is called in every message.
NOT_AUDIO = "not a readable audio file: it exists but is not decodable audio"


@dataclass(frozen=True)
class AudioInfo:
    """Cheap metadata of an audio file (no decoding)."""

    duration_s: float
    sample_rate: int
    channels: int


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


#: libsndfile's words for a file it has no reader for (it says this of regular files that hold no audio).
_SNDFILE_NOT_REGULAR = "File does not exist or is not a regular file (possibly a pipe?)"


def _sndfile_reason(exc: BaseException) -> str:
    """libsndfile's refusal as one line; for an existing file whose contents it does not recognise it
    says "File does not exist or is not a regular file (possibly a pipe?)", which misleads: say what it means."""
    reason = _first_line(exc)
    if _SNDFILE_NOT_REGULAR in reason:
        return "libsndfile: contents not recognised as audio"
    return reason


def _check_file(path: Path) -> None:
    if not path.exists():
        raise FeatureError(f"{path}: file not found")
    if not path.is_file():
        raise FeatureError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise FeatureError(f"{path}: file is empty (0 bytes)")


def probe_audio(path: str | Path) -> AudioInfo:
    """Duration, sample rate and channel count, read from the header (soundfile, else mutagen).

    Raises :class:`FeatureError` when the file is missing, empty, not audio, or holds no samples.
    """
    path = Path(path)
    _check_file(path)
    import soundfile

    # The decoder's notes while reading a header are dropped: the decode that follows reports them once.
    with captured_decoder_notes():
        try:
            info = soundfile.info(str(path))
        except Exception as exc:  # libsndfile refuses: maybe a format only mutagen can read
            sf_reason = _sndfile_reason(exc)
        else:
            if info.frames <= 0 or info.samplerate <= 0:
                raise FeatureError(f"{path}: contains no audio samples (0 frames)")
            return AudioInfo(info.frames / info.samplerate, int(info.samplerate), int(info.channels))
    import mutagen

    try:
        tagged = mutagen.File(str(path))
    except Exception as exc:  # mutagen raises many unrelated types for garbage
        raise FeatureError(f"{path}: {NOT_AUDIO} ({sf_reason}; mutagen: {_first_line(exc)})") from exc
    stream = getattr(tagged, "info", None)
    length = float(getattr(stream, "length", 0) or 0)
    rate = int(getattr(stream, "sample_rate", 0) or 0)
    if stream is None or length <= 0 or rate <= 0:
        raise FeatureError(f"{path}: {NOT_AUDIO} ({sf_reason})")
    return AudioInfo(length, rate, int(getattr(stream, "channels", 0) or 0))


def excerpt_window(duration_s: float, excerpt_s: float) -> tuple[float, float]:
    """``(offset_s, duration_s)`` of an ``excerpt_s``-second window centred in the track.

    The whole track when it is not longer than the excerpt. ``--excerpt 30`` on a 200 s track
    gives ``(85.0, 30.0)``.
    """
    if excerpt_s <= 0:
        raise FeatureError(f"--excerpt must be a positive number of seconds, got {excerpt_s}")
    if duration_s <= excerpt_s:
        return 0.0, max(float(duration_s), 0.0)
    return (duration_s - excerpt_s) / 2.0, float(excerpt_s)


def _window(total_s: float | None, offset_s: float | None, duration_s: float | None, max_s: float):
    """Requested window clamped to the file, then to its central ``max_s`` seconds."""
    start = max(float(offset_s or 0.0), 0.0)
    if total_s is not None:
        if start >= total_s:
            raise FeatureError(f"offset {start:.2f} s is beyond the end of the audio ({total_s:.2f} s)")
        remaining = total_s - start
        length = remaining if duration_s is None else min(float(duration_s), remaining)
    else:
        length = float(duration_s) if duration_s is not None else max_s
    if length > max_s:
        start += (length - max_s) / 2.0
        length = max_s
    return start, length


class _MonoResampler:
    """Collects mono blocks at the native rate and resamples them as a stream."""

    def __init__(self, native_sr: int, target_sr: int):
        self._chunks: list[np.ndarray] = []
        self._stream = None
        if native_sr != target_sr:
            import soxr

            self._stream = soxr.ResampleStream(native_sr, target_sr, 1, dtype="float32", quality="HQ")

    def feed(self, block: np.ndarray, last: bool = False) -> None:
        """``block``: shape (frames, channels) or (frames,), float32."""
        mono = block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        if self._stream is not None:
            mono = self._stream.resample_chunk(mono, last=last)
        if mono.size:
            self._chunks.append(mono)

    def result(self) -> np.ndarray:
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._chunks)


def _read_soundfile(path: Path, sr: int, offset_s, duration_s, max_s) -> np.ndarray:
    import soundfile

    with soundfile.SoundFile(str(path)) as f:
        native_sr = int(f.samplerate)
        total = f.frames / native_sr if f.frames > 0 else 0.0
        if f.frames <= 0:
            raise FeatureError(f"{path}: contains no audio samples (0 frames)")
        start, length = _window(total, offset_s, duration_s, max_s)
        first = int(round(start * native_sr))
        wanted = min(int(round(length * native_sr)), f.frames - first)
        if first:
            f.seek(first)
        resampler = _MonoResampler(native_sr, sr)
        # libsndfile 1.2.2 returns glitched samples at the joins of consecutive reads of some MP3s
        # (seen on its own LAME-encoded files; a single read after a seek is clean), so MP3
        # windows are read in one call: at most max_duration_s of native-rate frames in memory.
        block_frames = wanted if f.format == "MP3" else _BLOCK_FRAMES
        done = 0
        while done < wanted:
            block = f.read(min(block_frames, wanted - done), dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                break  # header promised more frames than the stream holds (truncated file)
            done += block.shape[0]
            resampler.feed(block, last=False)
        resampler.feed(np.zeros((0, 1), dtype=np.float32), last=True)
        return resampler.result()


def _read_audioread(path: Path, sr: int, offset_s, duration_s, max_s) -> np.ndarray:
    import audioread

    with audioread.audio_open(str(path)) as f:
        native_sr, channels = int(f.samplerate), int(f.channels)
        total = float(f.duration) if f.duration else None
        start, length = _window(total, offset_s, duration_s, max_s)
        first = int(round(start * native_sr))
        last = first + int(round(length * native_sr))
        resampler = _MonoResampler(native_sr, sr)
        position = 0  # frames decoded so far
        for buf in f:
            pcm = np.frombuffer(buf, dtype="<i2").astype(np.float32) / 32768.0
            block = pcm.reshape(-1, channels)
            lo, hi = max(first - position, 0), min(last - position, block.shape[0])
            if hi > lo:
                resampler.feed(block[lo:hi])
            position += block.shape[0]
            if position >= last:
                break
        resampler.feed(np.zeros((0, 1), dtype=np.float32), last=True)
        return resampler.result()


def load_audio(
    path: str | Path,
    *,
    sr: int = TARGET_SR,
    offset_s: float | None = None,
    duration_s: float | None = None,
    max_duration_s: float = MAX_ANALYSED_S,
) -> tuple[np.ndarray, int]:
    """Decode ``path`` to mono float32 at ``sr`` Hz.

    Parameters
    ----------
    path : str or Path
    sr : int
        Output sample rate in Hz (22,050: the GTZAN rate the feature tables use).
    offset_s, duration_s : float, optional
        Window to analyse, in seconds (default: the whole track). See :func:`excerpt_window`.
    max_duration_s : float
        Cap on the analysed length: a longer window is reduced to its central
        ``max_duration_s`` seconds (see the module docstring). Memory is proportional to it.

    Returns
    -------
    (y, sr) : np.ndarray of shape (n_samples,), float32 amplitude in [-1, 1]; int

    Raises
    ------
    FeatureError
        One line naming the file: missing, empty, zero-length, corrupt or not audio, or silent.
    """
    path = Path(path)
    _check_file(path)
    if max_duration_s <= 0:
        raise FeatureError(f"{path}: max_duration_s must be positive, got {max_duration_s}")
    with captured_decoder_notes() as notes:
        try:
            y = _read_soundfile(path, sr, offset_s, duration_s, max_duration_s)
        except FeatureError:
            raise
        except Exception as sf_exc:  # libsndfile cannot read it: try audioread before giving up
            try:
                y = _read_audioread(path, sr, offset_s, duration_s, max_duration_s)
            except FeatureError:
                raise
            except Exception as ar_exc:  # any decoder failure means "not readable audio"
                raise FeatureError(
                    f"{path}: {NOT_AUDIO} ({_sndfile_reason(sf_exc)}; audioread: {_first_line(ar_exc)})"
                ) from ar_exc
    # A file that failed says so in its error; one that decoded with the decoder's notes gets one line.
    note = summarise_notes(path, notes)
    if note:
        log.warning(note)
    if y.size == 0:
        raise FeatureError(f"{path}: contains no audio samples")
    if not np.all(np.isfinite(y)):
        raise FeatureError(f"{path}: decoded audio contains NaN or infinite samples")
    if float(np.max(np.abs(y))) < SILENCE_PEAK:
        raise FeatureError(f"{path}: audio is silent (peak below -80 dBFS)")
    return y, sr
