"""`music-classifier sheet sync` as a new user would run it: exit codes, one-line errors, and the
database unchanged whenever a sync aborts. Every bad input from issue 2's "Done when" is here."""

from __future__ import annotations

import pytest
from fake_google import FakeGoogle
from sqlalchemy import func, select
from typer.testing import CliRunner

from music_classifier.cli import app
from music_classifier.db.tables import genres, proposals, students, track_genres, tracks

HEADER = "student,song,coarse_genre,genre1"
GOOD = [
    "Alice,Radiohead - Creep,Indi_Rock,Alt_Rock",
    "Bob,Radiohead - Creep,Indie Rock,",
    "Bob,Daft Punk - One More Time,Electronic,House",
    "Carla,Kendrick Lamar - HUMBLE.,Hip-Hop,",
    "Dan,Miles Davis - So What,Jazz,",
]
KEY = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def write(tmp_path, lines, name="songs.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes("\n".join(lines).encode(encoding))
    return path


def run(engine, *args, env=None):
    url = engine.url.render_as_string(hide_password=False)
    env = {"GOOGLE_APPLICATION_CREDENTIALS": None, **(env or {})}  # None: unset for the run
    return CliRunner().invoke(app, ["--db", url, "sheet", "sync", *map(str, args)], env=env)


def state(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)))
                for t in (students, tracks, proposals, genres, track_genres)}


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_sync_then_resync_exit_0(engine, tmp_path):
    path = write(tmp_path, [HEADER, *GOOD])
    result = run(engine, "--csv", path)
    assert result.exit_code == 0, result.output
    assert "added" in result.stdout and "Indi_Rock -> Indie Rock" in result.stdout
    assert count(engine, tracks) == 4 and count(engine, proposals) == 5
    before = state(engine)
    again = run(engine, "--csv", path)
    assert again.exit_code == 0 and state(engine) == before
    assert "unchanged" in again.stdout


def test_bad_rows_exit_3_and_the_rest_is_committed(engine, tmp_path):
    result = run(engine, "--csv", write(tmp_path, [HEADER, GOOD[0], "Bob,,Rock,", GOOD[2]]))
    assert result.exit_code == 3, result.output
    assert "row 3: empty song" in result.stderr.splitlines()
    assert count(engine, tracks) == 2


def test_strict_exit_1_writes_nothing(engine, tmp_path):
    before = state(engine)
    result = run(engine, "--csv", write(tmp_path, [HEADER, GOOD[0], "Bob,,Rock,"]), "--strict")
    assert result.exit_code == 1
    assert "row 3: empty song" in result.stderr and "--strict" in result.stderr
    assert state(engine) == before


def test_dry_run_writes_nothing(engine, tmp_path):
    before = state(engine)
    result = run(engine, "--csv", write(tmp_path, [HEADER, *GOOD, "Eve,X - Y,Brand New Genre,"]), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.stdout and "would create" in result.stdout
    assert state(engine) == before


def test_removal_abort_keeps_the_database(engine, tmp_path):
    assert run(engine, "--csv", write(tmp_path, [HEADER, *GOOD])).exit_code == 0
    before = state(engine)
    other = write(tmp_path, [HEADER, "Zed,Someone - Else,Rock,"], name="week2.csv")
    assert_one_line_error(run(engine, "--csv", other), "would remove 4 of 4", "--allow-removals")
    assert state(engine) == before
    assert run(engine, "--csv", other, "--allow-removals").exit_code == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tracks).where(tracks.c.removed_at.is_not(None))
                            ).scalar() == 4


# --------------------------------------------------------------------------- the "Done when" bad inputs


def test_missing_column(engine, tmp_path):
    result = run(engine, "--csv", write(tmp_path, ["student,song", "Alice,Radiohead - Creep"]))
    assert_one_line_error(result, "songs.csv", "missing column 'coarse_genre'")
    assert count(engine, tracks) == 0


def test_empty_file(engine, tmp_path):
    assert_one_line_error(run(engine, "--csv", write(tmp_path, [])), "songs.csv: the file is empty")


def test_binary_file(engine, tmp_path):
    path = tmp_path / "songs.csv"
    path.write_bytes(bytes(range(256)) * 16)
    assert_one_line_error(run(engine, "--csv", path), "songs.csv: not a text CSV file")


def test_sql_injection_genre_is_a_bad_row(engine, tmp_path):
    path = write(tmp_path, [HEADER, GOOD[0], "Mallory,Evil - Song,\"rock'); DROP TABLE tracks;--\","])
    result = run(engine, "--csv", path)
    assert result.exit_code == 3
    assert any(line.startswith("row 3: coarse_genre: genre \"rock'); DROP TABLE tracks;--\"")
               for line in result.stderr.splitlines())
    assert count(engine, tracks) == 1 and count(engine, genres) > 0  # the tables are all there


def test_duplicated_row(engine, tmp_path):
    result = run(engine, "--csv", write(tmp_path, [HEADER, GOOD[0], GOOD[2], GOOD[0]]))
    assert result.exit_code == 3
    assert "row 4: duplicate of row 2 (same student and song)" in result.stderr.splitlines()
    assert count(engine, proposals) == 2


def test_cp1251_csv(engine, tmp_path):
    path = write(tmp_path, [HEADER, "Алиса,Кино - Группа крови,Rock,Post-Punk", "Борис,Кино - Кукушка,Rock,"],
                 encoding="cp1251")
    result = run(engine, "--csv", path)
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        assert set(conn.execute(select(students.c.name)).scalars()) == {"Алиса", "Борис"}
        assert set(conn.execute(select(tracks.c.title)).scalars()) == {"Группа крови", "Кукушка"}


def test_xlsx_with_empty_header_cell(engine, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["student", "song", None, "coarse_genre"])
    wb.active.append(["Alice", "Radiohead - Creep", "x", "Rock"])
    wb.save(tmp_path / "songs.xlsx")
    assert_one_line_error(run(engine, "--xlsx", tmp_path / "songs.xlsx"),
                          "songs.xlsx", "column C has an empty header cell")


def test_xlsx_whose_first_tab_is_instructions_names_worksheet_and_the_tabs(engine, tmp_path):
    """Issue 16.7d: 'missing column … (found: Put your songs in the Songs tab)' said nothing of --worksheet."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "Instructions"
    wb.active.append(["Put your songs in the Songs tab"])
    songs = wb.create_sheet("Songs")
    songs.append(["student", "song", "coarse_genre"])
    songs.append(["Alice", "Radiohead - Creep", "Rock"])
    wb.save(tmp_path / "class.xlsx")
    assert_one_line_error(run(engine, "--xlsx", tmp_path / "class.xlsx"),
                          "found: Put your songs in the Songs tab", "read worksheet 'Instructions'",
                          "worksheets: Instructions, Songs", "--worksheet NAME")
    result = run(engine, "--xlsx", tmp_path / "class.xlsx", "--worksheet", "Songs")
    assert result.exit_code == 0, result.output
    assert count(engine, tracks) == 1


def test_sheet_url_without_access(engine, tmp_path):
    url = f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=0"
    with FakeGoogle() as fake:
        fake.add_sheet(KEY, [["student", "song", "coarse_genre"], ["A", "B - C", "Rock"]],
                       shared_with={"someone@else.org"})
        env = {"GOOGLE_SHEETS_API_URL": fake.sheets_api_url, "GOOGLE_SHEETS_EXPORT_URL": fake.export_url}
        creds = fake.write_service_account(tmp_path / "sa.json", email="robot@proj.iam.gserviceaccount.com")
        assert_one_line_error(run(engine, "--sheet", url, "--credentials", creds, env=env),
                              "not shared with the service account robot@proj.iam.gserviceaccount.com", KEY)
        # No credentials at all: the link-shared CSV export is tried, and it is not shared by link either.
        assert_one_line_error(run(engine, "--sheet", url, env=env), f"Google Sheet {KEY} is not shared by link")
    assert count(engine, tracks) == 0


def test_sheet_through_the_api_and_the_export(engine, tmp_path):
    rows = [["Student", "Song", "Coarse Genre"], ["Alice", "Radiohead - Creep", "Indi_Rock"]]
    with FakeGoogle() as fake:
        creds = fake.write_service_account(tmp_path / "sa.json")
        fake.add_sheet(KEY, rows, shared_with={"sync@class-project.iam.gserviceaccount.com"}, link_shared=True,
                       more={"Week 2": rows + [["Bob", "Daft Punk - Aerodynamic", "Electronic"]]})
        env = {"GOOGLE_SHEETS_API_URL": fake.sheets_api_url, "GOOGLE_SHEETS_EXPORT_URL": fake.export_url,
               "GOOGLE_APPLICATION_CREDENTIALS": str(creds)}
        result = run(engine, "--sheet", KEY, "--worksheet", "Week 2", env=env)
        assert result.exit_code == 0, result.output
        assert count(engine, tracks) == 2
        assert any(r.path.endswith("/values/%27Week%202%27") for r in fake.requests)
        export = run(engine, "--sheet", KEY, env={k: v for k, v in env.items() if "CREDENTIALS" not in k})
        assert export.exit_code == 1 and "would remove 1 of 2" in export.stderr  # the export read Sheet1
        assert fake.requests[-1].path == f"/spreadsheets/d/{KEY}/export"


@pytest.mark.parametrize("args, message", [
    ([], "give exactly one source"),
    (["--csv", "a.csv", "--xlsx", "b.xlsx"], "got --csv and --xlsx"),
])
def test_exactly_one_source(sqlite_engine, args, message):
    assert_one_line_error(run(sqlite_engine, *args), message)


def test_missing_file(sqlite_engine, tmp_path):
    assert_one_line_error(run(sqlite_engine, "--csv", tmp_path / "nope.csv"), "nope.csv: cannot read the file")


def test_database_without_schema(tmp_path):
    from music_classifier.db.engine import make_engine

    bare = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    with bare.connect():
        pass  # the file exists, without tables (a missing file is refused earlier: tests/test_cli_frictions.py)
    result = run(bare, "--csv", write(tmp_path, [HEADER, GOOD[0]]))
    assert_one_line_error(result, "no such table", "db upgrade")


def test_swapped_genre_headers_stop_the_sync_and_keep_the_database(engine, tmp_path):
    rows = ["Alice,Radiohead - Creep,Indie Rock,Alt Rock", "Bob,Daft Punk - One More Time,Electronic,House",
            "Carla,Kendrick Lamar - HUMBLE.,Hip-Hop,West Coast", "Dan,Miles Davis - So What,Jazz,Modal Jazz",
            "Eve,Bach - Cello Suite No. 1,Classical,Baroque"]
    assert run(engine, "--csv", write(tmp_path, [HEADER, *rows])).exit_code == 0
    before = state(engine)
    swapped = write(tmp_path, ["student,song,genre1,coarse_genre", *rows], name="swapped.csv")
    assert_one_line_error(run(engine, "--csv", swapped), "would change the coarse genre of 5 of 5 live sheet tracks",
                          "row 2 'Radiohead - Creep': Indie Rock -> Alternative Rock", "--allow-relabel")
    assert state(engine) == before
    assert run(engine, "--csv", swapped, "--allow-relabel").exit_code == 0
    with engine.connect() as conn:
        coarse = conn.execute(select(genres.c.display_name).join(track_genres, track_genres.c.genre_id == genres.c.id)
                              .where(track_genres.c.rank == 0)).scalars().all()
    assert sorted(coarse) == ["Alternative Rock", "Baroque", "House", "Modal Jazz", "West Coast"]
