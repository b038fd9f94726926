"""Issue 8: a sheet column naming each row's audio file; the path it names wins and is kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from sqlalchemy import func, insert, select, update

from music_classifier.db.tables import extractions, genres, proposals, students, track_genres, tracks
from music_classifier.ingest.audio_scan import scan_library
from music_classifier.ingest.keys import track_key

RATE = 22050


def write_wav(path: Path, *, seed: int = 0, seconds: float = 0.3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).uniform(-0.3, 0.3, int(seconds * RATE)).astype("float32")
    sf.write(path, data, RATE, subtype="PCM_16")
    return path


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of the tables a sync or scan may write (for before == after checks)."""
    with engine.connect() as conn:
        return {t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
                for t in (students, tracks, proposals, genres, track_genres, extractions)}


def test_scan_never_moves_a_track_whose_file_a_person_chose(engine, tmp_path):
    """A track pinned to a file ('sheet' or 'link') keeps it; a better-named file is not linked to it."""
    library = tmp_path / "lib"
    write_wav(library / "chosen" / "take 2.wav", seed=1)
    write_wav(library / "Queen - Innuendo.wav", seed=2)  # would match by file name
    with engine.begin() as conn:
        tid = conn.execute(insert(tracks).values(
            source="sheet", track_key=track_key("Queen", "Innuendo"), artist="Queen", title="Innuendo",
            song="Queen - Innuendo", audio_path="chosen/take 2.wav", audio_origin="sheet").returning(tracks.c.id)
        ).scalar_one()
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    assert [(m.path, m.track_id, m.how) for m in report.matched] == [("chosen/take 2.wav", tid, "path")]
    assert [u.path for u in report.unmatched] == ["Queen - Innuendo.wav"]
    # Its file gone, the pinned track still waits for that file rather than taking another.
    (library / "chosen" / "take 2.wav").unlink()
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    assert report.matched == []
    assert [(t.track_id, t.reason) for t in report.without_audio] == [(tid, "file missing: chosen/take 2.wav")]
    with engine.begin() as conn:
        conn.execute(update(tracks).values(audio_origin=None))
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    assert [(m.path, m.how) for m in report.matched] == [("Queen - Innuendo.wav", "filename")]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tracks)).scalar() == 1
