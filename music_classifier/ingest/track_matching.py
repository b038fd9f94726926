"""Assigning scanned audio files to stored tracks: stored path, exact tags, exact file name, then fuzzy.

Order of the rules (the README's "How files are matched" documents them for users):

1. path: a file whose path is already stored on a track stays that track's (``audio link`` and
   earlier scans store paths, so a fix is never undone by the next scan);
2. tags: the file's artist + title tags (ID3, Vorbis comments, MP4 atoms) equal a track's, after
   key normalisation ("The", "feat. X", accents, case, punctuation ignored);
3. filename: one of the file-name readings of ``file_names.name_guesses`` equals a track's; when
   several readings equal different tracks ("Artist_Title" split two ways), nothing is guessed;
4. fuzzy: over every reading, scored by ``match_scoring`` -- a file takes a track only when the
   score clears ``FUZZY_THRESHOLD``, beats the runner-up song by ``FUZZY_MARGIN``, and no other
   file fits that track within the margin. Exact matches of every file are settled before any fuzzy
   one, so a near miss never takes a track another file names exactly.

Each file gets at most one track and each track at most one file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, select

from music_classifier.db.tables import tracks
from music_classifier.errors import PathOutsideLibrary
from music_classifier.ingest.audio_files import ScannedFile
from music_classifier.ingest.keys import normalise_artist, normalise_title, track_key
from music_classifier.ingest.library_paths import resolve_in_library
from music_classifier.ingest.match_scoring import (
    CANDIDATE_FLOOR,
    CANDIDATES_SHOWN,
    FUZZY_MARGIN,
    FUZZY_THRESHOLD,
    Reading,
    clear_winner,
    closeness_matrix,
    fuzzy_score,
    reading,
    score_matrix,
)

__all__ = ["FUZZY_MARGIN", "FUZZY_THRESHOLD", "Candidate", "MatchedFile", "StoredTrack", "TrackMatcher",
           "fuzzy_score", "load_tracks", "readings_of"]

NO_READING = "no artist/title in tags or file name"
NO_MATCH = "no matching track"


@dataclass(frozen=True)
class MatchedFile:
    path: str
    track_id: int
    how: str  # path | tags | filename | fuzzy | added | link
    score: float = 100.0


@dataclass(frozen=True)
class Candidate:
    """A near match the report offers: a track for an unmatched file, or a file for a track without audio."""

    track_id: int
    path: str | None
    artist: str
    title: str
    score: float  # the strict match score (needs FUZZY_THRESHOLD)
    closeness: float = 0.0  # the looser similarity that ranks candidates


@dataclass
class StoredTrack:
    """A track as stored, with the normalised names the matcher compares."""

    id: int
    artist: str
    title: str
    audio_path: str | None
    sha256: str | None
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    removed: bool
    audio_origin: str | None = None  # 'sheet' or 'link': a person chose audio_path, the scan keeps it
    source: str = "sheet"
    key: str = ""
    artist_norm: str = ""
    title_norm: str = ""


def load_tracks(conn: Connection) -> list[StoredTrack]:
    """Every track, removed ones included (their stored paths still claim files)."""
    rows = conn.execute(
        select(tracks.c.id, tracks.c.artist, tracks.c.title, tracks.c.audio_path, tracks.c.file_sha256,
               tracks.c.duration_s, tracks.c.sample_rate, tracks.c.channels, tracks.c.removed_at,
               tracks.c.audio_origin, tracks.c.source)
        .order_by(tracks.c.id)
    ).all()
    loaded = []
    for r in rows:
        t = StoredTrack(r.id, r.artist, r.title, r.audio_path, r.file_sha256, r.duration_s, r.sample_rate, r.channels,
                        r.removed_at is not None, r.audio_origin, r.source)
        t.key = track_key(t.artist, t.title)
        t.artist_norm, t.title_norm = normalise_artist(t.artist), normalise_title(t.title)
        loaded.append(t)
    return loaded


def readings_of(f: ScannedFile) -> list[Reading]:
    """The file's (artist, title) readings, tags first."""
    found = []
    if f.tag_artist and f.tag_title:
        found.append(reading("tags", f.tag_artist, f.tag_title))
    found.extend(reading("filename", g.artist, g.title) for g in f.guesses)
    return [r for r in found if r.artist_norm and r.title_norm]


@dataclass
class FuzzyOutcome:
    matched: list[tuple[ScannedFile, MatchedFile]] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # file path -> reason


class TrackMatcher:
    """Assigns each file at most one track and each track at most one file."""

    def __init__(self, root: Path, all_tracks: list[StoredTrack]) -> None:
        self.root = root
        self.live = [t for t in all_tracks if not t.removed]
        self.by_id = {t.id: t for t in all_tracks}
        self.by_path = {t.audio_path: t for t in all_tracks if t.audio_path}
        self.by_key: dict[str, list[StoredTrack]] = {}
        for t in self.live:
            self.by_key.setdefault(t.key, []).append(t)
        self.claimed: dict[int, str] = {}  # track id -> file path claimed in this scan
        self._file_exists: dict[int, bool] = {}

    def stored_file_exists(self, t: StoredTrack) -> bool:
        """Whether the track's stored audio file is still there (False for paths escaping the root)."""
        if t.audio_path is None:
            return False
        if t.id not in self._file_exists:
            try:
                self._file_exists[t.id] = resolve_in_library(self.root, t.audio_path).is_file()
            except PathOutsideLibrary:
                self._file_exists[t.id] = False
        return self._file_exists[t.id]

    def available(self, t: StoredTrack, rel: str) -> bool:
        if t.id in self.claimed:
            return False
        if t.audio_origin is not None:  # the sheet or `audio link` chose this track's file: only that one
            return t.audio_path == rel
        return t.audio_path in (None, rel) or not self.stored_file_exists(t)

    def match_exact(self, f: ScannedFile) -> tuple[MatchedFile | None, str]:
        """Rules 1-3 for one file: its match, or None and why ("" when the fuzzy step should try)."""
        holder = self.by_path.get(f.rel)
        if holder is not None:
            if holder.removed:
                return None, f"linked to removed track #{holder.id} ({holder.artist} - {holder.title})"
            return self._claim(holder, f, "path"), ""
        duplicate_of: StoredTrack | None = None
        tag_key = track_key(f.tag_artist, f.tag_title) if f.tag_artist and f.tag_title else None
        name_keys = list(dict.fromkeys(track_key(g.artist, g.title) for g in f.guesses))
        for how, keys in (("tags", [tag_key] if tag_key else []), ("filename", name_keys)):
            fitting = [k for k in keys if k in self.by_key]
            free: dict[str, StoredTrack] = {}
            for k in fitting:
                for t in self.by_key[k]:
                    if self.available(t, f.rel):
                        free.setdefault(k, t)  # one song stored twice (sheet and playlist): the first
            if len(free) > 1:
                ids = ", ".join(f"#{t.id}" for t in sorted(free.values(), key=lambda t: t.id))
                return None, f"ambiguous: the file name fits several tracks ({ids})"
            if free:
                return self._claim(next(iter(free.values())), f, how), ""
            if fitting and duplicate_of is None:
                duplicate_of = self.by_key[fitting[0]][0]
        if duplicate_of is not None:
            where = self.claimed.get(duplicate_of.id) or duplicate_of.audio_path
            return None, f"same song as {where} (track #{duplicate_of.id})"
        return None, ""

    def match_fuzzy(self, files: list[ScannedFile]) -> FuzzyOutcome:
        """Rule 4 over every file the exact rules left: mutual clear winners only."""
        outcome = FuzzyOutcome()
        readings = [readings_of(f) for f in files]
        for f, rs in zip(files, readings, strict=True):
            if not rs:
                outcome.refused[f.rel] = NO_READING
        open_tracks = [t for t in self.live if t.id not in self.claimed]
        scores = score_matrix(readings, [(t.artist_norm, t.title_norm) for t in open_tracks])
        proposals: dict[int, int] = {}  # file index -> track index
        for i, f in enumerate(files):
            if f.rel in outcome.refused:
                continue
            scored = [(scores[i][j], t.key, j) for j, t in enumerate(open_tracks) if self.available(t, f.rel)]
            best, reason = clear_winner(scored)
            if best is None:
                only_folder = not (f.tag_artist and f.tag_title) and all(g.shape == "folder artist" for g in f.guesses)
                outcome.refused[f.rel] = NO_READING if reason == NO_MATCH and only_folder else reason
            else:
                proposals[i] = best
        for i, j in proposals.items():
            track = open_tracks[j]
            rival = max((scores[k][j] for k in range(len(files)) if k != i and readings[k]), default=0.0)
            if scores[i][j] - rival < FUZZY_MARGIN:
                outcome.refused[files[i].rel] = (f"ambiguous: another file fits track #{track.id} almost as well "
                                                 f"({scores[i][j]:.0f} vs {rival:.0f})")
                continue
            outcome.matched.append((files[i], self._claim(track, files[i], "fuzzy", round(scores[i][j], 1))))
        return outcome

    def candidates_for_files(self, files: list[ScannedFile]) -> dict[str, list[Candidate]]:
        """The closest live tracks not taken by this scan, for each (unmatched) file."""
        open_tracks = [t for t in self.live if t.id not in self.claimed]
        songs = [(t.artist_norm, t.title_norm) for t in open_tracks]
        readings = [readings_of(f) for f in files]
        scores, close = score_matrix(readings, songs), closeness_matrix(readings, songs)
        result = {}
        for i, f in enumerate(files):
            ranked = _ranked(close[i], key=lambda j: open_tracks[j].id)
            result[f.rel] = [Candidate(open_tracks[j].id, open_tracks[j].audio_path, open_tracks[j].artist,
                                       open_tracks[j].title, round(scores[i][j], 1), round(close[i][j], 1))
                             for j in ranked]
        return result

    def candidates_for_tracks(self, track_ids: list[int], files: list[ScannedFile]) -> dict[int, list[Candidate]]:
        """The closest unmatched files, for each track left without audio."""
        wanted = [self.by_id[i] for i in track_ids]
        songs = [(t.artist_norm, t.title_norm) for t in wanted]
        readings = [readings_of(f) for f in files]
        scores, close = score_matrix(readings, songs), closeness_matrix(readings, songs)
        result = {}
        for j, t in enumerate(wanted):
            ranked = _ranked([close[i][j] for i in range(len(files))], key=lambda i: files[i].rel)
            result[t.id] = [Candidate(t.id, files[i].rel, files[i].tag_artist or files[i].name_artist or "",
                                      files[i].tag_title or files[i].name_title or "", round(scores[i][j], 1),
                                      round(close[i][j], 1))
                            for i in ranked]
        return result

    def _claim(self, t: StoredTrack, f: ScannedFile, how: str, score: float = 100.0) -> MatchedFile:
        self.claimed[t.id] = f.rel
        return MatchedFile(f.rel, t.id, how, score)


def _ranked(closeness: list[float], key) -> list[int]:  # noqa: ANN001 - a tie-break key on the index
    """Indexes of the CANDIDATES_SHOWN closest entries at or above CANDIDATE_FLOOR, closest first."""
    kept = [i for i, c in enumerate(closeness) if c >= CANDIDATE_FLOOR]
    return sorted(kept, key=lambda i: (-closeness[i], key(i)))[:CANDIDATES_SHOWN]
