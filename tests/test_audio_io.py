"""Decoding, windowing, the memory cap and bad audio."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from music_classifier.features.audio_io import (
    AudioInfo,
    excerpt_window,
    load_audio,
    probe_audio,
)
from music_classifier.features.errors import FeatureError

SR = 22050


def _ramp(seconds: float, sr: int = SR) -> np.ndarray:
    """Samples that encode their own position, so a window's content proves where it came from."""
    n = int(seconds * sr)
    return (np.arange(n) / n * 0.9 + 0.05).astype(np.float32)


def _tone(seconds: float, sr: int, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono * (c + 1) / channels for c in range(channels)], axis=1)


def test_wav_at_target_rate_is_read_unchanged(tmp_path):
    path = tmp_path / "ramp.wav"
    sf.write(path, _ramp(3.0), SR, subtype="FLOAT")
    y, sr = load_audio(path)
    assert sr == SR and y.dtype == np.float32
    np.testing.assert_array_equal(y, _ramp(3.0))


@pytest.mark.parametrize(
    "fmt,subtype,suffix", [("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg"), ("MP3", "MPEG_LAYER_III", "mp3")]
)
def test_stereo_44k_is_mixed_and_resampled_like_librosa_load(tmp_path, fmt, subtype, suffix):
    import librosa

    path = tmp_path / f"tone.{suffix}"
    sf.write(path, _tone(2.0, 44100, 2), 44100, format=fmt, subtype=subtype)
    y, sr = load_audio(path)
    expected, _ = librosa.load(path, sr=SR)  # mono mean + soxr_hq: the reference behaviour
    assert sr == SR and y.ndim == 1 and y.dtype == np.float32
    assert abs(len(y) - 2 * SR) <= 0.01 * SR
    np.testing.assert_allclose(y, expected, atol=1e-6)
    info = probe_audio(path)
    assert info.sample_rate == 44100 and info.channels == 2
    assert info.duration_s == pytest.approx(2.0, abs=0.05)


def test_excerpt_window_is_centred():
    assert excerpt_window(200.0, 30.0) == (85.0, 30.0)
    assert excerpt_window(20.0, 30.0) == (0.0, 20.0)
    with pytest.raises(FeatureError, match="--excerpt"):
        excerpt_window(20.0, 0)


def test_offset_and_duration_read_exactly_that_window(tmp_path):
    path = tmp_path / "ramp.wav"
    full = _ramp(6.0)
    sf.write(path, full, SR, subtype="FLOAT")
    offset, duration = excerpt_window(6.0, 2.0)
    y, _ = load_audio(path, offset_s=offset, duration_s=duration)
    np.testing.assert_array_equal(y, full[2 * SR : 4 * SR])


def test_long_tracks_are_capped_to_their_centre(tmp_path):
    path = tmp_path / "ramp.wav"
    full = _ramp(6.0)
    sf.write(path, full, SR, subtype="FLOAT")
    y, _ = load_audio(path, max_duration_s=1.0)
    np.testing.assert_array_equal(y, full[int(2.5 * SR) : int(3.5 * SR)])


def test_probe_reads_header(tmp_path):
    path = tmp_path / "x.wav"
    sf.write(path, _tone(1.5, 16000, 1), 16000)
    assert probe_audio(path) == AudioInfo(duration_s=1.5, sample_rate=16000, channels=1)


def _bad_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros((0, 1), dtype=np.float32), SR)
    text = tmp_path / "lyrics.mp3"
    text.write_text("These are not the samples you are looking for.\n" * 50)
    corrupt = tmp_path / "corrupt.wav"
    sf.write(corrupt, _tone(1.0, SR, 1), SR)
    data = bytearray(corrupt.read_bytes())
    data[:12] = b"\x00" * 12  # RIFF header destroyed
    corrupt.write_bytes(bytes(data))
    silent = tmp_path / "silence.flac"
    sf.write(silent, np.zeros(SR * 2, dtype=np.float32), SR)
    missing = tmp_path / "missing.ogg"
    return {
        "empty": (empty, "empty"),
        "zero-length": (zero, "no audio samples"),
        "text named .mp3": (text, "not a readable audio file"),
        "corrupt": (corrupt, "not a readable audio file"),
        "silence": (silent, "silent"),
        "missing": (missing, "not found"),
    }


@pytest.mark.parametrize("kind", ["empty", "zero-length", "text named .mp3", "corrupt", "silence", "missing"])
def test_bad_audio_raises_one_line_feature_error_naming_the_file(tmp_path, kind):
    path, message = _bad_files(tmp_path)[kind]
    with pytest.raises(FeatureError, match=message) as info:
        load_audio(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text


@pytest.mark.parametrize("kind", ["empty", "zero-length", "text named .mp3", "corrupt", "missing"])
def test_probe_of_bad_audio_raises_feature_error(tmp_path, kind):
    path, _ = _bad_files(tmp_path)[kind]
    with pytest.raises(FeatureError) as info:
        probe_audio(path)
    assert str(path) in str(info.value)


def test_offset_beyond_the_end_is_an_error(tmp_path):
    path = tmp_path / "ramp.wav"
    sf.write(path, _ramp(2.0), SR)
    with pytest.raises(FeatureError, match="beyond the end"):
        load_audio(path, offset_s=5.0)


def test_audioread_fallback_decodes_the_same_window(tmp_path):
    """The fallback (used when libsndfile refuses a file) mixes, windows and resamples alike."""
    from music_classifier.features.audio_io import _read_audioread, _read_soundfile

    path = tmp_path / "tone.wav"
    sf.write(path, _tone(3.0, 44100, 2), 44100, subtype="PCM_16")
    for window in ((None, None), (1.0, 1.5)):
        expected = _read_soundfile(path, SR, *window, 600.0)
        got = _read_audioread(path, SR, *window, 600.0)
        assert abs(len(got) - len(expected)) <= 1
        n = min(len(got), len(expected))
        np.testing.assert_allclose(got[:n], expected[:n], atol=1e-4)


def test_text_named_mp3_is_said_to_exist_but_not_be_audio(tmp_path):
    """Issue 16.7b: libsndfile called an existing text file 'File does not exist or is not a regular file'."""
    from music_classifier.features.audio_io import probe_audio

    text = tmp_path / "notes.mp3"
    text.write_text("hello, this is not audio\n" * 20)
    for read in (load_audio, probe_audio):
        with pytest.raises(FeatureError) as info:
            read(text)
        message = str(info.value)
        assert "it exists but is not decodable audio" in message, read.__name__
        assert "does not exist" not in message and "possibly a pipe" not in message


def _damaged_mp3(tmp_path):
    path = tmp_path / "damaged.mp3"
    sf.write(path, _tone(5.0, SR, 1) * 0.3, SR, format="MP3")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 400] = np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def test_mpg123_notes_become_one_line_naming_the_file(tmp_path, capfd, caplog):
    """Issue 16.7a: libmpg123 writes 'Note: Illegal Audio-MPEG-Header …' to fd 2, several lines, no file name."""
    import logging

    path = _damaged_mp3(tmp_path)
    with caplog.at_level(logging.WARNING, logger="music_classifier.features.audio_io"):
        y, _ = load_audio(path)
    err = capfd.readouterr().err
    assert y.size > 4 * SR  # the rest of the file is decoded
    assert "Illegal Audio-MPEG-Header" not in err and "Trying to resync" not in err
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith(f"{path}: the MP3 decoder skipped damaged data")
    assert "Illegal Audio-MPEG-Header" in lines[0] and "\n" not in lines[0]


def test_other_stderr_output_during_a_decode_is_passed_through(tmp_path, capfd):
    import os

    from music_classifier.features.decoder_notes import captured_decoder_notes

    with captured_decoder_notes() as notes:
        os.write(2, b"progress 3/40\nNote: Trying to resync...\n")
    assert notes == ["Note: Trying to resync..."]
    assert capfd.readouterr().err == "progress 3/40\n"
