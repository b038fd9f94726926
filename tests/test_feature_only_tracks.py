"""Issue 8: tracks imported with their features (`features import-csv`) have no audio by design."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from test_sheet_files import write_wav
from typer.testing import CliRunner

from music_classifier.cli import app
from music_classifier.db.tables import track_genres, tracks
from music_classifier.ingest.audio_scan import scan_library
from music_classifier.ingest.genre_report import genre_report
from music_classifier.ingest.genres import resolve_genres
from music_classifier.ingest.keys import track_key


def _add(conn, source: str, artist: str, title: str, genre: str, audio: str | None = None) -> int:
    key = track_key(artist, title) if source in ("sheet", "file") else f"{source}:{artist}:{title}"
    tid = conn.execute(insert(tracks).values(source=source, track_key=key, artist=artist, title=title,
                                             song=f"{artist} - {title}", audio_path=audio)
                       .returning(tracks.c.id)).scalar_one()
    conn.execute(insert(track_genres).values(track_id=tid, rank=0, genre_id=resolve_genres(conn, [genre]).ids[genre]))
    return tid


@pytest.fixture
def mixed(engine, tmp_path):
    library = tmp_path / "lib"
    write_wav(library / "Muddy Waters - Mannish Boy.wav", seed=1)
    with engine.begin() as conn:
        _add(conn, "sheet", "Muddy Waters", "Mannish Boy", "Blues")
        waiting = _add(conn, "sheet", "Nina Simone", "Sinnerman", "Jazz")
        _add(conn, "file", "Anon", "Field Recording", "Blues", audio="field.wav")
        _add(conn, "spotify_playlist", "Miles Davis", "So What", "Jazz")
        for i in range(3):
            _add(conn, "csv", f"Artist {i}", f"Song {i}", "Blues")
    return engine, library, waiting


def test_scans_do_not_list_csv_tracks_as_waiting_for_audio(mixed):
    engine, library, waiting = mixed
    for _ in range(2):
        with engine.begin() as conn:
            report = scan_library(conn, root=library)
        listed = {t.track_id: t.reason for t in report.without_audio}
        # The sheet track without a file, the playlist track, the file track whose file is gone: not the csv ones.
        assert waiting in listed and len(listed) == 3, listed
        assert all("Artist" not in t.artist for t in report.without_audio)


def test_genres_counts_per_source(mixed):
    engine, _, _ = mixed
    with engine.connect() as conn:
        report = genre_report(conn, top=5, min_tracks=2)
        assert report.sources == ["sheet", "file", "spotify_playlist", "csv"]
        assert report.by_source == {"Blues": {"sheet": 1, "file": 1, "csv": 3},
                                    "Jazz": {"sheet": 1, "spotify_playlist": 1}}
        own = genre_report(conn, top=5, min_tracks=2, sources=["sheet", "file"])
        assert [(c.genre, c.tracks) for c in own.counts] == [("Blues", 2), ("Jazz", 1)]
        assert own.sources == ["sheet", "file"]
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["--db", url, "genres", "--min", "2"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "┃" in line)
    assert header.replace("┃", " ").split() == ["genre", "tracks", "sheet", "file", "spotify_playlist", "csv", "with",
                                                "audio", "with", "Spotify", "id"]
    blues = next(line for line in result.stdout.splitlines() if "Blues" in line)
    assert [w for w in blues.replace("│", " ").split()] == ["Blues", "5", "1", "1", "0", "3", "1", "0"]
    filtered = CliRunner().invoke(app, ["--db", url, "genres", "--source", "sheet", "--source", "file"],
                                  env={"COLUMNS": "200"})
    assert filtered.exit_code == 0 and "csv" not in filtered.stdout


def test_unknown_source_is_a_one_line_error(mixed):
    engine, _, _ = mixed
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["--db", url, "genres", "--source", "spotify"])
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "error: --source 'spotify' is not a track source (one of: sheet, file, spotify_playlist, csv)"]
