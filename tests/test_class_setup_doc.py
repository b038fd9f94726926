"""docs/class-setup.md is executable: its command blocks run here exactly as written, in a fresh working directory.

The GTZAN block (folder -> trained model in 5 commands, then the report) runs once per module on SQLite, the
database the page uses (it extracts features of 70 clips: minutes, so one database serves every assertion). The
class walkthrough runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
from pathlib import Path

import pytest
from class_library import LIBRARY, SHEET, build_library, write_sheet_csv
from conftest import SHARED_DATA
from typer.testing import CliRunner

DOC = Path(__file__).resolve().parents[1] / "docs" / "class-setup.md"


def doc_block(marker: str) -> list[str]:
    """The command lines of the ```bash block following ``<!-- marker``."""
    text = DOC.read_text()
    start = text.index(f"<!-- {marker}")
    block = re.search(r"```bash\n(.*?)```", text[start:], flags=re.S)
    assert block is not None, f"no bash block after {marker}"
    return [line for line in block.group(1).splitlines() if line.strip()]


def run_doc_command(line: str, env: dict[str, str | None]):
    from music_classifier.cli import app

    argv = shlex.split(line)
    assert argv[0] == "music-classifier", line
    result = CliRunner().invoke(app, argv[1:], env=env, terminal_width=200)
    return result


def test_gtzan_takes_five_commands_or_fewer():
    commands = doc_block("gtzan-commands")
    assert len(commands) <= 5
    assert commands[1] == ("music-classifier audio scan ../shared/data/audio/gtzan_subset_zenny126 "
                           "--genre-from-folder")


@pytest.fixture(scope="module")
def gtzan_run(tmp_path_factory):
    """Run the page's GTZAN commands in a fresh working directory next to a ``shared`` link, as in a clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    base = tmp_path_factory.mktemp("gtzan")
    (base / "shared").symlink_to(SHARED_DATA.parent, target_is_directory=True)
    work = base / "repo"
    work.mkdir()
    env = {"DATABASE_URL": None, "MUSIC_CLASSIFIER_LIBRARY": None, "MUSIC_CLASSIFIER_MODELS_DIR": None}
    previous = Path.cwd()
    os.chdir(work)
    try:
        lines = doc_block("gtzan-commands") + doc_block("gtzan-report")
        results = [(line, run_doc_command(line, env)) for line in lines]
    finally:
        os.chdir(previous)
    return work, results


@pytest.mark.slow
@pytest.mark.shared_data
def test_gtzan_folder_to_trained_model_exactly_as_documented(gtzan_run):
    work, results = gtzan_run
    for line, result in results:
        assert result.exit_code == 0, f"{line}\n{result.output}"
    scan_output = results[1][1].output
    assert "the scanned directory became the root" in scan_output
    con = sqlite3.connect(work / "music_classifier.db")
    per_genre = dict(con.execute(
        "SELECT g.display_name, COUNT(*) FROM tracks t JOIN track_genres tg ON tg.track_id = t.id AND tg.rank = 0 "
        "JOIN genres g ON g.id = tg.genre_id WHERE t.source = 'file' GROUP BY g.display_name").fetchall())
    assert per_genre == {g: 7 for g in ("Blues", "Classical", "Country", "Disco", "Hip-Hop", "Jazz", "Metal", "Pop",
                                        "Reggae", "Rock")}
    assert con.execute("SELECT COUNT(DISTINCT audio_path) FROM tracks").fetchone()[0] == 70
    assert con.execute("SELECT COUNT(*) FROM extractions WHERE status = 'done'").fetchone()[0] == 70
    assert con.execute("SELECT COUNT(*) FROM dataset_gtzan").fetchone()[0] == 70
    cv_score = con.execute("SELECT cv_score FROM models WHERE id = 1").fetchone()[0]
    assert cv_score > 2 * (1 / 10)  # a model that learnt something: twice chance on 10 genres
    assert (work / "gtzan-report" / "index.html").is_file()


@pytest.fixture
def class_dir(shared_data, tmp_path, monkeypatch) -> Path:
    work = tmp_path / "class"
    work.mkdir()
    build_library(shared_data, work / "class-music")
    write_sheet_csv(work / "songs.csv")
    monkeypatch.chdir(work)
    return work


def test_class_walkthrough_exactly_as_documented(class_dir, db_url):
    env = {"DATABASE_URL": db_url, "MUSIC_CLASSIFIER_LIBRARY": None}
    results = [(line, run_doc_command(line, env)) for line in doc_block("class-commands")]
    for line, result in results:
        assert result.exit_code == 0, f"{line}\n{result.output}"
    outputs = {line.split()[1] + " " + line.split()[2]: result.output for line, result in results}
    scan = outputs["audio scan"]
    assert "library root: " + str(class_dir / "class-music") in scan
    text = DOC.read_text()
    printed = re.search(r"Here it prints.*?```text\n(.*?)```", text, flags=re.S)
    assert printed is not None
    for line in printed.group(1).splitlines():
        assert line.strip() in scan, line  # the page shows what the scan really prints
    assert outputs["audio link"].startswith("linked: electronic/admiralbob77_-_Choice_-_Drum-bass.ogg -> track #8 "
                                            "(admiralbob77 - Choice)")
    assert "Jazz" in outputs["genres --top"]
    # What the page describes is what was built: its sheet rows and file names.
    described = text[text.index("holds files such as"):text.index("<!-- class-commands")]
    named = re.findall(r"`([^`]+\.(?:flac|wav|ogg|mp3))`", described.replace("\n", " "))
    assert len(named) >= 5 and set(named) <= set(LIBRARY)
    rows = re.search(r"```text\nstudent,song,coarse_genre\n(.*?)```", text, flags=re.S).group(1).splitlines()
    songs = {f"{artist} - {title}" for artist, title, _ in SHEET.values()}
    assert rows and all(row.split(",")[1] in songs for row in rows)
