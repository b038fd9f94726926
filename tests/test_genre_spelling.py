"""Near-miss genre spellings (issue 8): a typo of an existing genre is caught, a real genre is not."""

from __future__ import annotations

import pytest

from music_classifier.ingest.genres import near_miss, near_misses, resolve_genres


@pytest.fixture
def known(engine):
    with engine.begin() as conn:
        resolve_genres(conn, ["Blues", "Jazz", "Metal", "Funk", "Rock and Roll", "Hip-Hop"])
    return engine


@pytest.mark.parametrize(("spelling", "existing"), [
    ("Bleus", "Blues"), ("Jaz", "Jazz"), ("Metall", "Metal"), ("Clasical", "Classical"),
    ("BLEUS", "Blues"), ("jaz", "Jazz"), ("metall ", "Metal"), ("Rock n Roll", "Rock and Roll"),
    ("Hip Hopp", "Hip-Hop"), ("Funck", "Funk"), ("Clasic", "Classical"),  # near the default alias "classic"
])
def test_typos_of_existing_genres_are_near_misses(known, spelling, existing):
    with known.connect() as conn:
        miss = near_miss(conn, spelling)
    assert miss is not None and miss.existing == existing and miss.spelling == spelling
    assert miss.fix_command.startswith("music-classifier genres alias ")
    assert miss.fix_command.endswith(f" {existing}" if " " not in existing else f" '{existing}'")


@pytest.mark.parametrize("spelling", [
    "Blues", "blues", "hip hop", "Classic",  # known genres and aliases are not new
    "Punk", "Trap", "Pop", "Folk",  # real genres one edit away from Funk, Rap (alias), ...
    "Reggae", "Electro Swing", "Country", "Jam",  # nothing near
])
def test_known_and_distinct_genres_are_not_near_misses(known, spelling):
    with known.connect() as conn:
        assert near_miss(conn, spelling) is None


def test_a_batch_also_catches_a_rare_spelling_of_a_common_new_genre(engine):
    with engine.connect() as conn:
        found = near_misses(conn, {"Reggae": 12, "Regae": 1, "Jazz": 3, "Jaz": 1, "jaz": 1})
    assert {s: (m.existing, m.distance) for s, m in found.items()} == {
        "Regae": ("Reggae", 1), "Jaz": ("Jazz", 1), "jaz": ("Jazz", 1)}


def test_near_misses_write_nothing(known):
    from sqlalchemy import func, select

    from music_classifier.db.tables import genres

    with known.connect() as conn:
        before = conn.execute(select(func.count()).select_from(genres)).scalar()
        near_misses(conn, ["Bleus", "Brand New Genre", "bad\x00name"])
        assert conn.execute(select(func.count()).select_from(genres)).scalar() == before


# --------------------------------------------------------------------------- sheet sync

SHEET = ["student,song,coarse_genre",
         "Ana,Muddy Waters - Hoochie Coochie Man,Blues",
         "Ben,B.B. King - The Thrill Is Gone,Blues",
         "Cy,Miles Davis - So What,Jazz",
         "Dee,John Lee Hooker - Boom Boom,Bleus",
         "Eve,Iron Maiden - The Trooper,Metal",
         "Fay,Metallica - One,Metall",
         "Gus,Slayer - Angel of Death,metall"]


def _sync(engine, tmp_path, lines, *args):
    from typer.testing import CliRunner

    from music_classifier.cli import app

    path = tmp_path / "songs.csv"
    path.write_text("\n".join(lines) + "\n")
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(app, ["--db", url, "sheet", "sync", "--csv", str(path), *args],
                              env={"GOOGLE_APPLICATION_CREDENTIALS": None})


def _state(engine):
    from sqlalchemy import select

    from music_classifier.db.tables import genre_aliases, genres, proposals, students, track_genres, tracks

    with engine.connect() as conn:
        return {t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
                for t in (students, tracks, proposals, genres, genre_aliases, track_genres)}


def test_sheet_sync_reports_typo_genres_with_rows_and_fix(engine, tmp_path):
    result = _sync(engine, tmp_path, SHEET)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: row 5: coarse genre 'Bleus' is new and close to 'Blues'; if it is a typo, run: "
        "music-classifier genres alias Bleus Blues",
        "warning: rows 7, 8: coarse genre 'Metall' is new and close to 'Metal'; if it is a typo, run: "
        "music-classifier genres alias Metall Metal",
    ]
    # The suggested command fixes it: the tracks move, and a re-sync no longer warns.
    from typer.testing import CliRunner

    from music_classifier.cli import app
    from music_classifier.ingest.genre_report import genre_counts

    url = engine.url.render_as_string(hide_password=False)
    for fix in ("Bleus Blues", "Metall Metal"):
        assert CliRunner().invoke(app, ["--db", url, "genres", "alias", *fix.split()]).exit_code == 0
    with engine.connect() as conn:
        assert {c.genre: c.tracks for c in genre_counts(conn)} == {"Blues": 3, "Metal": 3, "Jazz": 1}
    again = _sync(engine, tmp_path, SHEET)
    assert again.exit_code == 0 and "warning" not in again.stderr


def test_sheet_sync_strict_refuses_typo_genres_and_writes_nothing(engine, tmp_path):
    assert _sync(engine, tmp_path, SHEET[:4]).exit_code == 0  # Blues and Jazz exist now
    before = _state(engine)
    result = _sync(engine, tmp_path, [*SHEET, "Hal,Weather Report - Birdland,Jaz"], "--strict")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: --strict: row 5: coarse genre 'Bleus' is new and close to 'Blues'; if it is a typo, "
                     "run: music-classifier genres alias Bleus Blues (and 2 more new genre(s) like it); "
                     "nothing was written"]
    assert _state(engine) == before
    # A real new genre is not a typo: --strict lets it through.
    ok = _sync(engine, tmp_path, [*SHEET[:4], "Ivy,Bob Marley - Jamming,Reggae", "Jo,Ramones - Blitzkrieg Bop,Punk"],
               "--strict")
    assert ok.exit_code == 0, ok.output


# --------------------------------------------------------------------------- audio scan --genre


def _scan(engine, library, *args):
    from typer.testing import CliRunner

    from music_classifier.cli import app

    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(app, ["--db", url, "--library", str(library), "audio", "scan", *args])


def test_audio_scan_refuses_a_typo_genre_unless_new_genre(known, tmp_path):
    from test_sheet_files import write_wav

    library = tmp_path / "lib"
    write_wav(library / "new" / "track one.wav", seed=1)
    write_wav(library / "new" / "track two.wav", seed=2)
    before = _state(known)
    result = _scan(known, library, "new", "--add-unmatched", "--genre", "Jaz")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: --genre 'Jaz' is new and close to the existing genre 'Jazz': use --genre Jazz, or pass "
                     "--new-genre to create 'Jaz'; nothing was written"]
    assert _state(known) == before
    # The existing spelling, or an alias of it, goes through; so does the typo with --new-genre.
    assert _scan(known, library, "new", "--add-unmatched", "--genre", "jazz").exit_code == 0
    with known.begin() as conn:
        conn.exec_driver_sql("DELETE FROM track_genres")
        conn.exec_driver_sql("DELETE FROM tracks")
    created = _scan(known, library, "new", "--add-unmatched", "--genre", "Jaz", "--new-genre")
    assert created.exit_code == 0, created.output
    from music_classifier.ingest.genre_report import genre_counts

    with known.connect() as conn:
        assert [(c.genre, c.tracks) for c in genre_counts(conn)] == [("Jaz", 2)]
    misuse = _scan(known, library, "new", "--new-genre")
    assert misuse.exit_code == 1 and "--new-genre only applies with --add-unmatched --genre G" in misuse.stderr
