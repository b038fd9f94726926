"""Reading one audio file of the library: header info, tags, "Artist - Title" file names, sha256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from music_classifier.errors import InputError
from music_classifier.ingest.file_names import NameGuess, display_guess, name_guesses
from music_classifier.text_safety import clean_text

HASH_CHUNK = 1 << 20



class ScanProgress(Protocol):
    """Receives hashing progress; the CLI shows it as a rich progress bar."""

    def start(self, total_bytes: int, files: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...


@dataclass(frozen=True)
class AudioFileInfo:
    duration_s: float
    sample_rate: int
    channels: int


@dataclass
class ScannedFile:
    """An audio file found by the walk, and what was read from it."""

    rel: str
    abs_path: Path
    size: int
    sha256: str = ""
    info: AudioFileInfo | None = None
    tag_artist: str | None = None
    tag_title: str | None = None
    name_artist: str | None = None
    name_title: str | None = None
    guesses: list[NameGuess] = field(default_factory=list)  # every file-name reading (file_names)


def sha256_file(path: Path, progress: ScanProgress | None = None) -> str:
    """Streamed, chunked sha256 (constant memory whatever the file size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress.advance(len(chunk))
    return digest.hexdigest()


def read_audio_info(path: Path) -> AudioFileInfo:
    """Duration, sample rate, channels from the header (the feature extractors' ``probe_audio``).

    InputError naming the file when it is not audio, holds no samples or declares no channels:
    such a file could not be analysed, so the scan never links it to a track.
    """
    # Imported here: audio_io pulls numpy, and the CLI imports this module's callers lazily anyway.
    from music_classifier.features.audio_io import probe_audio
    from music_classifier.features.errors import FeatureError

    try:
        info = probe_audio(path)
    except FeatureError as exc:
        # probe_audio names the full path; the scan report already gives the relative one.
        raise InputError(f"{path.name}: {str(exc).removeprefix(f'{path}: ')}") from None
    if info.channels <= 0:  # mutagen's fallback may not know the channel count
        raise InputError(f"{path.name}: not readable audio (no channel count in the header)")
    return AudioFileInfo(info.duration_s, info.sample_rate, info.channels)


def read_tags(path: Path) -> tuple[str | None, str | None]:
    """(artist, title) from the file's tags (ID3, Vorbis comments, MP4 atoms, WAV id3 chunk), or Nones."""
    import mutagen

    try:
        audio = mutagen.File(str(path), easy=True)
    except Exception:  # noqa: BLE001 - a broken tag block is not a reason to drop the file
        return None, None
    tags = getattr(audio, "tags", None)
    if not tags:
        return None, None
    return _tag_text(tags, "artist", "TPE1"), _tag_text(tags, "title", "TIT2")


def _tag_text(tags: object, *keys: str) -> str | None:
    for key in keys:
        try:
            value = tags[key]  # type: ignore[index]
        except (KeyError, ValueError, TypeError):
            continue
        if hasattr(value, "text"):
            value = value.text
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        # A tag is anyone's text: no control character is kept (text_safety), then spaces collapse.
        text = " ".join(clean_text(str(value)).split()) if value is not None else ""
        if text:
            return text
    return None


def parse_file_name(rel: str) -> tuple[str | None, str | None]:
    """The (artist, title) a file name clearly states ("03 - Artist - Title.mp3", "Artist_-_Title.flac"), or Nones.

    The matcher tries more readings than this one (``file_names.name_guesses``).
    """
    return display_guess(rel)


def read_scanned_file(f: ScannedFile, progress: ScanProgress | None) -> None:
    """Fill in header info, sha256, tags and the file-name guess; InputError/OSError if unreadable."""
    f.info = read_audio_info(f.abs_path)
    f.sha256 = sha256_file(f.abs_path, progress)
    f.tag_artist, f.tag_title = read_tags(f.abs_path)
    f.name_artist, f.name_title = parse_file_name(f.rel)
    f.guesses = name_guesses(f.rel)

