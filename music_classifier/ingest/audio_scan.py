"""Audio library scan: link the audio files under the library root to tracks.

A file is matched to a live track by, in order: the path already stored on a track, the
normalised artist + title of its tags, the same from an "Artist - Title" file name, and last a
fuzzy match (see ``FUZZY_THRESHOLD``). The scan records the file's path (relative to the library
root, POSIX separators), sha256, duration, sample rate and channels. It writes only what changed,
in bulk, inside the caller's transaction; a file whose content changed marks its finished
feature extractions stale.

Formats: mp3, flac, ogg and wav are decoded by libsndfile (soundfile), which the feature
extractors use too. m4a (AAC) is not: libsndfile has no AAC decoder, so m4a files are accepted
only where ffmpeg is on PATH (librosa then decodes them through audioread); elsewhere they are
reported as skipped, never linked to a track that could not be analysed.

Security: the scanned directory must lie inside the library root; a symlink (file or directory)
resolving outside it is skipped with a reason; symlinked directories inside the root are not
followed (no loops, no file seen twice); a stored path that would escape the root is never opened.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from sqlalchemy import Connection, bindparam, func, insert, select, update

from music_classifier.db.tables import MAX_TEXT, extractions, track_genres, tracks
from music_classifier.errors import ConfigError, InputError, PathOutsideLibrary
from music_classifier.ingest.keys import normalise_artist, normalise_title, track_key

SNDFILE_EXTENSIONS = frozenset({".mp3", ".flac", ".ogg", ".wav"})
M4A_EXTENSIONS = frozenset({".m4a"})
MAX_AUDIO_PATH = 1024  # tracks.audio_path length
HASH_CHUNK = 1 << 20

# Fuzzy matching scores artist and title SEPARATELY (rapidfuzz, 0..100) and takes the lower of the
# two: artist by token_sort_ratio (word order varies: "Cash, Johnny"), title by plain ratio. Both
# must reach 85. Why separately: on one joined "artist title" string a long shared artist name
# carries a different song over the line ("Michael Jackson - Beat It" vs "Michael Jackson - Bad"
# scores 86 joined, 40 here). Why 85: one-letter typos score above it ("yesterdy"/"yesterday" 94,
# "bohemian rapsody" 97, "elvis presly" 96, "billy jean"/"billie jean" 86), a different song by the
# same artist with a similar title stays below ("let it be"/"let it go" 78, "hello"/"hallo" 80 --
# short titles get no typo tolerance, on purpose). "The", "feat. X", accents and "(Remastered)" are
# removed by the key normalisation before scoring, so those match exactly. tests/test_audio_scan.py
# pins these pairs. A miss is reported as unmatched (cheap to fix: rename or tag the file); a wrong
# match would silently mislabel training data, so the threshold errs towards misses.
FUZZY_THRESHOLD = 85.0

_TRACK_NUMBER = re.compile(r"^\d{1,3}(?:\s*[.)]\s*|\s+-\s+|\s*_\s*)")
_DASH = re.compile(r"\s+[-\u2013\u2014]\s+")


class ScanProgress(Protocol):
    """Receives hashing progress; the CLI shows it as a rich progress bar."""

    def start(self, total_bytes: int, files: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...


@dataclass(frozen=True)
class AudioFileInfo:
    duration_s: float
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class SkippedFile:
    path: str  # relative to the library root where possible
    reason: str


@dataclass(frozen=True)
class UnmatchedFile:
    path: str
    artist: str | None
    title: str | None
    reason: str


@dataclass(frozen=True)
class MatchedFile:
    path: str
    track_id: int
    how: str  # path | tags | filename | fuzzy
    score: float = 100.0


@dataclass(frozen=True)
class TrackWithoutAudio:
    track_id: int
    artist: str
    title: str
    reason: str


@dataclass
class ScanReport:
    root: Path
    directory: Path
    files_seen: int = 0
    matched: list[MatchedFile] = field(default_factory=list)
    updated: int = 0  # tracks whose audio columns were written
    unchanged: int = 0
    marked_stale: int = 0  # extraction rows turned from done to stale
    added: list[MatchedFile] = field(default_factory=list)  # new 'file' tracks (--add-unmatched)
    genre_applied: dict[str, str] = field(default_factory=dict)
    unmatched: list[UnmatchedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    without_audio: list[TrackWithoutAudio] = field(default_factory=list)


@dataclass
class _File:
    rel: str
    abs_path: Path
    size: int
    sha256: str = ""
    info: AudioFileInfo | None = None
    tag_artist: str | None = None
    tag_title: str | None = None
    name_artist: str | None = None
    name_title: str | None = None


@dataclass
class _Track:
    id: int
    artist: str
    title: str
    audio_path: str | None
    sha256: str | None
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    removed: bool
    key: str = ""
    artist_norm: str = ""
    title_norm: str = ""


# --------------------------------------------------------------------------------------------- paths


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


def walk_audio_files(root: Path, directory: Path, extensions: Iterable[str]) -> tuple[list[_File], list[SkippedFile]]:
    """Audio files under ``directory`` (sorted), plus what was skipped and why.

    Hidden entries (".name", e.g. macOS "._x.mp3" resource forks) are ignored silently, as are
    files of other types (cover.jpg).
    """
    exts = frozenset(extensions)
    files: list[_File] = []
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
            files.append(_File(rel=rel, abs_path=path, size=size))
        stack.extend(reversed(subdirs))
    files.sort(key=lambda f: f.rel)
    return files, skipped


def _rel_or_abs(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------------------ reading files


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
    """Duration, sample rate, channels from the header: libsndfile first, mutagen for the rest (m4a)."""
    import soundfile

    try:
        info = soundfile.info(str(path))
        if info.samplerate > 0 and info.channels > 0:
            return AudioFileInfo(float(info.duration), int(info.samplerate), int(info.channels))
    except Exception:  # noqa: BLE001 - fall through to mutagen, which reads m4a and odd mp3s
        pass
    import mutagen

    try:
        audio = mutagen.File(str(path))
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path.name}: not readable audio ({type(exc).__name__})") from None
    info = getattr(audio, "info", None)
    rate = int(getattr(info, "sample_rate", 0) or 0)
    channels = int(getattr(info, "channels", 0) or 0)
    if info is None or rate <= 0 or channels <= 0:
        raise InputError(f"{path.name}: not readable audio")
    return AudioFileInfo(float(getattr(info, "length", 0.0) or 0.0), rate, channels)


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
        text = " ".join(str(value).split()) if value is not None else ""
        if text:
            return text
    return None


def parse_file_name(rel: str) -> tuple[str | None, str | None]:
    """"Artist - Title" from a file name ("03 - Artist - Title.mp3", "Artist_-_Title.flac" too)."""
    stem = PurePosixPath(rel).stem
    if " " not in stem:
        stem = stem.replace("_", " ")
    stem = " ".join(stem.split())
    parts = _DASH.split(stem, maxsplit=1)
    if len(parts) == 2:
        without_number = _TRACK_NUMBER.sub("", stem, count=1)
        if without_number != stem and len(_DASH.split(without_number, maxsplit=1)) == 2:
            parts = _DASH.split(without_number, maxsplit=1)
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        return None, None
    return parts[0].strip(), parts[1].strip()


def _read_file(f: _File, progress: ScanProgress | None) -> None:
    f.info = read_audio_info(f.abs_path)
    f.sha256 = sha256_file(f.abs_path, progress)
    f.tag_artist, f.tag_title = read_tags(f.abs_path)
    f.name_artist, f.name_title = parse_file_name(f.rel)


# ----------------------------------------------------------------------------------------- matching


def _load_tracks(conn: Connection) -> list[_Track]:
    rows = conn.execute(
        select(tracks.c.id, tracks.c.artist, tracks.c.title, tracks.c.audio_path, tracks.c.file_sha256,
               tracks.c.duration_s, tracks.c.sample_rate, tracks.c.channels, tracks.c.removed_at)
        .order_by(tracks.c.id)
    ).all()
    loaded = []
    for r in rows:
        t = _Track(r.id, r.artist, r.title, r.audio_path, r.file_sha256, r.duration_s, r.sample_rate, r.channels,
                   r.removed_at is not None)
        t.key = track_key(t.artist, t.title)
        t.artist_norm, t.title_norm = normalise_artist(t.artist), normalise_title(t.title)
        loaded.append(t)
    return loaded


class _Matcher:
    """Assigns each file at most one track and each track at most one file."""

    def __init__(self, root: Path, all_tracks: list[_Track]) -> None:
        self.root = root
        self.live = [t for t in all_tracks if not t.removed]
        self.by_path = {t.audio_path: t for t in all_tracks if t.audio_path}
        self.by_key: dict[str, list[_Track]] = {}
        for t in self.live:
            self.by_key.setdefault(t.key, []).append(t)
        self.claimed: dict[int, str] = {}  # track id -> file path claimed in this scan
        self._file_exists: dict[int, bool] = {}

    def stored_file_exists(self, t: _Track) -> bool:
        """Whether the track's stored audio file is still there (False for paths escaping the root)."""
        if t.audio_path is None:
            return False
        if t.id not in self._file_exists:
            try:
                self._file_exists[t.id] = resolve_in_library(self.root, t.audio_path).is_file()
            except PathOutsideLibrary:
                self._file_exists[t.id] = False
        return self._file_exists[t.id]

    def available(self, t: _Track, rel: str) -> bool:
        if t.id in self.claimed:
            return False
        return t.audio_path in (None, rel) or not self.stored_file_exists(t)

    def match(self, f: _File) -> tuple[MatchedFile | None, str]:
        """The match for a file, or None and the reason it has none."""
        holder = self.by_path.get(f.rel)
        if holder is not None:
            if holder.removed:
                return None, f"linked to removed track #{holder.id} ({holder.artist} - {holder.title})"
            return self._claim(holder, f, "path"), ""
        duplicate_of: _Track | None = None
        for how, artist, title in (("tags", f.tag_artist, f.tag_title), ("filename", f.name_artist, f.name_title)):
            if not (artist and title):
                continue
            same_song = self.by_key.get(track_key(artist, title), [])
            for t in same_song:
                if self.available(t, f.rel):
                    return self._claim(t, f, how), ""
            duplicate_of = duplicate_of or (same_song[0] if same_song else None)
        if duplicate_of is not None:
            where = self.claimed.get(duplicate_of.id) or duplicate_of.audio_path
            return None, f"same song as {where} (track #{duplicate_of.id})"
        artist, title = (f.tag_artist, f.tag_title) if f.tag_artist and f.tag_title else (f.name_artist, f.name_title)
        if not (artist and title):
            return None, "no artist/title in tags or file name"
        best = self._fuzzy(f, normalise_artist(artist), normalise_title(title))
        if best is None:
            return None, "no matching track"
        track, score = best
        return self._claim(track, f, "fuzzy", score), ""

    def _fuzzy(self, f: _File, artist_norm: str, title_norm: str) -> tuple[_Track, float] | None:
        from rapidfuzz import fuzz, process

        candidates = [t for t in self.live if self.available(t, f.rel)]
        by_title = process.extract(title_norm, [t.title_norm for t in candidates], scorer=fuzz.ratio,
                                   score_cutoff=FUZZY_THRESHOLD, limit=None)
        scored = []
        for _, title_score, index in by_title:
            artist_score = fuzz.token_sort_ratio(artist_norm, candidates[index].artist_norm)
            score = min(title_score, artist_score)
            if score >= FUZZY_THRESHOLD:
                scored.append((score, candidates[index]))
        if not scored:
            return None
        scored.sort(key=lambda s: (-s[0], s[1].id))
        if len(scored) > 1 and scored[1][0] == scored[0][0] and scored[1][1].key != scored[0][1].key:
            return None  # two different songs fit equally well: refuse to guess
        return scored[0][1], float(scored[0][0])

    def _claim(self, t: _Track, f: _File, how: str, score: float = 100.0) -> MatchedFile:
        self.claimed[t.id] = f.rel
        return MatchedFile(f.rel, t.id, how, score)


def fuzzy_score(artist_a: str, title_a: str, artist_b: str, title_b: str) -> float:
    """The score the scan's fuzzy step gives two songs (compare with ``FUZZY_THRESHOLD``)."""
    from rapidfuzz import fuzz

    return float(min(fuzz.ratio(normalise_title(title_a), normalise_title(title_b)),
                     fuzz.token_sort_ratio(normalise_artist(artist_a), normalise_artist(artist_b))))


# -------------------------------------------------------------------------------------------- scan


def scan_library(
    conn: Connection,
    *,
    root: Path,
    subdir: Path | None = None,
    add_unmatched_genre: str | None = None,
    progress: ScanProgress | None = None,
) -> ScanReport:
    """Scan ``subdir`` (default: the whole library ``root``) and link its audio files to tracks.

    Writes only what changed, in bulk, in the caller's transaction. With ``add_unmatched_genre``,
    files matching no track become new tracks (source 'file') of that coarse genre, aliases applied.
    Raises PathOutsideLibrary when ``subdir`` is outside ``root``; unreadable files are reported.
    """
    root, directory = resolve_scan_dir(root, subdir)
    report = ScanReport(root=root, directory=directory)
    genre_id: int | None = None
    if add_unmatched_genre is not None:
        from music_classifier.ingest.genres import resolve_genres

        # Resolved first, so a bad genre name fails before any file is read.
        resolution = resolve_genres(conn, [add_unmatched_genre])
        genre_id = resolution.ids[add_unmatched_genre]
        report.genre_applied = dict(resolution.applied)

    files, report.skipped = walk_audio_files(root, directory, supported_extensions())
    readable = _read_all(files, report, progress)
    report.files_seen = len(files)

    all_tracks = _load_tracks(conn)
    matcher = _Matcher(root, all_tracks)
    by_id = {t.id: t for t in all_tracks}
    pairs: list[tuple[_File, _Track]] = []
    no_match: list[_File] = []
    for f in readable:
        found, reason = matcher.match(f)
        if found is None:
            artist = f.tag_artist or f.name_artist
            title = f.tag_title or f.name_title
            report.unmatched.append(UnmatchedFile(f.rel, artist, title, reason))
            if reason in ("no matching track", "no artist/title in tags or file name"):
                no_match.append(f)
        else:
            report.matched.append(found)
            pairs.append((f, by_id[found.track_id]))

    _write_links(conn, pairs, report)
    if genre_id is not None and no_match:
        _add_file_tracks(conn, no_match, genre_id, all_tracks, report)
    report.without_audio = _tracks_without_audio(matcher, report)
    return report


def _read_all(files: list[_File], report: ScanReport, progress: ScanProgress | None) -> list[_File]:
    if progress is not None:
        progress.start(sum(f.size for f in files), len(files))
    readable = []
    for f in files:
        try:
            _read_file(f, progress)
        except InputError as exc:
            report.skipped.append(SkippedFile(f.rel, f"unreadable: {exc}"))
            continue
        except OSError as exc:
            report.skipped.append(SkippedFile(f.rel, f"unreadable: {exc.strerror or exc}"))
            continue
        readable.append(f)
    return readable


def _write_links(conn: Connection, pairs: list[tuple[_File, _Track]], report: ScanReport) -> None:
    changed: list[dict] = []
    content_changed: list[int] = []
    for f, t in pairs:
        assert f.info is not None
        resolve_in_library(report.root, f.rel)  # guard: never store a path that escapes the root
        new = (f.rel, f.sha256, f.info.duration_s, f.info.sample_rate, f.info.channels)
        old = (t.audio_path, t.sha256, t.duration_s, t.sample_rate, t.channels)
        if new[:2] == old[:2] and new[3:] == old[3:] and _close(new[2], old[2]):
            report.unchanged += 1
            continue
        changed.append({"b_id": t.id, "b_path": f.rel, "b_sha": f.sha256, "b_duration": f.info.duration_s,
                        "b_rate": f.info.sample_rate, "b_channels": f.info.channels})
        if t.sha256 is not None and t.sha256 != f.sha256:
            content_changed.append(t.id)
    if changed:
        # No uq_tracks_audio_path collision is possible: a path already stored on a track links its
        # file to that track (the "path" step), so a track only ever moves to a path nobody holds.
        conn.execute(
            update(tracks).where(tracks.c.id == bindparam("b_id")).values(
                audio_path=bindparam("b_path"), file_sha256=bindparam("b_sha"), duration_s=bindparam("b_duration"),
                sample_rate=bindparam("b_rate"), channels=bindparam("b_channels"), updated_at=func.now()),
            changed,
        )
    report.updated = len(changed)
    report.marked_stale = mark_features_stale(conn, content_changed)


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) < 1e-6


def mark_features_stale(conn: Connection, track_ids: Iterable[int]) -> int:
    """Finished extractions of these tracks become 'stale' (their audio changed). Returns rows changed."""
    ids = sorted(set(track_ids))
    if not ids:
        return 0
    result = conn.execute(
        update(extractions).where(extractions.c.track_id.in_(ids), extractions.c.status == "done")
        .values(status="stale")
    )
    return result.rowcount or 0


def _new_track_identity(f: _File) -> tuple[str, str, str, str]:
    """(track_key, artist, title, song) of a file registered as a new track."""
    artist = f.tag_artist if f.tag_artist and f.tag_title else f.name_artist
    title = f.tag_title if f.tag_artist and f.tag_title else f.name_title
    if artist and title:
        artist, title = artist[:MAX_TEXT], title[:MAX_TEXT]
        return track_key(artist, title), artist, title, f"{artist} - {title}"
    stem = (f.tag_title or PurePosixPath(f.rel).stem)[:MAX_TEXT]
    # No artist/title: the relative path identifies the file (hashed when too long for track_key).
    key = f.rel if len(f.rel) <= 690 else "sha256:" + hashlib.sha256(f.rel.encode()).hexdigest()
    return f"path:{key}", "", stem, stem


def _add_file_tracks(conn: Connection, files: list[_File], genre_id: int, all_tracks: list[_Track],
                     report: ScanReport) -> None:
    existing = {
        r.track_key: r.id
        for r in conn.execute(select(tracks.c.id, tracks.c.track_key).where(tracks.c.source == "file"))
    }
    removed_ids = {t.id for t in all_tracks if t.removed}
    new_rows: list[dict] = []
    revived: list[dict] = []
    seen: dict[str, str] = {}
    unmatched = {u.path: u for u in report.unmatched}
    for f in files:
        assert f.info is not None
        key, artist, title, song = _new_track_identity(f)
        if key in seen:
            unmatched[f.rel] = UnmatchedFile(f.rel, artist or None, title, f"same song as {seen[key]}")
            continue
        seen[key] = f.rel
        values = {"audio_path": f.rel, "file_sha256": f.sha256, "duration_s": f.info.duration_s,
                  "sample_rate": f.info.sample_rate, "channels": f.info.channels}
        old_id = existing.get(key)
        if old_id is not None and old_id in removed_ids:
            revived.append({"b_id": old_id, **{f"b_{k}": v for k, v in values.items()}})
        elif old_id is None:
            new_rows.append({"source": "file", "track_key": key, "artist": artist, "title": title, "song": song,
                             **values})
        else:  # a live file track with this key already has other audio
            unmatched[f.rel] = UnmatchedFile(f.rel, artist or None, title, f"same song as track #{old_id}")
            continue
    ids_by_path: dict[str, int] = {}
    if new_rows:
        inserted = conn.execute(insert(tracks).returning(tracks.c.id, sort_by_parameter_order=True), new_rows).all()
        ids_by_path.update({row["audio_path"]: r.id for row, r in zip(new_rows, inserted, strict=True)})
    if revived:
        conn.execute(
            update(tracks).where(tracks.c.id == bindparam("b_id")).values(
                removed_at=None, audio_path=bindparam("b_audio_path"), file_sha256=bindparam("b_file_sha256"),
                duration_s=bindparam("b_duration_s"), sample_rate=bindparam("b_sample_rate"),
                channels=bindparam("b_channels"), updated_at=func.now()),
            revived,
        )
        conn.execute(track_genres.delete().where(track_genres.c.track_id.in_([r["b_id"] for r in revived]),
                                                 track_genres.c.rank == 0))
        ids_by_path.update({r["b_audio_path"]: r["b_id"] for r in revived})
    if ids_by_path:
        conn.execute(insert(track_genres), [{"track_id": tid, "rank": 0, "genre_id": genre_id}
                                            for tid in ids_by_path.values()])
    report.unmatched = [u for path, u in unmatched.items() if path not in ids_by_path]
    report.added = [MatchedFile(path, tid, "added") for path, tid in sorted(ids_by_path.items())]


def _tracks_without_audio(matcher: _Matcher, report: ScanReport) -> list[TrackWithoutAudio]:
    added = {m.track_id for m in report.added}
    missing = []
    for t in matcher.live:
        if t.id in matcher.claimed or t.id in added:
            continue
        if t.audio_path is None:
            missing.append(TrackWithoutAudio(t.id, t.artist, t.title, "no audio file"))
            continue
        try:
            present = resolve_in_library(report.root, t.audio_path).is_file()
        except PathOutsideLibrary:
            missing.append(TrackWithoutAudio(t.id, t.artist, t.title, "stored path escapes the library root"))
            continue
        if not present:
            missing.append(TrackWithoutAudio(t.id, t.artist, t.title, f"file missing: {t.audio_path}"))
    return missing
