"""Datasets: membership chosen by SQL, identical on SQLite and PostgreSQL; views; drop."""

from __future__ import annotations

import pytest
from models_helpers import add_features, add_track, fill_separable, separable_values
from sqlalchemy import inspect, select, text

from music_classifier.db import migrate
from music_classifier.db.engine import make_engine
from music_classifier.db.feature_columns import GTZAN_V1
from music_classifier.db.tables import dataset_members, datasets
from music_classifier.errors import InputError
from music_classifier.models.datasets import (
    HASH_MODULUS,
    HASH_MULTIPLIER,
    DatasetDefinition,
    create_dataset,
    drop_dataset,
    list_datasets,
    select_members,
)


def _spread_fill(conn, seed: int = 0) -> dict[str, list[int]]:
    """Genres of different sizes, with large, sparse ids (exercising the BIGINT order key), a removed
    track, a subgenre-only track, a failed extraction, and a track of another source."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = {"Rock": 9, "Jazz": 7, "Pop": 7, "Blues": 5, "Metal": 2}
    ids: dict[str, list[int]] = {}
    next_id = 2_000_000_000
    for gi, (genre, n) in enumerate(sizes.items()):
        for j in range(n):
            next_id -= 7919 * (gi + 1) + j * 104729
            tid = add_track(conn, key=f"{genre}-{j}", genre=genre, track_id=next_id)
            add_features(conn, tid, "gtzan_csv", separable_values("gtzan_csv", gi, rng))
            ids.setdefault(genre, []).append(tid)
    removed = add_track(conn, key="gone", genre="Rock", track_id=5, removed=True)
    add_features(conn, removed, "gtzan_csv", separable_values("gtzan_csv", 0, rng))
    sub_only = add_track(conn, key="subonly", genre=None, subgenre="Rock", track_id=6)
    add_features(conn, sub_only, "gtzan_csv", separable_values("gtzan_csv", 0, rng))
    failed = add_track(conn, key="failed", genre="Rock", track_id=7)
    add_features(conn, failed, "gtzan_csv", separable_values("gtzan_csv", 0, rng), status="failed")
    sheet = add_track(conn, key="sheet", genre="Rock", source="sheet", track_id=8)
    add_features(conn, sheet, "gtzan_csv", separable_values("gtzan_csv", 0, rng))
    return ids


def _expected(ids: dict[str, list[int]], top: int, k: int, cap: int | None, seed: int) -> set[int]:
    """The rule, computed independently in Python."""
    eligible = {g: t for g, t in ids.items() if len(t) >= k}
    chosen = sorted(eligible, key=lambda g: (-len(eligible[g]), g.lower()))[:top]
    out: set[int] = set()
    for g in chosen:
        order = sorted(eligible[g], key=lambda t: (((t + seed) * HASH_MULTIPLIER) % HASH_MODULUS, t))
        out |= set(order[:cap] if cap else order)
    return out


def test_membership_identical_on_sqlite_and_postgresql(sqlite_engine, pg_schema_url):
    pg = make_engine(pg_schema_url)
    migrate.upgrade(pg)
    try:
        results = {}
        for name, eng in (("sqlite", sqlite_engine), ("postgresql", pg)):
            with eng.begin() as conn:
                ids = _spread_fill(conn)
                for seed in (0, 1, 12345, 2**32 - 1):
                    d = DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=5, max_per_genre=4,
                                          sources=["csv"], seed=seed)
                    results[(name, seed)] = select_members(conn, d)
                    assert {t for t, _ in results[(name, seed)]} == _expected(ids, 3, 5, 4, seed)
                create_dataset(conn, "cross", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=5,
                                                                max_per_genre=4, sources=["csv"], seed=7))
                results[(name, "stored")] = sorted(conn.execute(
                    select(dataset_members.c.track_id, dataset_members.c.genre_id)).all())
        for key in (0, 1, 12345, 2**32 - 1, "stored"):
            assert results[("sqlite", key)] == results[("postgresql", key)], key
        # neighbouring seeds really draw different samples
        assert results[("sqlite", 0)] != results[("sqlite", 1)]
    finally:
        pg.dispose()


def test_top_genres_ties_by_name_and_minimum(engine):
    with engine.begin() as conn:
        ids = _spread_fill(conn)
        # Jazz and Pop tie at 7: with top 2, Rock (9) then Jazz (j < p).
        members = select_members(conn, DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=2,
                                                         sources=["csv"]))
        assert {t for t, _ in members} == set(ids["Rock"]) | set(ids["Jazz"])
        # min 6 keeps Rock, Jazz, Pop; Blues (5) and Metal (2) are dropped even with top 10.
        members = select_members(conn, DatasetDefinition(features="gtzan_csv", top=10, min_per_genre=6,
                                                         sources=["csv"]))
        assert {t for t, _ in members} == set(ids["Rock"]) | set(ids["Jazz"]) | set(ids["Pop"])


def test_excluded_tracks_and_sources(engine):
    with engine.begin() as conn:
        ids = _spread_fill(conn)
        all_sources = select_members(conn, DatasetDefinition(features="gtzan_csv", top=1, min_per_genre=1))
        # removed (5), subgenre-only (6) and failed-extraction (7) tracks never count; sheet (8) does
        assert {t for t, _ in all_sources} == set(ids["Rock"]) | {8}
        csv_only = select_members(conn, DatasetDefinition(features="gtzan_csv", top=1, min_per_genre=1,
                                                          sources=["csv"]))
        assert {t for t, _ in csv_only} == set(ids["Rock"])
        # no spotify features at all -> nothing
        assert select_members(conn, DatasetDefinition(features="spotify", top=3, min_per_genre=1)) == []


def test_create_view_show_list_drop(engine):
    with engine.begin() as conn:
        fill_separable(conn, genres_=["Rock", "Jazz"], per_genre=6)
        summary = create_dataset(conn, "small", DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=3,
                                                                  max_per_genre=4))
    assert summary.genre_counts == {"Jazz": 4, "Rock": 4}
    assert summary.view == "dataset_small"
    with engine.begin() as conn:
        rows = conn.execute(text('SELECT * FROM "dataset_small" ORDER BY track_id')).mappings().all()
        assert len(rows) == 8
        assert list(rows[0].keys())[:5] == ["track_id", "genre", "artist", "title", "source"]
        assert set(GTZAN_V1) <= set(rows[0].keys())
        assert [d.name for d in list_datasets(conn)] == ["small"]
        with pytest.raises(InputError, match="already exists"):
            create_dataset(conn, "small", DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=3))
    with engine.begin() as conn:
        drop_dataset(conn, "small")
    with engine.connect() as conn:
        assert "dataset_small" not in inspect(conn).get_view_names()
        assert conn.execute(select(datasets)).all() == []
        assert conn.execute(select(dataset_members)).all() == []


@pytest.mark.parametrize("name", ["Bad", "1abc", "a-b", "a" * 42, "", "x; drop table tracks"])
def test_names_validated(sqlite_engine, name):
    with sqlite_engine.begin() as conn, pytest.raises(InputError, match="must match"):
        create_dataset(conn, name, DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=1))


def test_empty_selection_writes_nothing(sqlite_engine):
    with pytest.raises(InputError, match="no coarse genre has at least 50"):
        with sqlite_engine.begin() as conn:
            fill_separable(conn, genres_=["Rock", "Jazz"], per_genre=3)
            create_dataset(conn, "empty", DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=50))
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(datasets)).all() == []


@pytest.mark.parametrize("kwargs, message", [
    ({"features": "mfcc"}, "--features"),
    ({"segments": True, "features": "spotify"}, "--segments: spotify features have no segments"),
    ({"features": "librosa,librosa"}, "named twice"),
    ({"top": 0}, "--top"),
    ({"max_per_genre": 0}, "--max-per-genre"),
    ({"sources": ["radio"]}, "--source"),
    ({"seed": -1}, "--seed"),
])
def test_bad_definitions(kwargs, message):
    base = {"features": "gtzan_csv", "top": 2, "min_per_genre": 1}
    with pytest.raises(InputError, match=message):
        DatasetDefinition(**{**base, **kwargs}).validate()


def test_both_feature_sets_need_both_and_are_prefixed(engine, tmp_path):
    import numpy as np

    from music_classifier.models.load_data import load_dataset, load_track_features

    rng = np.random.default_rng(0)
    with engine.begin() as conn:
        both, only_one = [], []
        for gi, genre in enumerate(["Rock", "Jazz"]):
            for j in range(4):
                tid = add_track(conn, key=f"{genre}-{j}", genre=genre, source="file")
                add_features(conn, tid, "librosa", separable_values("librosa", gi, rng))
                if j < 3:  # the fourth track of each genre lacks Spotify features
                    add_features(conn, tid, "spotify", separable_values("spotify", gi, rng))
                    both.append(tid)
                else:
                    only_one.append(tid)
        summary = create_dataset(conn, "mixed", DatasetDefinition(features="both", top=2, min_per_genre=2))
        assert summary.genre_counts == {"Jazz": 3, "Rock": 3}
        frame = load_dataset(conn, "mixed")
        assert sorted(set(frame.track_ids.tolist())) == sorted(both)
        assert len(frame.feature_names) == 83 + 12
        assert "librosa_mfcc1_mean" in frame.feature_names and "spotify_danceability" in frame.feature_names
        # prediction reads the same names straight from the two feature views
        names = ["spotify_tempo", "librosa_tempo"]
        X, tids, segs = load_track_features(conn, summary.definition, names, both[:2] + only_one[:1])
        assert tids.tolist() == sorted(both[:2]) and segs is None
        np.testing.assert_array_equal(X, frame.X[np.isin(frame.track_ids, both[:2])][:, [
            frame.feature_names.index(n) for n in names]])
