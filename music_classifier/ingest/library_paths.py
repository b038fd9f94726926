"""Where the audio library's files are: the library root, scan directories, and walking them.

The root: set once and remembered by the database (``library_root`` has the rules); a directory
outside it is refused with how to move it.

Symlinks: a link inside the library is followed only while it leads to a place inside the root --
a file link is read through the link, a directory link is walked (each real directory once, so
loops end), and the stored path is the link's own path. A link that leads outside the root is not
followed (reported as skipped): a scan, a sheet's ``file`` cell or ``audio link`` never reaches a
file the root does not hold, so the root alone says which files the library is. A *stored* path is
never trusted either: ``resolve_in_library`` refuses absolute paths, ``..`` parts and backslashes.
A file reached twice (a link to a file that is also in the library) is read once, under its own path.

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

    Refuses absolute paths, ``..`` parts and backslashes. Symlinks inside the root are followed (see
    the module docstring). Use this before opening any ``tracks.audio_path``.
    """
    root = root.resolve()
    pure = PurePosixPath(relative)
    if not relative or pure.is_absolute() or ".." in pure.parts or "\\" in relative or Path(relative).is_absolute():
        raise PathOutsideLibrary(f"audio path {relative!r} is not a plain path inside the library root {root}")
    return root / pure


ROOT_HINT = "set the root with --library DIR or MUSIC_CLASSIFIER_LIBRARY"
OUTSIDE_LINK = "symlink leads outside the library root (not followed)"


def inside_root(root: Path, path: Path) -> bool:
    """Whether ``path``, every symlink followed, is inside ``root`` (resolved)."""
    return Path(os.path.realpath(path)).is_relative_to(root)


def resolve_scan_dir(root: Path, directory: Path | None) -> tuple[Path, Path]:
    """(resolved root, directory to scan); the directory must be inside the root.

    A relative ``directory`` is taken relative to the root (else, if it exists there, to the
    working directory). "Inside" is judged on the path as written (a symlinked folder inside the
    root is inside) or on its real path.
    """
    try:
        root = root.expanduser().resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise ConfigError(f"library root {root} does not exist ({ROOT_HINT})") from None
    if not root.is_dir():
        raise ConfigError(f"library root {root} is not a directory ({ROOT_HINT})")
    if directory is None:
        return root, root
    lexical = as_given(root, directory)
    if not lexical.exists():
        raise InputError(f"directory {directory} does not exist")
    if not inside_root(root, lexical):
        what = "a symlink that leads outside" if lexical.is_relative_to(root) else "outside"
        raise PathOutsideLibrary(f"directory {directory} is {what} the library root {root}: scan a folder inside "
                                 "it, or pass --move-root to make it the root (stored paths are rewritten)")
    scan_dir = lexical if lexical.is_relative_to(root) else lexical.resolve()
    if not scan_dir.is_dir():
        raise InputError(f"{directory} is not a directory")
    return root, scan_dir


def as_given(root: Path, path: Path) -> Path:
    """A path as the user wrote it, made absolute without resolving links: a relative path is taken
    relative to the library root, else (when it exists only there) to the working directory."""
    candidate = path.expanduser()
    if not candidate.is_absolute():
        under_root = root / candidate
        candidate = under_root if under_root.exists() or not (Path.cwd() / candidate).exists() \
            else Path.cwd() / candidate
    return Path(os.path.abspath(candidate))


def walk_audio_files(
    root: Path, directory: Path, extensions: Iterable[str]
) -> tuple[list[ScannedFile], list[SkippedFile]]:
    """Audio files under ``directory`` (sorted by path), plus what was skipped and why.

    Hidden entries (".name", e.g. macOS "._x.mp3" resource forks) are ignored silently, as are
    files of other types (cover.jpg). Symlinks are followed while they stay inside the root (module docstring).
    """
    exts = frozenset(extensions)
    real_root = Path(os.path.realpath(root))
    files: list[ScannedFile] = []
    skipped: list[SkippedFile] = []
    seen_dirs = {os.path.realpath(directory)}
    stack = [directory]
    linked: list[tuple[Path, str]] = []  # symlinked directories, walked after every real one
    while stack or linked:
        if not stack:
            path, rel = linked.pop(0)
            real = os.path.realpath(path)
            if real in seen_dirs:
                skipped.append(SkippedFile(rel, "symlinked directory already scanned under its real path"))
                continue
            seen_dirs.add(real)
            stack.append(path)
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
            if entry.is_symlink() and not path.exists():
                skipped.append(SkippedFile(rel, "broken symlink"))
                continue
            if entry.is_symlink() and not inside_root(real_root, path):
                skipped.append(SkippedFile(rel, OUTSIDE_LINK))
                continue
            if entry.is_dir():  # follows symlinks
                if entry.is_symlink():
                    linked.append((path, rel))
                elif os.path.realpath(path) not in seen_dirs:
                    seen_dirs.add(os.path.realpath(path))
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
    return _one_path_per_file(files, skipped)


def _one_path_per_file(files: list[ScannedFile], skipped: list[SkippedFile]) -> tuple[list[ScannedFile],
                                                                                       list[SkippedFile]]:
    """A file reached by several paths (a link and its target) is kept once: under a path without links."""
    by_real: dict[str, list[ScannedFile]] = {}
    for f in files:
        by_real.setdefault(os.path.realpath(f.abs_path), []).append(f)
    kept = []
    for real, paths in by_real.items():
        paths.sort(key=lambda f: (os.path.abspath(f.abs_path) != real, f.rel))  # a path without links first
        kept.append(paths[0])
        skipped.extend(SkippedFile(f.rel, f"same file as {paths[0].rel} (a symlink)") for f in paths[1:])
    kept.sort(key=lambda f: f.rel)
    return kept, skipped


def _rel_or_abs(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)

