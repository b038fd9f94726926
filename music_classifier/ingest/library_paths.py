"""Where the audio library's files are: the library root, scan directories, and walking them.

Security: the scanned directory must lie inside the library root; a symlink (file or directory)
resolving outside it is skipped with a reason; symlinked directories inside the root are not
followed (no loops, no file seen twice); a stored path that would escape the root is never opened
(``resolve_in_library``).

Formats: mp3, flac, ogg and wav are decoded by libsndfile (soundfile), which the feature
extractors use too. m4a (AAC) is not: libsndfile has no AAC decoder, so m4a files are accepted
only where ffmpeg is on PATH (librosa then decodes them through audioread); elsewhere they are
reported as skipped, never linked to a track that could not be analysed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from music_classifier.errors import ConfigError, InputError, PathOutsideLibrary
from music_classifier.ingest.audio_files import ScannedFile

SNDFILE_EXTENSIONS = frozenset({".mp3", ".flac", ".ogg", ".wav"})
M4A_EXTENSIONS = frozenset({".m4a"})
MAX_AUDIO_PATH = 1024  # tracks.audio_path length


@dataclass(frozen=True)
class SkippedFile:
    path: str  # relative to the library root where possible
    reason: str


def m4a_decodable() -> bool:
    """m4a needs ffmpeg (through audioread); libsndfile cannot decode AAC."""
    return shutil.which("ffmpeg") is not None


def supported_extensions() -> frozenset[str]:
    return SNDFILE_EXTENSIONS | (M4A_EXTENSIONS if m4a_decodable() else frozenset())


def resolve_in_library(root: Path, relative: str) -> Path:
    """The absolute path of a stored library path; PathOutsideLibrary if it would escape the root.

    Refuses absolute paths, ``..`` parts and symlinks resolving outside ``root``. Use this before
    opening any ``tracks.audio_path``.
    """
    root = root.resolve()
    pure = PurePosixPath(relative)
    if not relative or pure.is_absolute() or ".." in pure.parts or "\\" in relative or Path(relative).is_absolute():
        raise PathOutsideLibrary(f"audio path {relative!r} is not a plain path inside the library root {root}")
    resolved = (root / pure).resolve()
    if not resolved.is_relative_to(root):
        raise PathOutsideLibrary(f"audio path {relative!r} resolves outside the library root {root}")
    return resolved


def resolve_scan_dir(root: Path, directory: Path | None) -> tuple[Path, Path]:
    """(resolved root, resolved directory to scan); the directory must be inside the root."""
    try:
        root = root.expanduser().resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise ConfigError(f"library root {root} does not exist (set --library or MUSIC_CLASSIFIER_LIBRARY)") from None
    if not root.is_dir():
        raise ConfigError(f"library root {root} is not a directory")
    if directory is None:
        return root, root
    candidate = directory.expanduser()
    if not candidate.is_absolute():
        # A relative DIR means relative to the working directory, as in any shell command.
        candidate = Path.cwd() / candidate
    try:
        resolved = candidate.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise InputError(f"directory {directory} does not exist") from None
    if not resolved.is_relative_to(root):
        raise PathOutsideLibrary(f"directory {directory} is outside the library root {root}")
    if not resolved.is_dir():
        raise InputError(f"{directory} is not a directory")
    return root, resolved


def walk_audio_files(
    root: Path, directory: Path, extensions: Iterable[str]
) -> tuple[list[ScannedFile], list[SkippedFile]]:
    """Audio files under ``directory`` (sorted), plus what was skipped and why.

    Hidden entries (".name", e.g. macOS "._x.mp3" resource forks) are ignored silently, as are
    files of other types (cover.jpg).
    """
    exts = frozenset(extensions)
    files: list[ScannedFile] = []
    skipped: list[SkippedFile] = []
    stack = [directory]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(SkippedFile(_rel_or_abs(root, Path(current)), f"cannot list directory: {exc.strerror}"))
            continue
        subdirs: list[Path] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            rel = _rel_or_abs(root, path)
            if entry.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    skipped.append(SkippedFile(rel, f"symlink points outside the library root (to {target})"))
                    continue
                if target.is_dir():
                    skipped.append(SkippedFile(rel, "symlinked directory not followed; scan its real path instead"))
                    continue
                if not target.exists():
                    skipped.append(SkippedFile(rel, "broken symlink"))
                    continue
            if entry.is_dir():
                subdirs.append(path)
                continue
            suffix = path.suffix.lower()
            if suffix in M4A_EXTENSIONS and suffix not in exts:
                skipped.append(SkippedFile(rel, "m4a needs ffmpeg to decode (not found on PATH)"))
                continue
            if suffix not in exts:
                continue
            if len(rel) > MAX_AUDIO_PATH:
                skipped.append(SkippedFile(rel[:80] + "…", f"path longer than {MAX_AUDIO_PATH} characters"))
                continue
            try:
                size = path.stat().st_size
            except OSError as exc:
                skipped.append(SkippedFile(rel, f"unreadable: {exc.strerror}"))
                continue
            files.append(ScannedFile(rel=rel, abs_path=path, size=size))
        stack.extend(reversed(subdirs))
    files.sort(key=lambda f: f.rel)
    return files, skipped


def _rel_or_abs(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)

