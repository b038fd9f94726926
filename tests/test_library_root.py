"""Which directory is the library root: configured, stored by the database, adopted by a first scan, or refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audio_helpers import add_track, audio_row, snapshot, write_audio
from typer.testing import CliRunner

from music_classifier.errors import PathOutsideLibrary
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


# --------------------------------------------------------------------------- issue 16 item 4: a root set once

SONGS = {  # path inside the class's music folder -> (artist, title)
    "rock/Queen - Innuendo.wav": ("Queen", "Innuendo"),
    "rock/Pink Floyd - Money.wav": ("Pink Floyd", "Money"),
    "jazz/Miles Davis - So What.wav": ("Miles Davis", "So What"),
    "jazz/take 3.wav": ("Dave Brubeck", "Take Five"),  # named by the sheet only
    "pop/Adele - Hello.wav": ("Adele", "Hello"),
    "pop/Michael Jackson - Bad.wav": ("Michael Jackson", "Bad"),
}
FILE_CELLS = {"jazz/take 3.wav", "pop/Adele - Hello.wav"}


def _class_folder(tmp_path: Path) -> tuple[Path, Path]:
    """class/music (the library) next to class/downloads, a link to copies of the same songs elsewhere."""
    parent = tmp_path / "class"
    music = parent / "music"
    for seed, path in enumerate(SONGS, start=1):
        write_audio(music / path, seed=seed)
    elsewhere = tmp_path / "elsewhere"
    for seed, (artist, title) in enumerate(SONGS.values(), start=100):
        write_audio(elsewhere / f"{artist} - {title}.wav", seed=seed)
    (parent / "downloads").symlink_to(elsewhere, target_is_directory=True)
    return parent, music


def _class_sheet(conn):
    from music_classifier.ingest.sheet_source import build_table
    from music_classifier.ingest.sheet_sync import parse_for_sync

    rows = [["Ana", f"{artist} - {title}", "Rock", path if path in FILE_CELLS else ""]
            for path, (artist, title) in SONGS.items()]
    return parse_for_sync(conn, build_table([["student", "song", "coarse_genre", "file"], *rows], "songs.csv"))


def _add_songs(engine) -> None:
    with engine.begin() as conn:
        for artist, title in SONGS.values():
            add_track(conn, artist, title)


def _paths(engine) -> dict[str, str | None]:
    from sqlalchemy import select

    from music_classifier.db.tables import tracks

    with engine.connect() as conn:
        return {title: path for title, path in conn.execute(select(tracks.c.title, tracks.c.audio_path))}


def test_sheet_file_cells_are_not_resolved_against_the_working_directory(engine, tmp_path, no_configured_root,
                                                                         monkeypatch):
    """No root yet: a sheet naming files refuses (one line, how to set it) instead of taking the cwd."""
    from music_classifier.errors import ConfigError
    from music_classifier.ingest.sheet_sync import sync_sheet

    _, music = _class_folder(tmp_path)
    monkeypatch.chdir(music)  # where the cells happen to resolve
    before = snapshot(engine)
    with pytest.raises(ConfigError, match=r"^the sheet names audio files but no library root is set: pass "
                                          r"--library DIR once .*or run `music-classifier audio scan DIR` first$"):
        with engine.begin() as conn:
            sync_sheet(conn, _class_sheet(conn))
    assert snapshot(engine) == before
    with engine.begin() as conn:  # a dry run with --library reads the files but records nothing
        dry = sync_sheet(conn, _class_sheet(conn), library_root=music, dry_run=True)
    assert dry.files.linked == len(FILE_CELLS) and snapshot(engine) == before


def test_a_scan_from_the_parent_folder_keeps_the_root_the_sheet_set(engine, tmp_path, no_configured_root,
                                                                    monkeypatch):
    """Issue 16 "Why" 4: sheet file cells, a first scan, then a scan from the parent folder (which holds a
    link out of the library). The root stays where it was set; nothing is rewritten; no track loses audio."""
    from music_classifier.ingest.sheet_sync import sync_sheet

    parent, music = _class_folder(tmp_path)
    monkeypatch.chdir(music)
    with engine.begin() as conn:
        sync_sheet(conn, _class_sheet(conn), library_root=music)  # --library on first use: remembered
    with engine.connect() as conn:
        assert stored_library_root(conn) == music.resolve()
    with engine.begin() as conn:
        first = scan_library(conn, root=None)
    assert first.root == music.resolve() and first.without_audio == []
    linked = _paths(engine)
    assert linked == {title: path for path, (_, title) in SONGS.items()}

    monkeypatch.chdir(parent)
    with engine.begin() as conn:
        again = scan_library(conn, root=None)
    assert again.root == music.resolve() and again.root_origin == "stored"
    assert (again.updated, again.unchanged, again.without_audio) == (0, len(SONGS), [])
    assert _paths(engine) == linked


def test_a_scan_of_another_root_refuses_unless_move_root_which_rewrites_the_paths(engine, tmp_path,
                                                                                  no_configured_root, monkeypatch):
    parent, music = _class_folder(tmp_path)
    monkeypatch.chdir(music)
    with engine.begin() as conn:
        scan_library(conn, root=None)  # the first scan: the working directory becomes the root
        from music_classifier.ingest.sheet_sync import sync_sheet

        sync_sheet(conn, _class_sheet(conn))  # the cells resolve against the stored root
        scan_library(conn, root=None)
    linked = _paths(engine)
    assert linked == {title: path for path, (_, title) in SONGS.items()}
    monkeypatch.chdir(parent)
    before = snapshot(engine)
    for refused in (dict(root=None, subdir=parent), dict(root=parent), dict(root=parent, subdir=Path("music"))):
        with pytest.raises(PathOutsideLibrary, match="pass --move-root to make it the root"):
            with engine.begin() as conn:
                scan_library(conn, **refused)
    assert snapshot(engine) == before

    with engine.begin() as conn:
        moved = scan_library(conn, root=None, subdir=Path("."), move_root=True)
    assert moved.root == parent.resolve() and moved.root_origin == "moved"
    assert f"moved from {music.resolve()} by --move-root; {len(SONGS)} stored path(s) rewritten" in moved.root_note
    assert _paths(engine) == {title: f"music/{path}" for title, path in linked.items()}
    assert {s.path: s.reason for s in moved.skipped} == {
        "downloads": "symlink leads outside the library root (not followed)"}
    assert moved.without_audio == [] and moved.unmatched == []
    with engine.connect() as conn:
        assert stored_library_root(conn) == parent.resolve()
        assert library_root_for(conn, None).path == parent.resolve()  # feature jobs follow the move


def test_move_root_keeps_paths_when_the_library_moved_and_refuses_to_drop_any(engine, tmp_path,
                                                                              no_configured_root):
    import shutil

    from music_classifier.errors import InputError

    _, music = _class_folder(tmp_path)
    _add_songs(engine)
    with engine.begin() as conn:
        scan_library(conn, root=None, subdir=music)
    linked = _paths(engine)
    assert [title for title, path in linked.items() if path is None] == ["Take Five"]  # named by no file
    before = snapshot(engine)
    with pytest.raises(InputError, match=r"^--move-root: 4 stored audio path\(s\) lie outside .*/music/jazz "
                                         r"\(first: .*\) and would lose their audio"):
        with engine.begin() as conn:  # a root inside the old one would leave rock/ and pop/ behind
            scan_library(conn, root=None, subdir=music / "jazz", move_root=True)
    assert snapshot(engine) == before

    copy = tmp_path / "usb" / "class-music"
    shutil.copytree(music, copy)
    with engine.begin() as conn:  # the whole folder moved: paths relative to it still hold
        moved = scan_library(conn, root=copy, move_root=True)
    assert "0 stored path(s) rewritten" in moved.root_note
    assert (moved.updated, moved.unchanged) == (0, len(SONGS) - 1)
    assert [t.title for t in moved.without_audio] == ["Take Five"]
    assert _paths(engine) == linked


def test_a_database_with_paths_but_no_recorded_root_asks_for_it(engine, tmp_path, no_configured_root):
    from sqlalchemy import delete

    from music_classifier.db.tables import service_state
    from music_classifier.errors import ConfigError

    _, music = _class_folder(tmp_path)
    _add_songs(engine)
    with engine.begin() as conn:
        scan_library(conn, root=music)
        conn.execute(delete(service_state))  # as a database from before roots were recorded
    with pytest.raises(ConfigError, match="audio paths are stored but no library root is recorded: pass --library"):
        with engine.begin() as conn:
            scan_library(conn, root=None, subdir=music)
    with engine.begin() as conn:
        report = scan_library(conn, root=music)  # --library once: recorded
    assert (report.updated, report.unchanged) == (0, len(SONGS) - 1)
    with engine.connect() as conn:
        assert stored_library_root(conn) == music.resolve()


def test_cli_refuses_another_root_in_one_line_and_move_root_says_how_many(engine, tmp_path, no_configured_root):
    parent, music = _class_folder(tmp_path)
    _add_songs(engine)
    assert _cli(engine, "scan", str(music)).exit_code == 0
    before = snapshot(engine)
    refused = _cli(engine, "scan", library=parent)
    assert refused.exit_code == 1
    assert refused.output.strip() == (f"error: {parent.resolve()} is not the library root the database records "
                                      f"({music.resolve()}): scan a folder inside the root, or pass --move-root "
                                      "to make it the root (stored paths are rewritten)")
    assert snapshot(engine) == before
    linked = _cli(engine, "link", str(parent / "downloads" / "Queen - Innuendo.wav"), "--track", "1")
    assert linked.exit_code == 1 and len(linked.output.strip().splitlines()) == 1
    assert "is outside the library root" in linked.output

    moved = _cli(engine, "scan", "--move-root", library=parent)
    assert moved.exit_code == 0, moved.output
    rewritten = len(SONGS) - 1  # all but jazz/take 3.wav, which only the sheet names
    assert (f"library root: {parent.resolve()} (moved from {music.resolve()} by --move-root; {rewritten} stored "
            "path(s) rewritten)") in moved.output


def test_cli_sheet_with_file_cells_and_no_root_is_one_line(engine, tmp_path, no_configured_root):
    from music_classifier.cli import app

    _, music = _class_folder(tmp_path)
    csv = tmp_path / "songs.csv"
    csv.write_text("student,song,coarse_genre,file\nAna,Queen - Innuendo,Rock,rock/Queen - Innuendo.wav\n")
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["--db", url, "sheet", "sync", "--csv", str(csv)],
                                env={"GOOGLE_APPLICATION_CREDENTIALS": None})
    assert result.exit_code == 1
    assert result.output.strip() == ("error: the sheet names audio files but no library root is set: pass "
                                     "--library DIR once (the folder your audio files are in; the database "
                                     "remembers it), or run `music-classifier audio scan DIR` first")
    ok = CliRunner().invoke(app, ["--db", url, "--library", str(music), "sheet", "sync", "--csv", str(csv)],
                            env={"GOOGLE_APPLICATION_CREDENTIALS": None})
    assert ok.exit_code == 0, ok.output
    assert _paths(engine) == {"Innuendo": "rock/Queen - Innuendo.wav"}


def test_a_file_cell_or_link_through_a_symlink_out_of_the_root_is_refused(engine, tmp_path, no_configured_root):
    """The root alone says which files are the library: no path through a link that leads out of it is stored."""
    from music_classifier.ingest.audio_link import link_file
    from music_classifier.ingest.sheet_files import plan_sheet_files

    parent, _ = _class_folder(tmp_path)  # class/downloads links to ../elsewhere
    with engine.begin() as conn:
        track = add_track(conn, "Queen", "Innuendo")
    plan = plan_sheet_files([(2, "k", "downloads/Queen - Innuendo.wav"), (3, "j", "music/rock/Queen - Innuendo.wav")],
                            parent)
    assert [str(p) for p in plan.problems] == [
        f"row 2: file 'downloads/Queen - Innuendo.wav' is a symlink that leads outside the library root "
        f"{parent.resolve()}"]
    assert [f.file.rel for f in plan.files] == ["music/rock/Queen - Innuendo.wav"]
    before = snapshot(engine)
    with pytest.raises(PathOutsideLibrary, match="is a symlink that leads outside the library root"):
        with engine.begin() as conn:
            link_file(conn, root=parent, file=parent / "downloads" / "Queen - Innuendo.wav", track_id=track)
    assert snapshot(engine) == before
