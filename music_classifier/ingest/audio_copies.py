"""Copies by content: scanned files whose sha256 equals a known track's audio or another scanned file's.

A byte-identical copy ("Midnight Steps (1).wav", a file saved twice) is the same audio as its
original. Registered as a track of its own it would let the same audio sit in a training fold and a
test fold, so the scan reports it as a copy of its original and never registers it
(``--add-unmatched`` and ``--genre-from-folder`` skip it and say so). Only files the matching rules
left unmatched are looked at: a file matched to a track is that track's audio, whatever else it
equals (the datasets group such tracks, :mod:`music_classifier.models.same_audio`).

The original is, in order: the file of a live track matched in this scan, a live track's stored
file, or -- among unmatched files with the same content -- the first by path whose name does not
look like a copy's ("x.wav" before "x (1).wav", "x - Copy.wav", "x copy 2.wav"), which stays
unmatched (or is registered) in the copies' stead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from sqlalchemy import Connection, select

from music_classifier.db.tables import tracks
from music_classifier.ingest.audio_files import ScannedFile
from music_classifier.ingest.scan_report import link_command
from music_classifier.ingest.track_matching import MatchedFile, StoredTrack, TrackMatcher

REMOVED_HOLDER = "linked to removed track"  # the reason track_matching gives a path a removed track holds
# What file managers and browsers append to a second copy: "x (1)", "x - Copy", "x copy 2", "x (copy)".
_COPY_SUFFIX = re.compile(r"(\s*\(\d{1,2}\)|(^|[\s_-])\(?copy(\s*\d+)?\)?)$", re.IGNORECASE)
KEEP_IT = "nothing: it is a copy, not a track (delete it, or keep it)"


@dataclass(frozen=True)
class AudioCopy:
    """A scanned file with the same content (sha256) as ``original``, the audio of track ``track_id``."""

    path: str
    original: str  # path of the file with the same audio, relative to the library root
    track_id: int | None  # None: the original is another unmatched file of this scan, not a track
    artist: str = ""
    title: str = ""
    original_missing: bool = False  # the track's stored file is gone: this copy may be the moved file
    fix: str = ""

    def text(self) -> str:
        """``copy of #12 Artist - Title: path`` (one line; the CLI prints it with markup off)."""
        if self.track_id is None:
            return f"copy of {self.original}: {self.path}"
        song = f"{self.artist} - {self.title}" if self.artist and self.title else (self.title or self.original)
        if self.original_missing:
            return f"same audio as #{self.track_id} {song}, whose file {self.original} is missing: {self.path}"
        return f"copy of #{self.track_id} {song}: {self.path}"


@dataclass(frozen=True)
class SharedAudio:
    """Tracks whose files, matched in this scan, have the same content (registered before copies were known)."""

    track_ids: tuple[int, ...]
    paths: tuple[str, ...]  # each track's file, in track order

    def text(self) -> str:
        tracks_ = ", ".join(f"#{t}" for t in self.track_ids)
        return f"same audio on tracks {tracks_} ({'; '.join(self.paths)}): every split keeps them on one side"


def shared_audio(pairs: list[tuple[ScannedFile, StoredTrack]]) -> list[SharedAudio]:
    """Sets of matched files with one content but different tracks, by lowest track id."""
    by_sha: dict[str, dict[int, str]] = {}
    for f, t in pairs:
        by_sha.setdefault(f.sha256, {})[t.id] = f.rel
    found = [SharedAudio(tuple(sorted(held)), tuple(held[t] for t in sorted(held)))
             for held in by_sha.values() if len(held) > 1]
    return sorted(found, key=lambda s: s.track_ids)


def looks_like_a_copy(path: str) -> bool:
    """Whether the file's name ends the way a second copy's does ("x (1).wav", "x - Copy.wav")."""
    return bool(_COPY_SUFFIX.search(PurePosixPath(path).stem))


def find_copies(matcher: TrackMatcher, readable: list[ScannedFile],
                pairs: list[tuple[ScannedFile, StoredTrack]], reasons: dict[str, str]) -> list[AudioCopy]:
    """The copies among the unmatched files (those in ``reasons``), taken out of ``reasons``, sorted by path.

    A file whose path a removed track still holds keeps that reason (restoring the track is its fix).
    """
    known: dict[str, tuple[StoredTrack, str, bool]] = {}  # sha256 -> (track, its file, file missing)
    for f, t in pairs:
        if not t.removed:
            known.setdefault(f.sha256, (t, f.rel, False))
    matched = {t.id for _, t in pairs}
    for t in matcher.live:
        if t.sha256 and t.audio_path and t.id not in matched:
            known.setdefault(t.sha256, (t, t.audio_path, not matcher.stored_file_exists(t)))

    unmatched = [f for f in readable if f.rel in reasons and not reasons[f.rel].startswith(REMOVED_HOLDER)]
    copies: list[AudioCopy] = []
    first_of: dict[str, ScannedFile] = {}  # sha256 -> the unmatched file that stands for that content
    for f in sorted(unmatched, key=lambda f: (looks_like_a_copy(f.rel), f.rel)):
        hit = known.get(f.sha256)
        if hit is not None:
            t, original, missing = hit
            fix = link_command(f.rel, t.id) if missing else KEEP_IT
            copies.append(AudioCopy(f.rel, original, t.id, t.artist, t.title, missing, fix))
        elif f.sha256 in first_of:
            copies.append(AudioCopy(f.rel, first_of[f.sha256].rel, None,
                                    fix=KEEP_IT))
        else:
            first_of[f.sha256] = f
    for c in copies:
        del reasons[c.path]
    return sorted(copies, key=lambda c: c.path)


def copies_of_added(conn: Connection, copies: list[AudioCopy], added: list[MatchedFile]) -> list[AudioCopy]:
    """``copies`` where those whose original file was just registered name its new track."""
    new_id = {m.path: m.track_id for m in added}
    wanted = sorted({new_id[c.original] for c in copies if c.track_id is None and c.original in new_id})
    if not wanted:
        return copies
    names = {r.id: (r.artist, r.title)
             for r in conn.execute(select(tracks.c.id, tracks.c.artist, tracks.c.title).where(tracks.c.id.in_(wanted)))}
    out = []
    for c in copies:
        if c.track_id is None and c.original in new_id:
            tid = new_id[c.original]
            c = replace(c, track_id=tid, artist=names[tid][0], title=names[tid][1])
        out.append(c)
    return out
