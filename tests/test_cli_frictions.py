"""Issue 8's small frictions: each is one line naming the option, file or row at fault, never a surprise."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner
from waits import HANG_S

from music_classifier.cli import app
from music_classifier.db.tables import extractions, genres, track_genres, tracks

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str, env: dict[str, str | None] | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar()
                for t in (tracks, genres, track_genres, extractions)}


# --------------------------------------------------------------------------- --db


@pytest.mark.parametrize("command", [["genres"], ["db", "current"], ["dataset", "list"], ["audio", "scan"],
                                     ["sheet", "sync", "--csv", "songs.csv"], ["jobs"]])
def test_a_missing_sqlite_file_is_refused_not_created(tmp_path, command):
    missing = tmp_path / "typo.db"
    (tmp_path / "songs.csv").write_text("student,song,coarse_genre\nAna,A - B,Rock\n")
    args = [arg.replace("songs.csv", str(tmp_path / "songs.csv")) for arg in command]
    result = invoke("--db", f"sqlite:///{missing}", "--library", str(tmp_path), *args)
    one_line_error(result, f"database file {missing} does not exist", "music-classifier db upgrade")
    assert not missing.exists()


def test_the_default_database_is_refused_too_and_db_upgrade_creates_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("genres", env={"DATABASE_URL": None}), "music_classifier.db does not exist")
    assert not (tmp_path / "music_classifier.db").exists()
    created = invoke("db", "upgrade", env={"DATABASE_URL": None})
    assert created.exit_code == 0, created.output
    assert (tmp_path / "music_classifier.db").is_file()
    assert invoke("genres", env={"DATABASE_URL": None}).exit_code == 0


@pytest.mark.parametrize(("url", "fragments"), [
    ("mysql://class:secret@db.example/music", ("mysql://class:***@db.example/music", "unsupported database 'mysql'",
                                               "SQLite and PostgreSQL")),
    ("oracle://u@h/d", ("unsupported database 'oracle'",)),
    ("postgresql+asyncpg://u@127.0.0.1/d", ("database driver not available", "asyncpg")),
    ("class.db", ("'class.db' is not a database URL", "sqlite:///class.db")),
])
def test_unknown_database_drivers_are_one_line_errors(url, fragments):
    line = one_line_error(invoke("--db", url, "genres"), *fragments)
    assert "secret" not in line


# --------------------------------------------------------------------------- plot/report --out


@pytest.mark.parametrize("command", [
    ["plot", "tsne", "demo", "--out", "{blocker}/tsne.png"],
    ["plot", "confusion", "1", "--out", "{blocker}/sub/confusion.png"],
    ["plot", "importances", "1", "--out", "{blocker}/importances.png"],
    ["plot", "map", "demo", "--out", "{blocker}/map.html"],
    ["report", "1", "--out", "{blocker}/report"],
    ["report", "1", "--out", "{blocker}"],
])
def test_out_under_a_file_is_a_one_line_error(engine, tmp_path, command):
    blocker = tmp_path / "results"
    blocker.write_text("a file, not a folder")
    before = counts(engine)
    args = [a.replace("{blocker}", str(blocker)) for a in command]
    result = invoke("--db", engine.url.render_as_string(hide_password=False), *args)
    one_line_error(result, "--out", f"{blocker}")
    assert blocker.read_text() == "a file, not a folder"
    assert counts(engine) == before


# --------------------------------------------------------------------------- features compute --extractor spotify


@pytest.fixture
def sheet_tracks(engine):
    with engine.begin() as conn:
        rock = conn.execute(insert(genres).values(name="rock", display_name="Rock").returning(genres.c.id)).scalar_one()
        for i in range(3):
            tid = conn.execute(insert(tracks).values(source="sheet", track_key=f"k{i}", artist=f"A{i}", title=f"T{i}",
                                                     song=f"A{i} - T{i}").returning(tracks.c.id)).scalar_one()
            conn.execute(insert(track_genres).values(track_id=tid, rank=0, genre_id=rock))
    return engine


NO_CREDENTIALS = {"SPOTIFY_CLIENT_ID": None, "SPOTIFY_CLIENT_SECRET": None, "AUDIO_FEATURES_PROVIDER": None}


@pytest.mark.parametrize("provider", [None, "reccobeats"])
def test_spotify_without_credentials_or_ids_refuses_before_writing(sheet_tracks, provider):
    before = counts(sheet_tracks)
    url = sheet_tracks.url.render_as_string(hide_password=False)
    env = {**NO_CREDENTIALS, "AUDIO_FEATURES_PROVIDER": provider}
    result = invoke("--db", url, "features", "compute", "--extractor", "spotify", env=env)
    expected = "none of the 3 selected track(s) has a Spotify id" if provider else "for the 3 selected track(s)"
    one_line_error(result, "--extractor spotify", "SPOTIFY_CLIENT_ID", expected, "nothing was written")
    assert counts(sheet_tracks) == before


def test_spotify_preflight_lets_through_what_can_work(sheet_tracks):
    from music_classifier.jobs.spotify_preflight import check_spotify_can_run
    from music_classifier.settings import get_settings

    with sheet_tracks.begin() as conn:
        ids = list(conn.execute(select(tracks.c.id)).scalars())
        conn.execute(tracks.update().where(tracks.c.id == ids[0]).values(spotify_id="4uLU6hMCjMI75M1A2tKUQC"))
        check_spotify_can_run(conn, get_settings(spotify_client_id="id", spotify_client_secret="secret"), ids)
        check_spotify_can_run(conn, get_settings(audio_features_provider="reccobeats", spotify_client_id=""), ids)
        check_spotify_can_run(conn, get_settings(), [])  # nothing selected: nothing to refuse


# --------------------------------------------------------------------------- --version and PATH


def test_version():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"music-classifier {version('music-classifier')}"


def test_readme_says_how_to_get_the_command_on_path():
    """`make demo` installs into .venv; the README's way to run the command afterwards works."""
    readme = (ROOT / "README.md").read_text()
    assert ". .venv/bin/activate" in readme and ".venv/bin/music-classifier" in readme
    assert "VENV ?= .venv" in (ROOT / "Makefile").read_text()
    installed = Path(sys.executable).parent / "music-classifier"  # this test run's own virtualenv
    assert installed.is_file()
    import subprocess

    done = subprocess.run([str(installed), "--version"], capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 0 and done.stdout.startswith("music-classifier ")
