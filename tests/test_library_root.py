"""Which directory is the library root: configured, stored by the database, adopted by a first scan, or refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audio_helpers import add_track, audio_row, snapshot, write_audio
from typer.testing import CliRunner

from music_classifier.ingest.audio_scan import scan_library
from music_classifier.ingest.library_root import library_root_for, stored_library_root


@pytest.fixture
def no_configured_root(monkeypatch, tmp_path) -> Path:
    """A working directory of its own and no MUSIC_CLASSIFIER_LIBRARY."""
    monkeypatch.delenv("MUSIC_CLASSIFIER_LIBRARY", raising=False)
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def _cli(engine, *args: str, library: Path | None = None):
    from music_classifier.cli import app

    url = engine.url.render_as_string(hide_password=False)
    options = ["--library", str(library)] if library is not None else []
    return CliRunner().invoke(app, ["--db", url, *options, "audio", *args])


def test_first_scan_adopts_its_directory_as_root_and_says_so(engine, tmp_path, no_configured_root):
    music = tmp_path / "class-music"
    write_audio(music / "rock" / "Queen - Innuendo.wav", seed=1)
    with engine.begin() as conn:
        track = add_track(conn, "Queen", "Innuendo")
    result = _cli(engine, "scan", "../class-music")  # relative to the working directory: no root yet
    assert result.exit_code == 0, result.output
    assert f"library root: {music} (no root was configured and no paths were stored" in result.output
    assert audio_row(engine, track).audio_path == "rock/Queen - Innuendo.wav"
    with engine.connect() as conn:
        assert stored_library_root(conn) == music
        assert library_root_for(conn, None).origin == "stored"  # what feature jobs and `audio link` use
        assert library_root_for(conn, tmp_path).path == tmp_path.resolve()  # --library still wins

    again = _cli(engine, "scan", "rock", "--json")  # now relative to the stored root
    assert again.exit_code == 0, again.output
    report = json.loads(again.output)
    assert report["root_origin"] == "stored" and report["directory"] == str(music / "rock")
    assert report["counts"]["unchanged"] == 1 and report["counts"]["updated"] == 0


def test_no_root_is_adopted_once_paths_are_stored(engine, tmp_path, no_configured_root):
    library = tmp_path / "library"
    write_audio(library / "Queen - Innuendo.wav", seed=1)
    write_audio(tmp_path / "elsewhere" / "Adele - Hello.wav", seed=2)
    with engine.begin() as conn:
        add_track(conn, "Queen", "Innuendo")
        scan_library(conn, root=library)  # a path is stored now, relative to `library`
    before = snapshot(engine)
    result = _cli(engine, "scan", str(tmp_path / "elsewhere"))
    assert result.exit_code == 1
    assert "is outside the library root" in result.output
    assert "or pass --move-root to make it the root" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(engine) == before


def test_relative_dir_is_taken_relative_to_the_configured_root(engine, tmp_path, no_configured_root):
    library = tmp_path / "library"
    write_audio(library / "jazz" / "Miles Davis - So What.wav", seed=1)
    with engine.begin() as conn:
        track = add_track(conn, "Miles Davis", "So What")
    result = _cli(engine, "scan", "jazz", library=library)
    assert result.exit_code == 0, result.output
    assert audio_row(engine, track).audio_path == "jazz/Miles Davis - So What.wav"
    missing = _cli(engine, "scan", "blues", library=library)
    assert missing.exit_code == 1 and "directory blues does not exist" in missing.output


def test_missing_configured_root_says_how_to_set_it(engine, tmp_path, no_configured_root):
    before = snapshot(engine)
    result = _cli(engine, "scan", library=tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "does not exist (set the root with --library DIR or MUSIC_CLASSIFIER_LIBRARY)" in result.output
    assert snapshot(engine) == before
