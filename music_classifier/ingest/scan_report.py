"""What an audio scan reports: counts, every miss with its closest candidates and the command that fixes it.

The report is plain data (``to_dict`` is what ``audio scan --json`` prints); the CLI renders it.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from music_classifier.ingest.library_paths import SkippedFile
from music_classifier.ingest.track_matching import Candidate, MatchedFile

if TYPE_CHECKING:  # audio_copies imports this module (link_command)
    from music_classifier.ingest.audio_copies import AudioCopy, SharedAudio

CLI = "music-classifier"


@dataclass(frozen=True)
class UnmatchedFile:
    path: str
    artist: str | None
    title: str | None
    reason: str
    candidates: tuple[Candidate, ...] = ()
    fix: str = ""


@dataclass(frozen=True)
class TrackWithoutAudio:
    track_id: int
    artist: str
    title: str
    reason: str
    candidates: tuple[Candidate, ...] = ()
    fix: str = ""


@dataclass
class ScanReport:
    root: Path
    directory: Path
    root_origin: str = "configured"
    root_note: str = ""
    files_seen: int = 0
    matched: list[MatchedFile] = field(default_factory=list)
    updated: int = 0  # tracks whose audio columns were written
    unchanged: int = 0
    marked_stale: int = 0  # extraction rows turned from done to stale
    added: list[MatchedFile] = field(default_factory=list)  # new 'file' tracks (--add-unmatched, --genre-from-folder)
    added_per_genre: dict[str, int] = field(default_factory=dict)  # genre display name -> tracks added
    genre_applied: dict[str, str] = field(default_factory=dict)
    unmatched: list[UnmatchedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    without_audio: list[TrackWithoutAudio] = field(default_factory=list)
    copies: list[AudioCopy] = field(default_factory=list)  # same sha256 as a track's audio or another file's
    copies_not_added: list[str] = field(default_factory=list)  # copies --add-unmatched/--genre-from-folder skipped
    shared_audio: list[SharedAudio] = field(default_factory=list)  # tracks already holding one content

    def to_dict(self) -> dict:
        """JSON-ready: paths as strings, every list in full."""
        data = asdict(self)
        data["root"], data["directory"] = str(self.root), str(self.directory)
        data["counts"] = {
            "files_seen": self.files_seen, "matched": len(self.matched), "added": len(self.added),
            "unmatched": len(self.unmatched), "skipped": len(self.skipped), "without_audio": len(self.without_audio),
            "updated": self.updated, "unchanged": self.unchanged, "marked_stale": self.marked_stale,
            "copies": len(self.copies),
        }
        return data


def link_command(path: str, track_id: int) -> str:
    return f"{CLI} audio link {shlex.quote(path)} --track {track_id}"


def fix_for_file(path: str, reason: str, candidates: tuple[Candidate, ...]) -> str:
    """The one thing to do about an unmatched file (paths relative to the library root, as commands take them)."""
    if reason.startswith("same song as"):
        return "nothing, if it is a second copy; else link it: " + link_command(path, candidates[0].track_id) \
            if candidates else "nothing, if it is a second copy"
    if reason.startswith("not registered: close to track") and candidates:
        return link_command(path, candidates[0].track_id)
    if reason.startswith("linked to removed track"):
        return "restore the track's sheet row, or delete the file"
    if candidates:
        return link_command(path, candidates[0].track_id)
    return (f"add the song to the sheet with {path} in its file cell, or register it: "
            f"{CLI} audio scan {shlex.quote(str(PurePosixPath(path).parent))} --add-unmatched --genre G")


def fix_for_track(track_id: int, source: str, candidates: tuple[Candidate, ...]) -> str:
    """The one thing to do about a track left without audio."""
    if candidates and candidates[0].path:
        return link_command(candidates[0].path, track_id)
    if source == "sheet":
        return "put its file in the library and write the file's path in the sheet row's file cell"
    return f"put its file in the library, then {CLI} audio link FILE --track {track_id}"
