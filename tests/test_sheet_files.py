"""Issue 8: a sheet column naming each row's audio file; the path it names wins and is kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, insert, select, update

from music_classifier.db.tables import extractions, genres, proposals, students, track_genres, tracks
from music_classifier.ingest.audio_scan import scan_library
from music_classifier.ingest.keys import track_key

RATE = 22050


def write_wav(path: Path, *, seed: int = 0, seconds: float = 0.3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).uniform(-0.3, 0.3, int(seconds * RATE)).astype("float32")
    sf.write(path, data, RATE, subtype="PCM_16")
    return path


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of the tables a sync or scan may write (for before == after checks)."""
    with engine.connect() as conn:
        return {t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
                for t in (students, tracks, proposals, genres, track_genres, extractions)}


def test_scan_never_moves_a_track_whose_file_a_person_chose(engine, tmp_path):
    """A track pinned to a file ('sheet' or 'link') keeps it; a better-named file is not linked to it."""
    library = tmp_path / "lib"
    write_wav(library / "chosen" / "take 2.wav", seed=1)
    write_wav(library / "Queen - Innuendo.wav", seed=2)  # would match by file name
    with engine.begin() as conn:
        tid = conn.execute(insert(tracks).values(
            source="sheet", track_key=track_key("Queen", "Innuendo"), artist="Queen", title="Innuendo",
            song="Queen - Innuendo", audio_path="chosen/take 2.wav", audio_origin="sheet").returning(tracks.c.id)
        ).scalar_one()
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    assert [(m.path, m.track_id, m.how) for m in report.matched] == [("chosen/take 2.wav", tid, "path")]
    assert [u.path for u in report.unmatched] == ["Queen - Innuendo.wav"]
    # Its file gone, the pinned track still waits for that file rather than taking another.
    (library / "chosen" / "take 2.wav").unlink()
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    assert report.matched == []
    assert [(t.track_id, t.reason) for t in report.without_audio] == [(tid, "file missing: chosen/take 2.wav")]
    with engine.begin() as conn:
        conn.execute(update(tracks).values(audio_origin=None))
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
    assert [(m.path, m.how) for m in report.matched] == [("Queen - Innuendo.wav", "filename")]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tracks)).scalar() == 1


# --------------------------------------------------------------------------- sheet sync with a file column


def _run(engine, library: Path, csv: Path, *args: str):
    from typer.testing import CliRunner

    from music_classifier.cli import app

    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(app, ["--db", url, "--library", str(library), "sheet", "sync", "--csv", str(csv),
                                    *args], env={"GOOGLE_APPLICATION_CREDENTIALS": None})


def _csv(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "songs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _audio(engine) -> dict[str, tuple]:
    """song -> (audio_path, audio_origin, has sha, has duration), live tracks."""
    with engine.connect() as conn:
        return {r.song: (r.audio_path, r.audio_origin, r.file_sha256 is not None, r.duration_s is not None)
                for r in conn.execute(select(tracks).where(tracks.c.removed_at.is_(None)))}


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    write_wav(lib / "blues" / "03 - track.wav", seed=1)
    write_wav(lib / "jazz" / "so what take 2.wav", seed=2)
    write_wav(lib / "a" / "intro.wav", seed=3)
    write_wav(lib / "b" / "intro.wav", seed=4)  # the same bare name twice: ambiguous
    write_wav(lib / "Loose Song.WAV", seed=5)
    (lib / "notes.txt").write_text("not audio")
    return lib


GOOD_ROWS = ["student,song,coarse_genre,file",
             "Ana,Muddy Waters - Hoochie Coochie Man,Blues,blues/03 - track.wav",  # row 2: relative path
             "Ben,Miles Davis - So What,Jazz,so what take 2.wav",  # row 3: bare name found in jazz/
             "Cy,Nina Simone - Sinnerman,Jazz,"]  # row 4: no file


def test_rows_name_their_files_and_a_resync_writes_nothing(engine, library, tmp_path):
    result = _run(engine, library, _csv(tmp_path, GOOD_ROWS))
    assert result.exit_code == 0, result.output
    assert "audio files named by the sheet: 2 linked, 0 unchanged" in result.stdout
    assert _audio(engine) == {
        "Muddy Waters - Hoochie Coochie Man": ("blues/03 - track.wav", "sheet", True, True),
        "Miles Davis - So What": ("jazz/so what take 2.wav", "sheet", True, True),
        "Nina Simone - Sinnerman": (None, None, False, False),
    }
    before = snapshot(engine)
    again = _run(engine, library, _csv(tmp_path, GOOD_ROWS))
    assert again.exit_code == 0 and "2 unchanged" in again.stdout
    assert snapshot(engine) == before


@pytest.mark.parametrize("header", ["audio", "Path", "File Name", "filename"])
def test_every_file_header_spelling_is_accepted(engine, library, tmp_path, header):
    lines = [GOOD_ROWS[0].replace("file", header), *GOOD_ROWS[1:]]
    assert _run(engine, library, _csv(tmp_path, lines)).exit_code == 0
    assert _audio(engine)["Miles Davis - So What"][:2] == ("jazz/so what take 2.wav", "sheet")


def test_unusable_file_cells_are_reported_per_row_and_the_rest_syncs(engine, library, tmp_path):
    outside = write_wav(tmp_path / "outside.wav", seed=9)
    lines = [*GOOD_ROWS,
             "Dee,John Lee Hooker - Boom Boom,Blues,intro.wav",  # 5: two files of that name
             "Eve,B.B. King - The Thrill Is Gone,Blues,blues/missing.wav",  # 6
             "Fay,Howlin Wolf - Smokestack Lightning,Blues,../outside.wav",  # 7
             f"Gus,Etta James - At Last,Blues,{outside}",  # 8: absolute, outside
             "Hal,Ray Charles - Georgia,Blues,notes.txt",  # 9
             "Ivy,Bessie Smith - St Louis Blues,Blues,blues/03 - track.wav",  # 10: row 2's file
             "Jo,Miles Davis - So What,Jazz,a/intro.wav",  # 11: the same song as row 3, another file
             "Kim,Lead Belly - Goodnight Irene,Folk,loose song.wav"]  # 12: found whatever its case
    result = _run(engine, library, _csv(tmp_path, lines))
    assert result.exit_code == 3, result.output
    problems = [line for line in result.stderr.splitlines() if line.startswith("row ")]
    root = library.resolve()
    assert problems == [
        "row 5: file 'intro.wav' is ambiguous: 2 files of that name under the library root (a/intro.wav, "
        "b/intro.wav); write its path relative to the root",
        f"row 6: file 'blues/missing.wav' not found under the library root {root}",
        f"row 7: file '../outside.wav' is outside the library root {root}",
        f"row 8: file '{outside}' is outside the library root {root}",
        "row 9: file 'notes.txt' is not an audio file the scan reads (flac, mp3, ogg, wav; m4a with ffmpeg)",
        "row 10: file 'blues/03 - track.wav' is already named by row 2 (another song); one file per song",
        "row 11: names 'a/intro.wav' but row 3 names 'jazz/so what take 2.wav' for the same song; the first "
        "row's file is used",
    ]
    audio = _audio(engine)
    assert len(audio) == 10  # every row's song synced; only the file cells were skipped
    assert audio["Lead Belly - Goodnight Irene"][:2] == ("Loose Song.WAV", "sheet")
    assert audio["John Lee Hooker - Boom Boom"] == (None, None, False, False)
    assert "audio files named by the sheet: 3 linked, 0 unchanged, 7 unusable" in result.stdout


def test_strict_refuses_an_unusable_file_cell_and_writes_nothing(engine, library, tmp_path):
    assert _run(engine, library, _csv(tmp_path, GOOD_ROWS[:2])).exit_code == 0
    before = snapshot(engine)
    result = _run(engine, library, _csv(tmp_path, [*GOOD_ROWS, "Dee,John Lee Hooker - Boom Boom,Blues,nope.wav"]),
                  "--strict")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: --strict: 1 file cell(s) unusable, first row 5: file 'nope.wav' not found under the "
                     f"library root {library.resolve()}; nothing was written"]
    assert snapshot(engine) == before


def test_the_sheet_wins_over_the_scan_and_keeps_its_file_across_scans(engine, library, tmp_path):
    """A file the scan had registered as a 'file' track moves to the row naming it; later scans keep it."""
    from typer.testing import CliRunner

    from music_classifier.cli import app

    url = engine.url.render_as_string(hide_password=False)
    write_wav(library / "Miles Davis - So What.wav", seed=7)  # what the scan would match by name
    scan = CliRunner().invoke(app, ["--db", url, "--library", str(library), "audio", "scan", "jazz",
                                    "--add-unmatched", "--genre", "Jazz"])
    assert scan.exit_code == 0, scan.output
    with engine.connect() as conn:
        file_track = conn.execute(select(tracks.c.id).where(tracks.c.audio_path == "jazz/so what take 2.wav")
                                  ).scalar_one()
    result = _run(engine, library, _csv(tmp_path, GOOD_ROWS))
    assert result.exit_code == 0, result.output
    assert f"row 3: file 'jazz/so what take 2.wav' was the audio of track #{file_track}" in result.stdout
    with engine.connect() as conn:
        removed = conn.execute(select(tracks.c.removed_at, tracks.c.audio_path).where(tracks.c.id == file_track)
                               ).one()
    assert removed.removed_at is not None and removed.audio_path is None
    for _ in range(2):
        rescan = CliRunner().invoke(app, ["--db", url, "--library", str(library), "audio", "scan"])
        assert rescan.exit_code == 0, rescan.output
        assert _audio(engine)["Miles Davis - So What"][:2] == ("jazz/so what take 2.wav", "sheet")
    # A row that stops naming its file gives the track back to the scan: the path stays, unpinned.
    unnamed = [line if "So What" not in line else "Ben,Miles Davis - So What,Jazz," for line in GOOD_ROWS]
    result = _run(engine, library, _csv(tmp_path, unnamed))
    assert result.exit_code == 0 and "1 no longer named" in result.stdout
    assert _audio(engine)["Miles Davis - So What"][:2] == ("jazz/so what take 2.wav", None)


def test_dry_run_reads_files_but_writes_nothing(engine, library, tmp_path):
    before = snapshot(engine)
    result = _run(engine, library, _csv(tmp_path, GOOD_ROWS), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "audio files named by the sheet: 2 to link" in result.stdout
    assert snapshot(engine) == before
