"""`sheet push`: the rows (from the database, the model registry, the stored tags and the latest audit),
the write to the fake Google Sheets API (request bodies asserted: the students' tab is never written, one
values request), the dry run, CSV/XLSX files and one-line errors. Every database test runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from fake_google import FakeGoogle
from models_helpers import add_features, add_track, fill_separable, separable_values
from sqlalchemy import insert, update
from typer.testing import CliRunner

from music_classifier.cli import app
from music_classifier.db.tables import label_audits, label_issues, proposals, students, tracks
from music_classifier.errors import InputError, RemoteError
from music_classifier.ingest.push_rows import PUSH_HEADER, push_rows
from music_classifier.ingest.sheet_push import diff_rows, push_to_google_sheet, write_csv, write_xlsx
from music_classifier.settings import get_settings

KEY = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
ROBOT = "sync@class-project.iam.gserviceaccount.com"
STUDENTS_TAB = [["Student", "Song", "Coarse Genre"], ["Alice", "Queen - Bohemian Rhapsody", "Rock"],
                ["Bob", "=HYPERLINK(\"http://x\")", "Jazz"]]
GENRES = ["Rock", "Jazz"]
ROOT = Path(__file__).resolve().parents[1]


def add_student(conn, name: str) -> int:
    return int(conn.execute(insert(students).values(name=name).returning(students.c.id)).scalar_one())


def class_library(conn) -> dict[str, int]:
    """Two sheet tracks proposed by students (one by two of them), a removed one, and feature-only tracks."""
    alice, bob = add_student(conn, "Alice"), add_student(conn, "Bob")
    queen = add_track(conn, key="queen", genre="Rock", source="sheet", artist="Queen", title="Bohemian Rhapsody")
    formula = add_track(conn, key="formula", genre="Jazz", source="sheet", artist="=HYPERLINK(\"http://x\")",
                        title="x")
    conn.execute(update(tracks).where(tracks.c.id == queen).values(song="Queen - Bohemian Rhapsody"))
    conn.execute(update(tracks).where(tracks.c.id == formula).values(song="=HYPERLINK(\"http://x\")"))
    gone = add_track(conn, key="gone", genre="Rock", source="sheet", removed=True)
    conn.execute(insert(proposals), [
        {"student_id": bob, "track_id": queen, "sheet_row": 2}, {"student_id": alice, "track_id": queen,
                                                                 "sheet_row": 3},
        {"student_id": bob, "track_id": formula, "sheet_row": 4}, {"student_id": alice, "track_id": gone,
                                                                   "sheet_row": 5}])
    return {"queen": queen, "formula": formula, "gone": gone}


def settings_for(fake: FakeGoogle):
    return get_settings(sheets_api_url=fake.sheets_api_url, sheets_export_url=fake.export_url)


@pytest.fixture
def fake():
    with FakeGoogle() as server:
        yield server


@pytest.fixture
def one_candidate(tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"rf": {"n_estimators": [25]}, "logreg": {"C": 1.0}, "knn": {"n_neighbors": 3}}))
    return path


# --------------------------------------------------------------------------- the rows


def test_rows_come_from_tracks_model_tags_and_audit(engine, tmp_path, one_candidate, monkeypatch):
    from music_classifier.db.feature_columns import MUSICNN_V1
    from music_classifier.models import registry
    from music_classifier.models.datasets import DatasetDefinition, create_dataset
    from music_classifier.models.train import TrainOptions, train_model

    with engine.begin() as conn:
        ids = class_library(conn)
        fill_separable(conn, genres_=GENRES, per_genre=8)
        rng = np.random.default_rng(5)
        add_features(conn, ids["queen"], "gtzan_csv", separable_values("gtzan_csv", 0, rng))  # heard as Rock
        add_features(conn, ids["formula"], "gtzan_csv", separable_values("gtzan_csv", 1, rng))  # heard as Jazz
        tags = {c: 0.01 for c in MUSICNN_V1 if c.startswith("tag_")}
        tags |= {"tag_classic_rock": 0.9, "tag_rock": 0.8, "tag_70s": 0.7, "tag_pop": 0.6}
        add_features(conn, ids["queen"], "musicnn", tags)
        create_dataset(conn, "two", DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=5))
        final = train_model(conn, "two", TrainOptions(grid=one_candidate, cv=3, final=True),
                            models_path=tmp_path).model_id
        train_model(conn, "two", TrainOptions(grid=one_candidate, cv=3), models_path=tmp_path)  # newer, not final
        audit = conn.execute(insert(label_audits).values(
            dataset_name="two", model_kind="rf", params={}, n_tracks=1, n_flagged=1, accuracy=0.5,
        ).returning(label_audits.c.id)).scalar_one()
        conn.execute(insert(label_issues).values(audit_id=audit, track_id=ids["queen"], rank=1, sheet_genre="Rock",
                                                 heard_genre="Jazz", sheet_probability=0.1234,
                                                 heard_probability=0.8, dispute_score=0.8766, flagged=True))
    loads = []
    original = registry.load_model
    monkeypatch.setattr(registry, "load_model", lambda *a, **k: loads.append(a[1]) or original(*a, **k))
    with engine.connect() as conn:
        table = push_rows(conn)
    assert loads == [final]  # the newest final model, loaded once for every track
    assert table.model_id == final and table.audit_id == audit
    by_id = {r.track_id: r for r in table.rows}
    assert [r.track_id for r in table.rows[:2]] == [ids["queen"], ids["formula"]]  # sheet order first
    assert ids["gone"] not in by_id  # removed tracks are not pushed
    assert len(table.rows) == 2 + 2 * 8
    queen = by_id[ids["queen"]]
    assert (queen.song, queen.student, queen.sheet_genre, queen.effective_genre, queen.decision) == \
        ("Queen - Bohemian Rhapsody", "Alice, Bob", "Rock", "Rock", "")
    assert queen.predicted_genre == "Rock" and 0.5 < queen.confidence <= 1.0
    assert queen.top_tags == "classic rock, rock, 70s"
    assert queen.audit_score == 0.877
    formula = by_id[ids["formula"]]
    assert (formula.student, formula.predicted_genre, formula.top_tags, formula.audit_score) == ("Bob", "Jazz", "",
                                                                                                   None)

    # Label decisions: the effective genre and what was decided; the sheet genre stays the students'.
    from music_classifier.ingest.label_decisions import keep_genre, set_genre

    with engine.begin() as conn:
        set_genre(conn, ids["queen"], "Jazz", decided_by="teacher")
        keep_genre(conn, ids["formula"], decided_by="teacher")
    with engine.connect() as conn:
        decided = {r.track_id: r for r in push_rows(conn).rows}
    assert (decided[ids["queen"]].sheet_genre, decided[ids["queen"]].effective_genre,
            decided[ids["queen"]].decision) == ("Rock", "Jazz", "relabelled")
    assert (decided[ids["formula"]].effective_genre, decided[ids["formula"]].decision) == (
        formula.sheet_genre, "kept")
    assert table.cells()[0] == list(PUSH_HEADER)
    assert table.cells()[1][0] == ids["queen"] and table.cells()[2][9] == ""

    with engine.connect() as conn:  # an explicit model, and a registry without models
        assert push_rows(conn, model_id=final + 1).model_id == final + 1
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM models")
    with engine.connect() as conn:
        empty = push_rows(conn)
    assert empty.model_id is None and {r.predicted_genre for r in empty.rows} == {""}


# --------------------------------------------------------------------------- Google Sheets


def test_push_creates_its_tab_and_writes_one_values_request(engine, fake, tmp_path):
    with engine.begin() as conn:
        ids = class_library(conn)
        table = push_rows(conn)
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.add_sheet(KEY, [list(r) for r in STUDENTS_TAB], worksheet="Songs", editors={ROBOT})
    result = push_to_google_sheet(table, f"https://docs.google.com/spreadsheets/d/{KEY}/edit", credentials=creds,
                                  settings=settings_for(fake))
    assert result.created and result.diff.added == [ids["queen"], ids["formula"]]
    writes = fake.write_requests()
    assert [w.path for w in writes] == [f"/v4/spreadsheets/{KEY}:batchUpdate",
                                        f"/v4/spreadsheets/{KEY}/values:batchUpdate"]
    add = writes[0].body["requests"]
    assert len(add) == 1 and add[0]["addSheet"]["properties"]["title"] == "music-classifier"
    values = writes[1].body
    assert values["valueInputOption"] == "RAW"  # a title starting with = stays text
    assert [d["range"] for d in values["data"]] == ["'music-classifier'!A1:J3"]
    assert values["data"][0]["values"] == table.cells()
    assert "Songs" not in json.dumps([w.body for w in writes])
    sheet = fake.sheets[KEY]
    assert sheet.worksheets["Songs"] == STUDENTS_TAB  # the students' tab: not one cell written
    assert sheet.worksheets["music-classifier"] == table.cells()
    assert sheet.worksheets["music-classifier"][2][1] == "=HYPERLINK(\"http://x\")"


def test_second_push_rewrites_in_place_and_dry_run_writes_nothing(engine, fake, tmp_path):
    with engine.begin() as conn:
        ids = class_library(conn)
        first = push_rows(conn)
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.add_sheet(KEY, [list(r) for r in STUDENTS_TAB], worksheet="Songs", editors={ROBOT})
    push_to_google_sheet(first, KEY, credentials=creds, settings=settings_for(fake))
    tab = fake.sheets[KEY].worksheets["music-classifier"]
    tab.append([999, "typed by a teacher"])  # a row that is no track of ours
    with engine.begin() as conn:
        conn.execute(update(tracks).where(tracks.c.id == ids["formula"]).values(removed_at=first_removed()))
        conn.execute(update(tracks).where(tracks.c.id == ids["queen"]).values(song="Queen - Bohemian Rhapsody (live)"))
        add_track(conn, key="new", genre="Pop", source="csv")
        second = push_rows(conn)
    before = [list(r) for r in tab]
    n_requests = len(fake.requests)

    dry = push_to_google_sheet(second, KEY, credentials=creds, settings=settings_for(fake), dry_run=True)
    assert not dry.created and len(dry.diff.added) == 1
    assert dry.diff.changed == {ids["queen"]: ["song"]}
    assert sorted(dry.diff.removed) == sorted([str(ids["formula"]), "999"])
    assert [(r.method, r.path) for r in fake.requests[n_requests:] if r.path != "/token"] == [
        ("GET", f"/v4/spreadsheets/{KEY}"), ("GET", f"/v4/spreadsheets/{KEY}/values/%27music-classifier%27")]
    assert fake.sheets[KEY].worksheets["music-classifier"] == before

    n_requests = len(fake.requests)
    push_to_google_sheet(second, KEY, credentials=creds, settings=settings_for(fake))
    writes = [r for r in fake.requests[n_requests:] if r.method in ("POST", "PUT") and r.path != "/token"]
    assert len(writes) == 1 and writes[0].path == f"/v4/spreadsheets/{KEY}/values:batchUpdate"
    data = writes[0].body["data"]
    assert len(data) == 1 and data[0]["range"] == "'music-classifier'!A1:J4"  # over the old extent (4 rows)
    assert data[0]["values"][:3] == second.cells() and data[0]["values"][3] == [""] * 10  # leftovers emptied
    got = fake.sheets[KEY].worksheets["music-classifier"]
    assert [r for r in got if any(c != "" for c in r)] == second.cells()
    assert fake.sheets[KEY].worksheets["Songs"] == STUDENTS_TAB
    again = push_to_google_sheet(second, KEY, credentials=creds, settings=settings_for(fake), dry_run=True)
    assert again.diff.empty and again.diff.unchanged == 2


def first_removed():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_a_tab_too_small_is_grown_before_the_write(sqlite_engine, fake, tmp_path):
    with sqlite_engine.begin() as conn:
        class_library(conn)
        table = push_rows(conn)
    creds = fake.write_service_account(tmp_path / "sa.json")
    sheet = fake.add_sheet(KEY, [list(r) for r in STUDENTS_TAB], worksheet="Songs", editors={ROBOT},
                           more={"music-classifier": [list(PUSH_HEADER)]})
    sheet.grids["music-classifier"] = [2, 8]
    push_to_google_sheet(table, KEY, credentials=creds, settings=settings_for(fake))
    grow, values = fake.write_requests()
    props = grow.body["requests"][0]["updateSheetProperties"]
    assert props["properties"]["sheetId"] == sheet.gid("music-classifier")
    assert props["properties"]["gridProperties"] == {"rowCount": 3, "columnCount": 10}
    assert values.path.endswith("/values:batchUpdate") and sheet.worksheets["music-classifier"] == table.cells()


def test_the_students_tab_is_refused(sqlite_engine, fake, tmp_path):
    with sqlite_engine.begin() as conn:
        class_library(conn)
        table = push_rows(conn)
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.add_sheet(KEY, [list(r) for r in STUDENTS_TAB], worksheet="Songs", editors={ROBOT})
    with pytest.raises(InputError, match=r"worksheet 'Songs' holds other data \(first row: Student, Song"):
        push_to_google_sheet(table, KEY, worksheet="Songs", credentials=creds, settings=settings_for(fake))
    fake.sheets[KEY].worksheets["Songs"][0][:2] = ["track", "song"]  # starts like the push's header, is not it
    with pytest.raises(InputError, match="holds other data"):
        push_to_google_sheet(table, KEY, worksheet="Songs", credentials=creds, settings=settings_for(fake))
    fake.sheets[KEY].worksheets["Songs"][0][:2] = ["Student", "Song"]
    assert fake.write_requests() == [] and fake.sheets[KEY].worksheets["Songs"] == STUDENTS_TAB


def test_viewer_only_and_http_errors_are_remote_errors(sqlite_engine, fake, tmp_path, monkeypatch):
    import music_classifier.ingest.sheet_source as source

    with sqlite_engine.begin() as conn:
        class_library(conn)
        table = push_rows(conn)
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.add_sheet(KEY, [list(r) for r in STUDENTS_TAB], worksheet="Songs", shared_with={ROBOT})  # Viewer
    with pytest.raises(RemoteError, match="may not edit it; share the sheet with that address as Editor"):
        push_to_google_sheet(table, KEY, credentials=creds, settings=settings_for(fake))
    assert fake.sheets[KEY].worksheets == {"Songs": STUDENTS_TAB}
    monkeypatch.setattr(source, "BACKOFF_BASE_S", 0.01)
    fake.sheets[KEY].editors.add(ROBOT)
    fake.fail_next(500, count=50)
    with pytest.raises(RemoteError, match="Google Sheets API error 500"):
        push_to_google_sheet(table, KEY, credentials=creds, settings=settings_for(fake))


def test_diff_reads_numbers_back_as_numbers():
    from music_classifier.ingest.push_rows import PushRow, PushTable

    row = PushRow(7, "S", "A", "Rock", "Rock", "", "Jazz", 0.5, "", None)
    table = PushTable([row], None, None)
    same = [list(PUSH_HEADER), [7.0, "S", "A", "Rock", "Rock", "", "Jazz", 0.5]]  # the API trims trailing ""
    assert diff_rows(same, table).unchanged == 1
    assert diff_rows([list(PUSH_HEADER), [7, "S", "A", "Rock", "Rock", "", "Jazz", 0.51]], table).changed == \
        {7: ["confidence"]}


# --------------------------------------------------------------------------- files


def test_csv_and_xlsx_files(engine, tmp_path):
    from openpyxl import load_workbook

    with engine.begin() as conn:
        ids = class_library(conn)
        conn.execute(update(tracks).where(tracks.c.id == ids["queen"]).values(song="Queen\x07 - Bohemian"))
        table = push_rows(conn)
    write_csv(table, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(PUSH_HEADER) and len(rows) == 3
    assert rows[2][1] == "'=HYPERLINK(\"http://x\")"  # neutralised as `sql --csv` does
    write_xlsx(table, tmp_path / "out.xlsx")
    ws = load_workbook(tmp_path / "out.xlsx")["music-classifier"]
    cell = ws.cell(row=3, column=2)
    assert cell.value == "=HYPERLINK(\"http://x\")" and cell.data_type == "s"  # text, not a formula
    assert [c.value for c in ws[1]] == list(PUSH_HEADER)
    assert ws.cell(row=2, column=2).value == "Queen - Bohemian"  # XLSX cannot hold the control character


# --------------------------------------------------------------------------- CLI


def cli(engine, *args, env=None):
    url = engine.url.render_as_string(hide_password=False)
    env = {"GOOGLE_APPLICATION_CREDENTIALS": None, **(env or {})}
    return CliRunner().invoke(app, ["--db", url, "sheet", "push", *map(str, args)], env=env)


def one_line_error(result, *parts):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def test_cli_errors_are_one_line(engine, fake, tmp_path, monkeypatch):
    import music_classifier.ingest.sheet_source as source

    with engine.begin() as conn:
        class_library(conn)
    env = {"GOOGLE_SHEETS_API_URL": fake.sheets_api_url}
    creds = fake.write_service_account(tmp_path / "sa.json")
    one_line_error(cli(engine), "give exactly one target")
    one_line_error(cli(engine, "--csv", tmp_path / "a.csv", "--dry-run"), "--dry-run compares with")
    one_line_error(cli(engine, "--sheet", KEY, env=env), "needs --credentials FILE")
    one_line_error(cli(engine, "--sheet", KEY, "--credentials", creds, env=env), f"Google Sheet {KEY} not found")
    (tmp_path / "bad.json").write_text("{not json")
    one_line_error(cli(engine, "--sheet", KEY, "--credentials", tmp_path / "bad.json", env=env), "not a JSON file")
    fake.add_sheet(KEY, [list(r) for r in STUDENTS_TAB], worksheet="Songs", editors={ROBOT})
    one_line_error(cli(engine, "--sheet", KEY, "--credentials", creds, "--worksheet", "Songs", env=env),
                   "holds other data")
    one_line_error(cli(engine, "--csv", tmp_path / "no-such-dir" / "a.csv"), "cannot write the file")
    assert fake.write_requests() == []
    fake.sheets[KEY].editors.clear()
    fake.sheets[KEY].shared_with.add(ROBOT)  # Viewer only
    one_line_error(cli(engine, "--sheet", KEY, "--credentials", creds, env=env), f"the service account {ROBOT} may "
                   "not edit it; share the sheet with that address as Editor")
    fake.sheets[KEY].editors.add(ROBOT)
    monkeypatch.setattr(source, "BACKOFF_BASE_S", 0.01)
    fake.fail_next(502, count=50)
    one_line_error(cli(engine, "--sheet", KEY, "--credentials", creds, env=env),
                   f"Google Sheets API error 502 for sheet {KEY}: injected 502")
    assert fake.sheets[KEY].worksheets == {"Songs": STUDENTS_TAB}


def readme_push_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("### Sending results back: `sheet push`")
    block = re.search(r"```bash\n(.*?)```", text[start:], flags=re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.startswith("music-classifier ")]


def test_readme_push_commands_run(engine, fake, tmp_path, monkeypatch):
    """The commands the README shows, run as shown (KEY -> the fake's sheet; files in a temporary directory)."""
    with engine.begin() as conn:
        ids = class_library(conn)
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.add_sheet(KEY, [list(r) for r in STUDENTS_TAB], worksheet="Songs", editors={ROBOT})
    env = {"GOOGLE_SHEETS_API_URL": fake.sheets_api_url, "GOOGLE_APPLICATION_CREDENTIALS": str(creds)}
    monkeypatch.chdir(tmp_path)
    commands = readme_push_commands()
    assert len(commands) >= 3
    outputs = []
    for command in commands:
        assert command[:3] == ["music-classifier", "sheet", "push"]
        result = cli(engine, *[a.replace("KEY", KEY) for a in command[3:]], env=env)
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    assert "dry run: nothing written" in outputs[0] and "2 added" in outputs[0] and f"+ track {ids['queen']}" \
        in outputs[0]
    assert fake.sheets[KEY].worksheets["music-classifier"][1][0] == ids["queen"]
    assert fake.sheets[KEY].worksheets["Songs"] == STUDENTS_TAB
    assert any(Path(tmp_path, name).is_file() for name in ("class-results.xlsx", "class-results.csv"))
