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
