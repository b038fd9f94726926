"""Sheet rows -> students, tracks, proposals, genres: on SQLite and PostgreSQL."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from music_classifier.db.tables import MAX_TEXT, genres, proposals, students, track_genres, tracks
from music_classifier.errors import InputError
from music_classifier.ingest.keys import track_key
from music_classifier.ingest.sheet_source import build_table
from music_classifier.ingest.sheet_sync import parse_for_sync, parse_rows, sync_sheet

HEADER = ["Student", "Song", "Coarse_Genre", "genre 1", "GENRE2", "genre_3"]
BASE = [
    ["Alice", "Radiohead - Creep", "Indi_Rock", "Alt_Rock", "", ""],
    ["Bob", "Radiohead - Creep", "Indie Rock", "", "", ""],  # same song, second student
    ["Bob", "Daft Punk - One More Time", "Electronic", "House", "French House", ""],
    ["Carla", "Kendrick Lamar - HUMBLE.", "Hip-Hop", "", "", ""],
    ["Dan", "Miles Davis - So What", "Jazz", "Modal Jazz", "", ""],
    ["Eve", "Bach - Cello Suite No. 1", "Classic", "Baroque", "", ""],
]


def parsed(rows, header=HEADER):
    return parse_rows(build_table([header, *rows], "test sheet"))


def sync(engine, rows, **kwargs):
    """As `sheet sync` runs it: stored keys reused, one transaction."""
    with engine.begin() as conn:
        return sync_sheet(conn, parse_for_sync(conn, build_table([HEADER, *rows], "test sheet")), **kwargs)


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of every table the sync touches, timestamps included."""
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)))
                for t in (students, tracks, proposals, genres, track_genres)}


@contextmanager
def statements(engine):
    seen: list[str] = []

    def record(conn, cursor, statement, params, context, executemany):  # noqa: ANN001
        seen.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def genre_of(engine, song_title: str, rank: int = 0) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(genres.c.display_name).select_from(track_genres.join(genres).join(tracks))
            .where(tracks.c.title == song_title, track_genres.c.rank == rank)).scalar()


def test_first_sync_and_a_song_proposed_twice(engine):
    report = sync(engine, BASE)
    assert (report.added, report.updated, report.removed, report.unchanged) == (5, 0, 0, 0)
    assert report.students_added == 5 and report.proposals_added == 6 and not report.skipped_rows
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tracks)).scalar() == 5
        creep = conn.execute(select(tracks).where(tracks.c.title == "Creep")).one()
        assert (creep.artist, creep.song, creep.source) == ("Radiohead", "Radiohead - Creep", "sheet")
        assert creep.track_key == track_key("Radiohead", "Creep")
        rows = conn.execute(select(students.c.name, proposals.c.sheet_row).join(students)
                            .where(proposals.c.track_id == creep.id).order_by(proposals.c.sheet_row)).all()
        assert [tuple(r) for r in rows] == [("Alice", 2), ("Bob", 3)]
    assert genre_of(engine, "One More Time", 2) == "French House"


def test_genre_normalisation_and_aliases(engine):
    rows = [["S1", "A - One", "Hip-Hop"], ["S2", "B - Two", "hip hop"], ["S3", "C - Three", "HIPHOP"],
            ["S4", "D - Four", "Hip_Hop"], ["S5", "E - Five", "Indi_Rock"], ["S6", "F - Six", "Alt_Rock"],
            ["S7", "G - Seven", "Classic"]]
    with engine.begin() as conn:
        report = sync_sheet(conn, parsed(rows, header=["student", "song", "coarse genre"]))
    assert report.genre_mapping_applied == {"hip hop": "Hip-Hop", "HIPHOP": "Hip-Hop", "Hip_Hop": "Hip-Hop",
                                            "Indi_Rock": "Indie Rock", "Alt_Rock": "Alternative Rock",
                                            "Classic": "Classical"}
    assert report.genres_created == []
    with engine.connect() as conn:
        used = conn.execute(select(genres.c.display_name, func.count()).join(track_genres)
                            .group_by(genres.c.display_name)).all()
    assert dict(used) == {"Hip-Hop": 4, "Indie Rock": 1, "Alternative Rock": 1, "Classical": 1}


def test_resync_without_change_writes_nothing(engine):
    sync(engine, BASE)
    before = snapshot(engine)
    with statements(engine) as seen:
        report = sync(engine, BASE)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 5)
    assert not report.changed
    assert not [s for s in seen if s in ("INSERT", "UPDATE", "DELETE", "COPY")], seen
    assert snapshot(engine) == before  # updated_at included


def test_update_touches_only_the_changed_track(engine):
    sync(engine, BASE)
    before = {r.title: r.updated_at for r in snapshot_rows(engine)}
    changed = [row[:] for row in BASE]
    changed[4][2] = "Cool Jazz"  # Dan's coarse genre
    changed[3][1] = "Kendrick Lamar - HUMBLE. "  # trailing space: same text after cleaning
    changed[5][3] = ""  # Eve drops her subgenre
    report = sync(engine, changed)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 2, 0, 3)
    after = {r.title: r.updated_at for r in snapshot_rows(engine)}
    assert after["So What"] != before["So What"] and after["Cello Suite No. 1"] != before["Cello Suite No. 1"]
    assert after["Creep"] == before["Creep"] and after["HUMBLE."] == before["HUMBLE."]
    assert genre_of(engine, "So What") == "Cool Jazz"
    assert genre_of(engine, "Cello Suite No. 1", 1) is None


def snapshot_rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(tracks)).all()


def test_removed_rows_are_soft_deleted_and_revived(engine):
    sync(engine, BASE)
    report = sync(engine, BASE[:-1])  # Eve's row is gone: 1 of 5 tracks = 20%, allowed
    assert report.removed == 1 and report.proposals_removed == 1
    with engine.connect() as conn:
        bach = conn.execute(select(tracks).where(tracks.c.title == "Cello Suite No. 1")).one()
        assert bach.removed_at is not None
        kept = conn.execute(select(func.count()).select_from(track_genres)
                            .where(track_genres.c.track_id == bach.id)).scalar()
        assert kept == 2  # genres (and features) stay with the soft-deleted track
    report = sync(engine, BASE)
    assert report.revived == 1 and report.added == 0 and report.proposals_added == 1
    with engine.connect() as conn:
        again = conn.execute(select(tracks).where(tracks.c.title == "Cello Suite No. 1")).one()
    assert again.id == bach.id and again.removed_at is None


def test_large_removal_aborts_unless_allowed(engine):
    sync(engine, BASE)
    before = snapshot(engine)
    with pytest.raises(InputError, match=r"remove 3 of 5 live sheet tracks.*--allow-removals"):
        sync(engine, BASE[:3])
    assert snapshot(engine) == before
    report = sync(engine, BASE[:3], allow_removals=True)
    assert report.removed == 3
    with engine.connect() as conn:
        live = conn.execute(select(func.count()).select_from(tracks).where(tracks.c.removed_at.is_(None))).scalar()
    assert live == 2


def test_strict_aborts_on_any_bad_row(engine):
    with pytest.raises(InputError, match=r"--strict: 1 bad row\(s\), first row 3: empty song"):
        sync(engine, [BASE[0], ["Bob", "", "Rock"] + [""] * 3], strict=True)
    assert all(not rows for name, rows in snapshot(engine).items() if name != "genres")


def test_dry_run_reports_and_writes_nothing(engine):
    before = snapshot(engine)
    rows = [*BASE, ["Zoe", "Björk - Army of Me", "Trip_Hop", "", "", ""]]
    report = sync(engine, rows, dry_run=True)
    assert (report.added, report.students_added, report.proposals_added) == (6, 6, 7)
    assert "Trip Hop" in report.genres_created and report.dry_run
    assert snapshot(engine) == before
    sync(engine, BASE)
    report = sync(engine, rows, dry_run=True)
    assert (report.added, report.unchanged) == (1, 5)


def test_bad_rows_are_reported_with_sheet_row_numbers(engine):
    rows = [
        ["Alice", "Radiohead - Creep", "Rock", "", "", ""],  # row 2: fine
        ["Bob", "", "Rock", "", "", ""],  # 3
        ["Carla", "No separator here", "Rock", "", "", ""],  # 4
        ["Dan", "A - B", "", "", "", ""],  # 5
        ["Eve", "A - " + "x" * (MAX_TEXT + 1), "Rock", "", "", ""],  # 6
        ["Fay", "A - Bell\x07", "Rock", "", "", ""],  # 7
        ["Gus", "X - Y", "rock'); DROP TABLE tracks;--", "", "", ""],  # 8
        ["", "", "", "", "", ""],  # 9: blank, ignored
        ["Alice", "radiohead - creep", "Rock", "", "", ""],  # 10: duplicate of row 2
        ["Robert'); DROP TABLE students;--", "Q - R", "Rock", "", "", ""],  # 11: a strange but valid name
    ]
    report = sync(engine, rows)
    assert [str(b) for b in report.skipped_rows] == [
        "row 3: empty song",
        "row 4: song 'No separator here' is not \"Artist - Title\"",
        "row 5: blank genre",
        "row 6: artist or title is longer than 300 characters",
        "row 7: control character in song",
        "row 8: coarse_genre: genre \"rock'); DROP TABLE tracks;--\" has characters outside letters, digits, "
        "space and &'-_/.+",
        "row 10: duplicate of row 2 (same student and song)",
    ]
    assert report.added == 2
    with engine.connect() as conn:  # the tables survived and the name is stored verbatim, as data
        names = set(conn.execute(select(students.c.name)).scalars())
        assert names == {"Alice", "Robert'); DROP TABLE students;--"}
        assert conn.execute(select(func.count()).select_from(tracks)).scalar() == 2


def test_artist_and_title_columns(engine):
    rows = parsed([["Alice", "Radiohead", "Creep", "Rock"], ["Bob", "", "Song", "Rock"]],
                  header=["STUDENT", "Artist", "Title", "coarse genre"])
    assert [str(b) for b in rows.bad_rows] == ["row 3: empty artist"]
    with engine.begin() as conn:
        sync_sheet(conn, rows)
    with engine.connect() as conn:
        song = conn.execute(select(tracks.c.song)).scalar()
    assert song == "Radiohead - Creep"


@pytest.mark.parametrize("header, missing", [
    (["student", "song"], "'coarse_genre'"),
    (["student", "coarse_genre"], "'song'"),
    (["song", "coarse_genre"], "'student'"),
    (["student", "artist", "coarse_genre"], "'title'"),
])
def test_missing_column_names_it(header, missing):
    with pytest.raises(InputError, match=f"test sheet: missing column {missing}"):
        parsed([["x"] * len(header)], header=header)


def test_row_keys_match_track_key():
    tricky = [("The Beatles", "Let It Be - Remastered 2009"), ("Beyoncé feat. Jay-Z", "Crazy in Love (Live)"),
              ("AC/DC", "T.N.T."), ("Simon & Garfunkel", "The Boxer")]
    sheet = parsed([[f"s{i}", f"{a} - {t}", "Rock", "", "", ""] for i, (a, t) in enumerate(tricky)])
    assert [r.key for r in sheet.rows] == [track_key(a, t) for a, t in tricky]


def test_bulk_sync_of_thousands_of_rows(engine):
    """Enough rows for the bulk paths (COPY on PostgreSQL, chunked executemany)."""
    rows = [[f"Student {i % 97}", f"Artist {i % 700} - Song {i}", f"Genre {i % 13}", f"Sub {i % 29}", "", ""]
            for i in range(6_000)]
    rows += [[f"Student {i % 89 + 1}", f"Artist {i % 700} - Song {i}", "Ignored", "", "", ""] for i in range(1_000)]
    report = sync(engine, rows)
    assert (report.added, report.proposals_added, report.students_added) == (6_000, 7_000, 97)
    before = snapshot(engine)
    with statements(engine) as seen:
        assert sync(engine, rows).unchanged == 6_000
    assert not [s for s in seen if s in ("INSERT", "UPDATE", "DELETE", "COPY")]
    assert snapshot(engine) == before
    assert genre_of(engine, "Song 14", 1) == "Sub 14"


def test_bad_genre_names_its_column_each_time():
    sheet = parsed([["A", "X - Y", "Rock;", "", "", ""], ["B", "X - Z", "Rock", "Rock;", "", ""],
                    ["C", "X - W", "Rock", "", "", "a" * 65]])
    assert [(b.row_number, b.reason.split(":")[0]) for b in sheet.bad_rows] == [
        (2, "coarse_genre"), (3, "genre1"), (4, "genre3")]
    assert "longer than 64 characters" in sheet.bad_rows[2].reason


def test_bulk_foreign_key_check_keeps_every_constraint(engine, monkeypatch):
    """On PostgreSQL a large load re-adds the foreign keys around COPY (one-pass check): afterwards
    the same constraints exist, are enforced, and every row is stored."""
    from sqlalchemy import insert, inspect
    from sqlalchemy.exc import IntegrityError

    import music_classifier.ingest.sheet_sync as sheet_sync

    monkeypatch.setattr(sheet_sync, "FK_BULK_CHECK_MIN_ROWS", 10)
    monkeypatch.setattr(sheet_sync, "COPY_THRESHOLD", 10)

    def foreign_keys() -> dict[str, list]:
        return {t: sorted((fk["name"], fk["referred_table"], fk["options"].get("ondelete")) for fk in
                          inspect(engine).get_foreign_keys(t)) for t in ("track_genres", "proposals")}

    before = foreign_keys()
    assert before["track_genres"] and before["proposals"]
    rows = [[f"Student {i % 7}", f"Artist {i} - Song {i}", "Rock", "Jazz" if i % 2 else "", "", ""]
            for i in range(60)]
    with statements(engine) as seen:
        report = sync(engine, rows)
    assert (report.added, report.proposals_added) == (60, 60)
    assert seen.count("ALTER") == (4 if engine.dialect.name == "postgresql" else 0)  # drop + add, two tables
    assert foreign_keys() == before
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(track_genres)).scalar() == 90
        with pytest.raises(IntegrityError):
            conn.execute(insert(track_genres).values(track_id=10**9, rank=0, genre_id=1))


def test_mass_relabel_aborts_unless_allowed(engine):
    """Swapped coarse_genre/genre1 headers would re-genre most tracks: stop, write nothing, show some changes."""
    sync(engine, BASE)
    before = snapshot(engine)
    swapped = ["Student", "Song", "genre 1", "Coarse_Genre", "GENRE2", "genre_3"]

    def sync_swapped(**kwargs):
        with engine.begin() as conn:
            return sync_sheet(conn, parse_for_sync(conn, build_table([swapped, *BASE], "swapped")), **kwargs)

    # Kendrick's row has no genre 1, so it becomes a bad row: 1 of 5 removed (allowed); 4 of 5 re-genred (not).
    with pytest.raises(InputError, match=r"^this sync would change the coarse genre of 4 of 5 live sheet tracks "
                                         r"\(more than 20%.*e\.g\. row 2 'Radiohead - Creep': "
                                         r"Indie Rock -> Alternative Rock; "
                                         r"row 4 'Daft Punk - One More Time': Electronic -> House; .*"
                                         r"nothing was written\. Pass --allow-relabel"):
        sync_swapped()
    assert snapshot(engine) == before
    with pytest.raises(InputError, match="--allow-relabel"):
        sync_swapped(dry_run=True)
    report = sync_swapped(allow_relabel=True)
    assert report.removed == 1
    assert genre_of(engine, "Creep") == "Alternative Rock" and genre_of(engine, "So What") == "Modal Jazz"


def test_relabelling_up_to_a_fifth_needs_no_flag(engine):
    sync(engine, BASE)
    one_changed = [list(row) for row in BASE]
    one_changed[4][2] = "Fusion"  # Miles Davis: 1 of 5 tracks = 20%, allowed
    report = sync(engine, one_changed)
    assert report.updated == 1 and genre_of(engine, "So What") == "Fusion"
