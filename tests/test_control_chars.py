"""Control characters (issue 17, item 6): ESC, BEL, C1 and bidi overrides from audio tags, file names,
Spotify and CSV imports are stored clean; stored rows that hold them anyway are printed escaped by
`sql` (table and CSV), `audit`, the scan report and the HTML report. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from audio_helpers import sha, write_audio
from fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify, fake_id
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from music_classifier.db.readonly_roles import readonly_role_name
from music_classifier.db.tables import tracks
from music_classifier.features.spotify_provider import Backoff, SpotifyCatalog
from music_classifier.ingest.audio_scan import scan_library
from music_classifier.ingest.spotify_playlist import import_playlist
from music_classifier.settings import get_settings
from music_classifier.text_safety import clean_text, escape_controls, has_controls, safe_console

# The probe's file name: OSC 0 (retitle the terminal), terminated by BEL, then a CSI colour.
EVIL_NAME = "Evil\x1b]0;TITLE\x07 - Song\x1b[31m.flac"
# OSC 52 writes the clipboard where a terminal allows it; 0x9b is the 8-bit CSI; U+202E reverses text.
EVIL_ARTIST = "Bad\x1b]52;c;ZWNobyBoaQ==\x07 Actor"
EVIL_TITLE = "Title\x9b31m\u202eedoc\r\nNext\x7f"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # what must never be printed


def _raw_controls(text: str) -> list[str]:
    return RAW.findall(text)


# --- the helper ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "clean"), [
    ("Evil\x1b]0;TITLE\x07 - Song\x1b[31m", "Evil]0;TITLE - Song[31m"),
    ("Artist\nTitle", "Artist Title"),  # a line break reads as a space, not as nothing
    ("a\tb", "a\tb"),  # tab is kept
    ("\u202eevil\u202c \u2066x\u2069", "evil x"),
    ("x\x00y\x7fz\x85w\x9bv", "xyz wv"),
    ("Björk – Jóga 坂本龍一 \u200d", "Björk – Jóga 坂本龍一 \u200d"),  # nothing else is touched
])
def test_clean_text(text, clean):
    assert clean_text(text) == clean
    assert not has_controls(clean_text(text).replace("\t", ""))


def test_escape_controls_shows_every_control_but_newline_and_tab():
    assert escape_controls("Evil\x1b]0;T\x07\r\u202e\x9b\x00\n\tok") == "Evil\\x1b]0;T\\x07\\x0d\\u202e\\x9b\\x00\n\tok"
    plain = "Björk – Jóga"
    assert escape_controls(plain) is plain


# --- in: audio files ---------------------------------------------------------------------------------

def _file_rows(engine) -> dict[str, tuple[str, str, str]]:
    with engine.connect() as conn:
        return {r.audio_path: (r.artist, r.title, r.song) for r in conn.execute(
            select(tracks.c.audio_path, tracks.c.artist, tracks.c.title, tracks.c.song)
            .where(tracks.c.source == "file"))}


def test_console_width_follows_columns_set_after_it_was_built(monkeypatch):
    # The CLI builds its consoles at import; a test runner or a caller that sets COLUMNS afterwards must still
    # get tables that wide (under pytest-xdist a narrow COLUMNS at import wrapped every table header).
    monkeypatch.setenv("COLUMNS", "60")
    console = safe_console(file=io.StringIO(), markup=False)
    assert console.width == 60
    monkeypatch.setenv("COLUMNS", "200")
    assert console.width == 200
    console.print("x" * 150)
    assert console.file.getvalue().strip() == "x" * 150
    assert safe_console(file=io.StringIO(), width=40).width == 40  # an explicit width still wins


def test_scanned_file_names_and_tags_are_stored_clean_and_the_path_still_opens(engine, tmp_path):
    library = tmp_path / "library"
    named = write_audio(library / "rock" / EVIL_NAME, seed=1)
    tagged = write_audio(library / "rock" / "tagged\x1b[2J.wav", artist=EVIL_ARTIST, title=EVIL_TITLE, seed=2)
    with engine.begin() as conn:
        report = scan_library(conn, root=library, add_unmatched_genre="Rock")
    assert len(report.added) == 2
    rows = _file_rows(engine)
    # The path is the file's identity: kept as it is on disk, so it still opens the file.
    assert set(rows) == {f"rock/{EVIL_NAME}", "rock/tagged\x1b[2J.wav"}
    for path, original in ((f"rock/{EVIL_NAME}", named), ("rock/tagged\x1b[2J.wav", tagged)):
        assert (library / path).is_file() and sha(library / path) == sha(original)
    # The text read from the name and from the tags holds no control character.
    assert rows[f"rock/{EVIL_NAME}"] == ("Evil]0;TITLE", "Song[31m", "Evil]0;TITLE - Song[31m")
    assert rows["rock/tagged\x1b[2J.wav"] == ("Bad]52;c;ZWNobyBoaQ== Actor", "Title31medoc Next",
                                             "Bad]52;c;ZWNobyBoaQ== Actor - Title31medoc Next")


def test_scan_report_prints_the_file_name_escaped(engine, tmp_path):
    from music_classifier.cli import app

    library = tmp_path / "library"
    write_audio(library / "misc" / EVIL_NAME, seed=1)  # no track to match: listed as unmatched
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["--db", url, "--library", str(library), "audio", "scan"])
    assert result.exit_code == 0, result.output
    assert _raw_controls(result.output) == []
    assert "Evil\\x1b]0;TITLE" in result.output  # (rich itself drops BEL, BS, VT, FF and CR from text)


# --- in: Spotify and CSV imports -------------------------------------------------------------------------

@pytest.fixture
def fake():
    server = FakeSpotify().start()
    yield server
    server.stop()


def test_spotify_playlist_names_are_stored_clean_and_a_bad_id_is_skipped(engine, fake):
    settings = get_settings(spotify_client_id=CLIENT_ID, spotify_client_secret=CLIENT_SECRET,
                            spotify_api_url=fake.api_url, spotify_auth_url=fake.auth_url)
    good = fake.add_track(fake_id(1), ["DJ\x1b]0;owned\x07", "MC\u202eX"], "Track\x1b[31m One\x9b")
    bad = fake.add_track("t\x1b[31m" + "0" * 17, "Some One", "Track Two")  # not a Spotify id: skipped
    pid = fake_id(2, "p")
    fake.playlists[pid] = [good, bad]
    catalog = SpotifyCatalog.from_settings(settings, backoff=Backoff(attempts=2, base_s=0.01, cap_s=0.02))
    report = import_playlist(engine, pid, "Rock", catalog=catalog)
    assert (report.added, report.skipped) == (1, 1)
    with engine.connect() as conn:
        rows = conn.execute(select(tracks.c.track_key, tracks.c.artist, tracks.c.title, tracks.c.song)).all()
    assert [tuple(r) for r in rows] == [(good, "DJ]0;owned, MCX", "Track[31m One", "DJ]0;owned, MCX - Track[31m One")]


def test_csv_import_stores_text_clean_and_refuses_an_id_with_a_control_character(engine, tmp_path):
    from test_csv_import import TIDY_HEADER, tidy_row, write_csv

    from music_classifier.ingest.csv_import import import_spotify_csv

    path = write_csv(tmp_path / "evil.csv", TIDY_HEADER, [
        tidy_row("1aaaaaaaaaaaaaaaaaaaaa", EVIL_ARTIST, "Song\x1b[31m", "pl\x1b]0;x\x07", "pop", "", 1),
        tidy_row("2bbbbbbbbbbbbbbbbbb\x1b[m", "Someone", "Other", "pl", "pop", "", 2),
    ])
    with engine.begin() as conn:
        report = import_spotify_csv(conn, path)
    assert [str(b) for b in report.bad_rows] == ["line 3: track_id has a control character"]
    with engine.connect() as conn:
        rows = conn.execute(select(tracks.c.track_key, tracks.c.artist, tracks.c.title, tracks.c.song,
                                   tracks.c.playlist_id)).all()
    assert [tuple(r) for r in rows] == [("1aaaaaaaaaaaaaaaaaaaaa", "Bad]52;c;ZWNobyBoaQ== Actor", "Song[31m",
                                         "Bad]52;c;ZWNobyBoaQ== Actor - Song[31m", "pl]0;x")]


# --- out: rows stored before the fix (or by another tool) ----------------------------------------------

def _invoke(engine, *args: str):
    from music_classifier.cli import app

    env = {"MUSIC_CLASSIFIER_READONLY_ROLE": None, "MUSIC_CLASSIFIER_READONLY_URL": None,
           "MUSIC_CLASSIFIER_STATEMENT_TIMEOUT_MS": "5000"}
    return CliRunner().invoke(app, ["--db", engine.url.render_as_string(hide_password=False), *args], env=env)


@pytest.fixture
def stored_evil_row(engine):
    """A track row holding ESC, BEL, C1 and U+202E, inserted directly, readable by `sql`."""
    with engine.begin() as conn:
        conn.execute(insert(tracks).values(source="file", track_key="evil", artist=EVIL_ARTIST, title=EVIL_TITLE,
                                           song="x", audio_path=f"rock/{EVIL_NAME}"))
    if engine.dialect.name == "postgresql":
        result = _invoke(engine, "db", "grant-readonly")
        assert result.exit_code == 0, result.output
    yield engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            role = readonly_role_name(*conn.exec_driver_sql("SELECT current_database(), current_schema()").one())
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')


@pytest.mark.parametrize("raw", [False, True])
def test_sql_csv_escapes_stored_control_characters(stored_evil_row, raw):
    query = "SELECT artist, title, audio_path AS \"col\x1b[1m\" FROM tracks WHERE track_key = 'evil'"
    result = _invoke(stored_evil_row, "sql", query, "--csv", *(["--raw"] if raw else []))
    assert result.exit_code == 0, result.output
    assert _raw_controls(result.output) == []
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows == [["artist", "title", "col\\x1b[1m"],
                    [escape_controls(EVIL_ARTIST), escape_controls(EVIL_TITLE), f"rock/{escape_controls(EVIL_NAME)}"]]
    assert rows[1][0] == "Bad\\x1b]52;c;ZWNobyBoaQ==\\x07 Actor"


def test_sql_table_escapes_stored_control_characters(stored_evil_row):
    for column in ("artist", "title", "audio_path"):
        result = _invoke(stored_evil_row, "sql", f"SELECT {column} FROM tracks WHERE track_key = 'evil'")
        assert result.exit_code == 0, result.output
        assert _raw_controls(result.output) == [], column
        assert "\\x" in result.output and "1 row(s)" in result.output


def test_audit_table_and_csv_escape_stored_control_characters(engine):
    from test_audit import FLIPS, seed_class

    with engine.begin() as conn:
        flat = seed_class(conn, flips=FLIPS)["flat"]
        # A flipped track (listed in the table) and every other one (in the CSV) hold control characters.
        conn.execute(update(tracks).where(tracks.c.id.in_(flat)).values(artist=EVIL_ARTIST, title=EVIL_TITLE))
    table = _invoke(engine, "audit", "class", "--repeats", "1", "--cv", "4")
    assert table.exit_code == 0, table.output
    assert "Bad\\x1b]52" in table.output and _raw_controls(table.output) == []
    as_csv = _invoke(engine, "audit", "class", "--repeats", "1", "--cv", "4", "--csv")
    assert as_csv.exit_code == 0, as_csv.output
    assert _raw_controls(as_csv.stdout) == []
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {(r["artist"], r["title"]) for r in rows} == {(escape_controls(EVIL_ARTIST), escape_controls(EVIL_TITLE))}


def test_html_report_escapes_stored_control_characters(engine, tmp_path: Path):
    from test_plots_report import seed_model

    from music_classifier.models.report import build_report

    with engine.begin() as conn:
        model_id = seed_model(conn)
        conn.execute(update(tracks).values(title=tracks.c.title + "\x1b]0;T\x07\u202e"))
    with engine.connect() as conn:
        index = build_report(conn, model_id, out_dir=tmp_path / "report", settings=None)
    html = index.read_text(encoding="utf-8")
    # (The inlined plotly.js holds control characters of its own: look for the stored ones.)
    assert not {"\x1b", "\x07", "\u202e"} & set(html)
    assert "\\x1b]0;T\\x07\\u202e" in html
