"""Helpers for the audio tests: short tagged files in any format, sheet tracks, stored rows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf
from sqlalchemy import insert, select

from music_classifier.db.tables import extractions, genres, service_state, track_genres, tracks
from music_classifier.ingest.genres import resolve_genres
from music_classifier.ingest.keys import track_key

RATE = 22050


def write_audio(path: Path, *, artist: str | None = None, title: str | None = None, seconds: float = 0.5,
                channels: int = 1, seed: int = 0) -> Path:
    """A short noise file in the format of its suffix, tagged with mutagen when artist/title are given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).uniform(-0.3, 0.3, (int(seconds * RATE), channels)).astype("float32")
    suffix = path.suffix.lower()
    if suffix == ".ogg":
        sf.write(path, data, RATE, format="OGG", subtype="VORBIS")
    elif suffix == ".mp3":
        sf.write(path, data, RATE, format="MP3")
    else:
        sf.write(path, data, RATE, subtype="PCM_16")
    if artist is not None or title is not None:
        tag_file(path, artist or "", title or "")
    return path


def add_track(conn, artist: str, title: str, *, genre: str | None = None, source: str = "sheet") -> int:
    track_id = conn.execute(insert(tracks).values(
        source=source, track_key=track_key(artist, title), artist=artist, title=title, song=f"{artist} - {title}",
    ).returning(tracks.c.id)).scalar_one()
    if genre:
        gid = resolve_genres(conn, [genre]).ids[genre]
        conn.execute(insert(track_genres).values(track_id=track_id, rank=0, genre_id=gid))
    return track_id


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def audio_row(engine, track_id: int):
    with engine.connect() as conn:
        return conn.execute(select(tracks).where(tracks.c.id == track_id)).one()




def tag_file(path: Path, artist: str, title: str) -> None:
    """Write artist/title tags with mutagen (ID3 for mp3 and wav, Vorbis comments for flac and ogg)."""
    suffix = path.suffix.lower()
    if suffix in (".flac", ".ogg"):
        import mutagen

        audio = mutagen.File(path)
        audio["artist"], audio["title"] = artist, title
        audio.save()
    elif suffix == ".mp3":
        from mutagen.easyid3 import EasyID3

        tags = EasyID3()
        tags["artist"], tags["title"] = artist, title
        tags.save(path)
    else:
        from mutagen.id3 import TIT2, TPE1
        from mutagen.wave import WAVE

        audio = WAVE(path)
        audio.add_tags()
        audio.tags.add(TPE1(encoding=3, text=[artist]))
        audio.tags.add(TIT2(encoding=3, text=[title]))
        audio.save()


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of the tables a scan or link may write (for before == after checks)."""
    with engine.connect() as conn:
        return {t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
                for t in (tracks, genres, track_genres, extractions, service_state)}
