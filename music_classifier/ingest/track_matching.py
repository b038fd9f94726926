"""Matching scanned audio files to stored tracks: stored path, tags, file name, then fuzzy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from music_classifier.db.tables import tracks
from music_classifier.errors import PathOutsideLibrary
from music_classifier.ingest.audio_files import ScannedFile
from music_classifier.ingest.keys import normalise_artist, normalise_title, track_key
from music_classifier.ingest.library_paths import resolve_in_library

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


@dataclass(frozen=True)
class MatchedFile:
    path: str
    track_id: int
    how: str  # path | tags | filename | fuzzy
    score: float = 100.0


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
    key: str = ""
    artist_norm: str = ""
    title_norm: str = ""


def load_tracks(conn: Connection) -> list[StoredTrack]:
    """Every track, removed ones included (their stored paths still claim files)."""
    rows = conn.execute(
        select(tracks.c.id, tracks.c.artist, tracks.c.title, tracks.c.audio_path, tracks.c.file_sha256,
               tracks.c.duration_s, tracks.c.sample_rate, tracks.c.channels, tracks.c.removed_at,
               tracks.c.audio_origin)
        .order_by(tracks.c.id)
    ).all()
    loaded = []
    for r in rows:
        t = StoredTrack(r.id, r.artist, r.title, r.audio_path, r.file_sha256, r.duration_s, r.sample_rate, r.channels,
                   r.removed_at is not None, r.audio_origin)
        t.key = track_key(t.artist, t.title)
        t.artist_norm, t.title_norm = normalise_artist(t.artist), normalise_title(t.title)
        loaded.append(t)
    return loaded


class TrackMatcher:
    """Assigns each file at most one track and each track at most one file."""

    def __init__(self, root: Path, all_tracks: list[StoredTrack]) -> None:
        self.root = root
        self.live = [t for t in all_tracks if not t.removed]
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

    def match(self, f: ScannedFile) -> tuple[MatchedFile | None, str]:
        """The match for a file, or None and the reason it has none."""
        holder = self.by_path.get(f.rel)
        if holder is not None:
            if holder.removed:
                return None, f"linked to removed track #{holder.id} ({holder.artist} - {holder.title})"
            return self._claim(holder, f, "path"), ""
        duplicate_of: StoredTrack | None = None
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

    def _fuzzy(self, f: ScannedFile, artist_norm: str, title_norm: str) -> tuple[StoredTrack, float] | None:
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

    def _claim(self, t: StoredTrack, f: ScannedFile, how: str, score: float = 100.0) -> MatchedFile:
        self.claimed[t.id] = f.rel
        return MatchedFile(f.rel, t.id, how, score)


def fuzzy_score(artist_a: str, title_a: str, artist_b: str, title_b: str) -> float:
    """The score the scan's fuzzy step gives two songs (compare with ``FUZZY_THRESHOLD``)."""
    from rapidfuzz import fuzz

    return float(min(fuzz.ratio(normalise_title(title_a), normalise_title(title_b)),
                     fuzz.token_sort_ratio(normalise_artist(artist_a), normalise_artist(artist_b))))

