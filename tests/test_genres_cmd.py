"""`music-classifier genres` (report) and `genres alias FROM TO`."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, update
from typer.testing import CliRunner

from music_classifier.db.tables import genre_aliases, genres, track_genres, tracks
from music_classifier.errors import InputError
from music_classifier.ingest.genre_report import GenreCount, GenreShortfall, genre_report
from music_classifier.ingest.genres import resolve_genres


def _invoke(engine, *args: str):
    from music_classifier.cli import app

    return CliRunner().invoke(app, ["--db", engine.url.render_as_string(hide_password=False), *args])


def _track(conn, n: int, genre: str, *, audio: bool = False, spotify: bool = False, removed: bool = False,
           subgenre: str | None = None) -> int:
    tid = conn.execute(insert(tracks).values(
        source="sheet", track_key=f"k{n}", artist=f"A{n}", title=f"T{n}", song=f"A{n} - T{n}",
        audio_path=f"f{n}.wav" if audio else None, spotify_id=f"sp{n}" if spotify else None,
        removed_at=func.now() if removed else None,
    ).returning(tracks.c.id)).scalar_one()
    ids = resolve_genres(conn, [genre] + ([subgenre] if subgenre else [])).ids
    conn.execute(insert(track_genres).values(track_id=tid, rank=0, genre_id=ids[genre]))
    if subgenre:
        conn.execute(insert(track_genres).values(track_id=tid, rank=1, genre_id=ids[subgenre]))
    return tid


@pytest.fixture
def seeded(engine):
    with engine.begin() as conn:
        _track(conn, 1, "Rock", audio=True, spotify=True)
        _track(conn, 2, "Rock", audio=True)
        _track(conn, 3, "Rock", subgenre="Jazz")  # a subgenre does not count for Jazz
        _track(conn, 4, "Jazz", spotify=True)
        _track(conn, 5, "Pop", audio=True)
        _track(conn, 6, "Pop", audio=True, removed=True)  # soft-deleted: not counted
        _track(conn, 7, "Alt_Country")
    return engine


def test_counts_live_tracks_per_coarse_genre(seeded):
    with seeded.connect() as conn:
        report = genre_report(conn, top=2, min_tracks=3)
    assert report.counts == [
        GenreCount("Rock", 3, 2, 1),
        GenreCount("Alt Country", 1, 0, 0),
        GenreCount("Jazz", 1, 0, 1),
        GenreCount("Pop", 1, 1, 0),
    ]
    assert report.shortfalls == [GenreShortfall("Rock", 3, 0, 1), GenreShortfall("Alt Country", 1, 2, 3)]
    with seeded.connect() as conn:
        assert genre_report(conn, top=1, min_tracks=2).shortfalls == []
        with pytest.raises(InputError):
            genre_report(conn, top=0)


def test_bare_genres_prints_the_report(seeded):
    result = _invoke(seeded, "genres", "--top", "3", "--min", "3")
    assert result.exit_code == 0, result.output
    assert "live tracks per coarse genre" in result.output
    assert "top 3 genres below 3 tracks" in result.output
    for name in ("Rock", "Jazz", "Pop", "Alt Country"):
        assert name in result.output


def test_bad_top_is_one_line_error(seeded):
    result = _invoke(seeded, "genres", "--top", "0")
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_alias_moves_tracks_and_prints_mapping(seeded):
    # Country does not exist yet: creating it takes --new-genre (without it, a typo of a target would be created).
    result = _invoke(seeded, "genres", "alias", "Alt_Country", "Country", "--new-genre")
    assert result.exit_code == 0, result.output
    assert "'Alt_Country' (key 'altcountry') -> 'Country' (new genre); merged genre 'Alt Country' into 'Country': " \
           "1 track, 0 proposals, no dataset" in result.output
    with seeded.connect() as conn:
        target = conn.execute(select(genres.c.id).where(genres.c.name == "country")).scalar_one()
        assert conn.execute(select(genre_aliases.c.genre_id).where(genre_aliases.c.alias == "altcountry")).scalar() \
            == target
        report = genre_report(conn, top=10, min_tracks=1)
    assert GenreCount("Country", 1, 0, 0) in report.counts
    assert all(c.genre != "Alt Country" for c in report.counts)

    # a later source spelling it the old way lands in the target genre
    with seeded.begin() as conn:
        assert resolve_genres(conn, ["ALT-COUNTRY"]).ids["ALT-COUNTRY"] == target


def test_alias_with_bad_name_is_one_line_error(seeded):
    result = _invoke(seeded, "genres", "alias", "rock'); DROP TABLE tracks;--", "Rock")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tracks)).scalar() == 7


def test_report_without_tracks(engine):
    with engine.begin() as conn:
        conn.execute(update(tracks).values(removed_at=func.now()))
    result = _invoke(engine, "genres")
    assert result.exit_code == 0, result.output
    assert "no live tracks" in result.output
