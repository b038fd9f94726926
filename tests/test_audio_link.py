"""`audio link FILE --track ID`: the fix the scan report offers; kept by later scans; refusals change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from audio_helpers import add_track, audio_row, sha, snapshot, write_audio
from sqlalchemy import insert
from typer.testing import CliRunner

from music_classifier.db.tables import extractions, tracks
from music_classifier.ingest.audio_link import link_file
from music_classifier.ingest.audio_scan import scan_library


@pytest.fixture
def library(tmp_path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    return root


@pytest.fixture
def unmatched(engine, library):
    """A file the scan cannot match ("J.S. Bach" is not "Johann Sebastian Bach") and its track."""
    with engine.begin() as conn:
        bach = add_track(conn, "Johann Sebastian Bach", "Air on the G String", genre="Classical")
        queen = add_track(conn, "Queen", "Innuendo", genre="Rock")
    write_audio(library / "classical" / "J.S. Bach - Air.flac", seed=1)
    write_audio(library / "Queen - Innuendo.wav", seed=2)
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    assert [u.path for u in report.unmatched] == ["classical/J.S. Bach - Air.flac"]
    return {"bach": bach, "queen": queen}


def _cli(engine, library: Path, *args: str):
    from music_classifier.cli import app

    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(app, ["--db", url, "--library", str(library), "audio", *args])


def test_scan_report_names_the_link_command_and_running_it_fixes_the_miss(engine, library, unmatched):
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    [miss] = report.unmatched
    assert [c.track_id for c in miss.candidates] == [unmatched["bach"]]
    assert miss.fix == f"music-classifier audio link 'classical/J.S. Bach - Air.flac' --track {unmatched['bach']}"
    [without] = report.without_audio
    assert without.track_id == unmatched["bach"] and without.fix == miss.fix
    assert [c.path for c in without.candidates] == ["classical/J.S. Bach - Air.flac"]

    result = _cli(engine, library, "link", "classical/J.S. Bach - Air.flac", "--track", str(unmatched["bach"]))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("linked: classical/J.S. Bach - Air.flac -> track #")
    row = audio_row(engine, unmatched["bach"])
    assert (row.audio_path, row.audio_origin) == ("classical/J.S. Bach - Air.flac", "link")
    assert row.file_sha256 == sha(library / "classical" / "J.S. Bach - Air.flac") and row.duration_s > 0.4

    with engine.begin() as conn:  # kept by the next scan; nothing left to report
        again = scan_library(conn, root=library)
    assert again.unmatched == [] and again.without_audio == []
    assert {(m.track_id, m.how) for m in again.matched} == {(unmatched["bach"], "path"), (unmatched["queen"], "path")}


def test_link_moves_a_file_from_another_track_and_marks_both_stale(engine, library, unmatched):
    with engine.begin() as conn:
        conn.execute(insert(extractions), [
            {"track_id": unmatched["queen"], "extractor": "librosa", "version": "1", "params_hash": "a",
             "status": "done"}])
        result = link_file(conn, root=library, file=library / "Queen - Innuendo.wav", track_id=unmatched["bach"])
    assert result.taken_from == unmatched["queen"] and result.marked_stale == 1
    assert audio_row(engine, unmatched["queen"]).audio_path is None
    assert audio_row(engine, unmatched["bach"]).audio_path == "Queen - Innuendo.wav"


def test_link_twice_changes_nothing(engine, library, unmatched):
    args = ("link", "classical/J.S. Bach - Air.flac", "--track", str(unmatched["bach"]))
    assert _cli(engine, library, *args).exit_code == 0
    before = snapshot(engine)
    second = _cli(engine, library, *args)
    assert second.exit_code == 0 and second.output.startswith("already linked")
    assert snapshot(engine) == before


@pytest.mark.parametrize(("file", "track", "message"), [
    ("classical/missing.flac", "bach", "no such file: classical/missing.flac"),
    ("classical", "bach", "classical is not a file"),
    ("OUTSIDE", "bach", "is outside the library root"),
    ("classical/J.S. Bach - Air.flac", 9999, "--track 9999: no such track"),
    ("NOT_AUDIO", "bach", "not an audio file the scan reads"),
    ("BROKEN", "bach", "BROKEN.wav"),
])
def test_link_refusals_are_one_line_and_change_nothing(engine, library, unmatched, tmp_path, file, track, message):
    outside = write_audio(tmp_path / "elsewhere" / "x.wav", seed=3)
    (library / "notes.txt").write_text("not audio")
    (library / "BROKEN.wav").write_bytes(b"RIFF nonsense" * 10)
    file = {"OUTSIDE": str(outside), "NOT_AUDIO": "notes.txt", "BROKEN": "BROKEN.wav"}.get(file, file)
    track_id = unmatched.get(track, track) if isinstance(track, str) else track
    before = snapshot(engine)
    result = _cli(engine, library, "link", file, "--track", str(track_id))
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert snapshot(engine) == before


def test_link_refuses_a_removed_track(engine, library, unmatched):
    from sqlalchemy import func, update

    with engine.begin() as conn:
        conn.execute(update(tracks).where(tracks.c.id == unmatched["bach"]).values(removed_at=func.now()))
    before = snapshot(engine)
    result = _cli(engine, library, "link", "classical/J.S. Bach - Air.flac", "--track", str(unmatched["bach"]))
    assert result.exit_code == 1 and "was removed" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(engine) == before
