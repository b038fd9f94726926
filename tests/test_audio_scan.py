"""`audio scan`: matching files to tracks, recording audio facts, idempotence, staleness, path safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from audio_helpers import RATE, add_track, audio_row, sha, write_audio
from sqlalchemy import event, insert, select, update
from typer.testing import CliRunner

from music_classifier.db.tables import extractions, genres, track_genres, tracks
from music_classifier.errors import InputError, PathOutsideLibrary
from music_classifier.ingest.audio_scan import (
    FUZZY_THRESHOLD,
    fuzzy_score,
    m4a_decodable,
    parse_file_name,
    resolve_in_library,
    scan_library,
)
from music_classifier.ingest.genres import add_alias
from music_classifier.ingest.keys import track_key


class WriteCounter:
    """Counts INSERT/UPDATE/DELETE statements sent to the database."""

    def __init__(self, engine) -> None:
        self.statements: list[str] = []
        self.engine = engine

    def __enter__(self) -> WriteCounter:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.statements.append(statement)


@pytest.fixture
def library(tmp_path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    return root


@pytest.fixture
def seeded(engine, library):
    """Five sheet tracks and a library holding tagged, named, misspelt, wrong and unnamed files."""
    with engine.begin() as conn:
        ids = {
            "yesterday": add_track(conn, "The Beatles", "Yesterday", genre="Rock"),
            "let it be": add_track(conn, "The Beatles", "Let It Be", genre="Rock"),
            "take care": add_track(conn, "Drake feat. Rihanna", "Take Care", genre="Hip-Hop"),
            "rhapsody": add_track(conn, "Queen", "Bohemian Rhapsody", genre="Rock"),
            "so what": add_track(conn, "Miles Davis", "So What", genre="Jazz"),
        }
    files = {
        # tags win over a misleading file name; "The" is ignored
        "yesterday": write_audio(library / "rock" / "track01.flac", artist="Beatles", title="Yesterday", seed=1),
        # "Artist - Title" file name; "(feat. Rihanna)" is ignored
        "take care": write_audio(library / "hiphop" / "Drake - Take Care (feat. Rihanna).wav", seed=2, channels=2),
        # a typo: only the fuzzy step finds it
        "rhapsody": write_audio(library / "rock" / "03 - Queen - Bohemian Rapsody.mp3", seed=3),
        # a different song by the same artist: must not be taken for "Let It Be"
        "let it go": write_audio(library / "rock" / "Beatles - Let It Go.ogg", seed=4),
        "noise": write_audio(library / "misc" / "noise.wav", seed=5),
    }
    return ids, files


def test_scan_matches_by_tags_file_name_and_fuzzy(engine, library, seeded):
    ids, files = seeded
    with engine.begin() as conn:
        report = scan_library(conn, root=library)

    how = {m.track_id: m.how for m in report.matched}
    assert how == {ids["yesterday"]: "tags", ids["take care"]: "filename", ids["rhapsody"]: "fuzzy"}
    assert {u.path: u.reason for u in report.unmatched} == {
        "rock/Beatles - Let It Go.ogg": "no matching track",
        "misc/noise.wav": "no artist/title in tags or file name",
    }
    assert {t.track_id for t in report.without_audio} == {ids["let it be"], ids["so what"]}
    assert report.files_seen == 5 and report.updated == 3 and report.unchanged == 0

    yesterday = audio_row(engine, ids["yesterday"])
    assert yesterday.audio_path == "rock/track01.flac"
    assert yesterday.file_sha256 == sha(files["yesterday"])
    assert yesterday.duration_s == pytest.approx(0.5, abs=0.01)
    assert (yesterday.sample_rate, yesterday.channels) == (RATE, 1)
    take_care = audio_row(engine, ids["take care"])
    assert take_care.audio_path == "hiphop/Drake - Take Care (feat. Rihanna).wav"
    assert take_care.channels == 2
    rhapsody = audio_row(engine, ids["rhapsody"])
    assert rhapsody.file_sha256 == sha(files["rhapsody"]) and rhapsody.duration_s > 0.4
    assert audio_row(engine, ids["let it be"]).audio_path is None


@pytest.mark.parametrize(("stored", "found"), [
    (("The Beatles", "Yesterday"), ("Beatles", "Yesterdy")),
    (("Queen", "Bohemian Rhapsody"), ("Queen", "Bohemian Rapsody")),
    (("Elvis Presley", "Hound Dog"), ("Elvis Presly", "Hound Dog")),
    (("Michael Jackson", "Billie Jean"), ("Michael Jackson", "Billy Jean")),
    (("Drake feat. Rihanna", "Take Care"), ("Drake", "Take Care")),
    (("Beyoncé", "Halo"), ("Beyonce", "Halo (Remastered)")),
])
def test_fuzzy_threshold_accepts_near_misses(stored, found):
    assert fuzzy_score(*stored, *found) >= FUZZY_THRESHOLD


@pytest.mark.parametrize(("stored", "found"), [
    (("The Beatles", "Let It Be"), ("Beatles", "Let It Go")),
    (("Adele", "Hello"), ("Adele", "Hallo")),  # too short to tell a typo from another song
    (("Michael Jackson", "Beat It"), ("Michael Jackson", "Bad")),
    (("Red Hot Chili Peppers", "Scar Tissue"), ("Red Hot Chili Peppers", "Snow")),
    (("Queen", "Bohemian Rhapsody"), ("Quincy Jones", "Bohemian Rhapsody")),
])
def test_fuzzy_threshold_rejects_other_songs(stored, found):
    assert fuzzy_score(*stored, *found) < FUZZY_THRESHOLD


def test_joined_artist_title_score_would_accept_another_song():
    """Why artist and title are scored apart: one joined string lets a shared artist carry the match."""
    from rapidfuzz import fuzz

    assert fuzz.token_sort_ratio("michael jackson beat it", "michael jackson bad") >= FUZZY_THRESHOLD
    assert fuzzy_score("Michael Jackson", "Beat It", "Michael Jackson", "Bad") < 50


def test_file_name_parsing():
    assert parse_file_name("rock/03 - Queen - Innuendo.mp3") == ("Queen", "Innuendo")
    assert parse_file_name("Queen_-_Innuendo.flac") == ("Queen", "Innuendo")
    assert parse_file_name("10 Years - Wasteland.wav") == ("10 Years", "Wasteland")
    assert parse_file_name("noise.wav") == (None, None)


def test_rescan_writes_nothing(engine, library, seeded):
    with engine.begin() as conn:
        first = scan_library(conn, root=library)
    with WriteCounter(engine) as writes, engine.begin() as conn:
        second = scan_library(conn, root=library)
    assert writes.statements == []
    assert second.updated == 0 and second.unchanged == len(first.matched) == 3
    assert {m.how for m in second.matched} == {"path"}


def test_changed_file_updates_hash_and_marks_features_stale_once(engine, library, seeded):
    ids, files = seeded
    with engine.begin() as conn:
        scan_library(conn, root=library)
        track = ids["yesterday"]
        conn.execute(insert(extractions), [
            {"track_id": track, "extractor": "librosa", "version": "1", "params_hash": "a", "status": "done"},
            {"track_id": track, "extractor": "librosa", "version": "1", "params_hash": "b", "status": "failed"},
            {"track_id": ids["take care"], "extractor": "librosa", "version": "1", "params_hash": "a",
             "status": "done"},
        ])
    write_audio(files["yesterday"], artist="Beatles", title="Yesterday", seed=99, seconds=0.7)

    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    assert report.updated == 1 and report.marked_stale == 1
    row = audio_row(engine, ids["yesterday"])
    assert row.file_sha256 == sha(files["yesterday"]) and row.duration_s == pytest.approx(0.7, abs=0.01)
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(extractions.c.params_hash, extractions.c.status)
                                     .where(extractions.c.track_id == ids["yesterday"])).all())
        other = conn.execute(select(extractions.c.status).where(extractions.c.track_id == ids["take care"])).scalar()
    assert statuses == {"a": "stale", "b": "failed"}
    assert other == "done"

    with WriteCounter(engine) as writes, engine.begin() as conn:
        again = scan_library(conn, root=library)
    assert again.marked_stale == 0 and writes.statements == []


def test_moved_file_is_relinked(engine, library, seeded):
    ids, files = seeded
    with engine.begin() as conn:
        scan_library(conn, root=library)
    files["yesterday"].rename(library / "misc" / "moved.flac")
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    assert [(m.track_id, m.how) for m in report.matched if m.path == "misc/moved.flac"] == [(ids["yesterday"], "tags")]
    assert report.marked_stale == 0  # same content, new place
    assert audio_row(engine, ids["yesterday"]).audio_path == "misc/moved.flac"


def test_second_copy_of_a_song_is_reported_not_linked(engine, library, seeded):
    ids, _ = seeded
    write_audio(library / "zz" / "copy.flac", artist="The Beatles", title="Yesterday", seed=7)
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    reasons = {u.path: u.reason for u in report.unmatched}
    assert reasons["zz/copy.flac"] == f"same song as rock/track01.flac (track #{ids['yesterday']})"


def test_symlinks_are_followed_inside_the_root_and_not_out_of_it(engine, library, seeded, tmp_path):
    """A link that stays in the library is followed, each file once; one that leads out is reported, not walked."""
    ids, _ = seeded
    outside = tmp_path / "outside"
    elsewhere = write_audio(outside / "Miles Davis - So What.wav", seed=8)
    (library / "jazz").mkdir()
    (library / "jazz" / "Miles Davis - So What.wav").symlink_to(elsewhere)
    (library / "linked_dir").symlink_to(outside, target_is_directory=True)
    (library / "inside_dir_link").symlink_to(library / "rock", target_is_directory=True)
    (library / "rock" / "loop").symlink_to(library, target_is_directory=True)
    (library / "misc" / "broken.wav").symlink_to(tmp_path / "gone.wav")
    (library / "misc" / "Yesterday again.flac").symlink_to(library / "rock" / "track01.flac")

    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons == {
        "jazz/Miles Davis - So What.wav": "symlink leads outside the library root (not followed)",
        "linked_dir": "symlink leads outside the library root (not followed)",
        "inside_dir_link": "symlinked directory already scanned under its real path",
        "rock/loop": "symlinked directory already scanned under its real path",
        "misc/broken.wav": "broken symlink",
        "misc/Yesterday again.flac": "same file as rock/track01.flac (a symlink)",
    }
    assert audio_row(engine, ids["so what"]).audio_path is None
    assert report.files_seen == 5  # the five real files, each once


def test_a_symlinked_folder_is_scanned_when_it_stays_inside_the_root(engine, library, tmp_path):
    write_audio(library / "store" / "Miles Davis - So What.wav", seed=8)
    (library / "jazz").symlink_to(library / "store", target_is_directory=True)
    outside = tmp_path / "downloads"
    outside.mkdir()
    (library / "downloads").symlink_to(outside, target_is_directory=True)
    with engine.begin() as conn:
        track = add_track(conn, "Miles Davis", "So What")
        report = scan_library(conn, root=library, subdir=Path("jazz"))  # relative: against the root
        with pytest.raises(PathOutsideLibrary, match="is a symlink that leads outside the library root"):
            scan_library(conn, root=library, subdir=Path("downloads"))
    assert [(m.path, m.track_id) for m in report.matched] == [("jazz/Miles Davis - So What.wav", track)]


def test_directory_outside_the_root_is_refused(engine, library, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with engine.begin() as conn:
        with pytest.raises(PathOutsideLibrary, match="outside the library root .*or pass --move-root"):
            scan_library(conn, root=library, subdir=outside)
        with pytest.raises(PathOutsideLibrary):
            scan_library(conn, root=library, subdir=library / ".." / "elsewhere")


def test_stored_paths_that_escape_are_refused(engine, library, tmp_path):
    (tmp_path / "secret.wav").write_bytes(b"x")
    for bad in ("../secret.wav", "/etc/passwd", "a/../../secret.wav", ""):
        with pytest.raises(PathOutsideLibrary):
            resolve_in_library(library, bad)
    assert resolve_in_library(library, "rock/a.wav") == library.resolve() / "rock" / "a.wav"
    with engine.begin() as conn:
        track = add_track(conn, "Someone", "Something")
        conn.execute(update(tracks).where(tracks.c.id == track).values(audio_path="../secret.wav"))
        report = scan_library(conn, root=library)
    assert [(t.track_id, t.reason) for t in report.without_audio] == [(track, "stored path escapes the library root")]


def test_unreadable_files_are_reported_and_the_scan_goes_on(engine, library, seeded):
    ids, _ = seeded
    (library / "rock" / "The Beatles - Let It Be.wav").write_bytes(b"RIFF not really a wave file" * 10)
    (library / "rock" / "Broken - Song.m4a").write_bytes(b"\x00" * 64)
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["rock/The Beatles - Let It Be.wav"].startswith("unreadable")
    if m4a_decodable():
        assert reasons["rock/Broken - Song.m4a"].startswith("unreadable")
    else:
        assert "ffmpeg" in reasons["rock/Broken - Song.m4a"]
    assert len(report.matched) == 3
    assert audio_row(engine, ids["let it be"]).audio_path is None


def test_progress_reports_every_byte_hashed(engine, library, seeded):
    _, files = seeded

    class Recorder:
        total = files_count = done = 0

        def start(self, total_bytes: int, files: int) -> None:
            self.total, self.files_count = total_bytes, files

        def advance(self, nbytes: int) -> None:
            self.done += nbytes

    recorder = Recorder()
    with engine.begin() as conn:
        scan_library(conn, root=library, progress=recorder)
    assert recorder.files_count == 5
    assert recorder.total == recorder.done == sum(p.stat().st_size for p in files.values())


def test_add_unmatched_registers_files_under_the_aliased_genre(engine, library, seeded):
    with engine.begin() as conn:
        add_alias(conn, "Klassik", "Classical")
    write_audio(library / "classical" / "Bach - Air.flac", seed=10)
    write_audio(library / "classical" / "untitled.wav", seed=11)
    write_audio(library / "classical" / "track2.mp3", artist="Chopin", title="Nocturne", seed=12)
    write_audio(library / "classical" / "track3.wav", artist="Satie", title="Gymnopedie", seed=13)

    with engine.begin() as conn:
        report = scan_library(conn, root=library, subdir=library / "classical", add_unmatched_genre="Klassik")
    assert report.genre_applied == {"Klassik": "Classical"}
    assert sorted(a.path for a in report.added) == ["classical/Bach - Air.flac", "classical/track2.mp3",
                                                    "classical/track3.wav", "classical/untitled.wav"]
    assert report.unmatched == []
    with engine.connect() as conn:
        rows = conn.execute(
            select(tracks.c.source, tracks.c.track_key, tracks.c.artist, tracks.c.title, tracks.c.audio_path,
                   genres.c.display_name)
            .join(track_genres, (track_genres.c.track_id == tracks.c.id) & (track_genres.c.rank == 0))
            .join(genres, genres.c.id == track_genres.c.genre_id)
            .where(tracks.c.source == "file").order_by(tracks.c.audio_path)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("file", track_key("Bach", "Air"), "Bach", "Air", "classical/Bach - Air.flac", "Classical"),
        ("file", track_key("Chopin", "Nocturne"), "Chopin", "Nocturne", "classical/track2.mp3", "Classical"),
        ("file", track_key("Satie", "Gymnopedie"), "Satie", "Gymnopedie", "classical/track3.wav", "Classical"),
        ("file", "path:classical/untitled.wav", "", "untitled", "classical/untitled.wav", "Classical"),
    ]

    with WriteCounter(engine) as writes, engine.begin() as conn:
        again = scan_library(conn, root=library, subdir=library / "classical", add_unmatched_genre="Klassik")
    assert again.added == [] and writes.statements == []


def test_add_unmatched_with_a_bad_genre_writes_nothing(engine, library, seeded):
    with engine.connect() as conn:
        before = conn.execute(select(tracks.c.id, tracks.c.audio_path).order_by(tracks.c.id)).all()
    with pytest.raises(InputError, match="characters outside"):
        with engine.begin() as conn:
            scan_library(conn, root=library, add_unmatched_genre="rock'); DROP TABLE tracks;--")
    with engine.connect() as conn:
        assert conn.execute(select(tracks.c.id, tracks.c.audio_path).order_by(tracks.c.id)).all() == before


# --------------------------------------------------------------------------------------------- CLI


def _cli(engine, library: Path, *args: str):
    from music_classifier.cli import app

    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(app, ["--db", url, "--library", str(library), "audio", "scan", *args])


def test_cli_scan_prints_summary_unmatched_and_missing(engine, library, seeded):
    result = _cli(engine, library)
    assert result.exit_code == 0, result.output
    assert "matched to tracks" in result.output
    assert "Let It Go" in result.output and "no matching track" in result.output  # unmatched file
    assert "So What" in result.output  # track without audio


def test_cli_add_unmatched_needs_genre(engine, library, seeded):
    result = _cli(engine, library, "--add-unmatched")
    assert result.exit_code == 1
    assert "--add-unmatched needs --genre" in result.output
    assert "Traceback" not in result.output


def test_cli_directory_outside_library_is_one_line_error(engine, library, tmp_path):
    result = _cli(engine, library, str(tmp_path))
    assert result.exit_code == 1
    assert "outside the library root" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_add_unmatched_with_genre(engine, library, seeded):
    result = _cli(engine, library, str(library / "misc"), "--add-unmatched", "--genre", "Noise")
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        added = conn.execute(select(tracks.c.audio_path).where(tracks.c.source == "file")).scalars().all()
    assert added == ["misc/noise.wav"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission_is_reported(engine, library, seeded):
    locked = write_audio(library / "rock" / "Queen - Innuendo.wav", seed=12)
    locked.chmod(0)
    try:
        with engine.begin() as conn:
            report = scan_library(conn, root=library)
    finally:
        locked.chmod(0o644)
    assert any(s.path == "rock/Queen - Innuendo.wav" and s.reason.startswith("unreadable") for s in report.skipped)


def test_add_unmatched_adds_one_of_two_copies_and_reports_the_other_once(engine, library):
    write_audio(library / "Satie - Gymnopedie.hq.ogg", artist="Satie", title="Gymnopedie", seed=20)
    write_audio(library / "Satie - Gymnopedie.ogg", artist="Satie", title="Gymnopedie", seed=21)
    with engine.begin() as conn:
        report = scan_library(conn, root=library, add_unmatched_genre="Classical")
    assert [a.path for a in report.added] == ["Satie - Gymnopedie.hq.ogg"]
    assert [(u.path, u.reason) for u in report.unmatched] == [
        ("Satie - Gymnopedie.ogg", "same song as Satie - Gymnopedie.hq.ogg")]
