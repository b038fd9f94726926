"""Similar tracks: cosine nearest neighbours in a standardised feature space."""

from __future__ import annotations

import numpy as np
import pytest
from models_helpers import add_features, add_track, fill_separable
from sqlalchemy import insert
from typer.testing import CliRunner

from music_classifier.db.feature_columns import GTZAN_V1
from music_classifier.db.tables import proposals, students
from music_classifier.errors import InputError
from music_classifier.models.similar import feature_space, nearest_to_track, neighbours_of

GENRES = ["Rock", "Jazz", "Metal", "Pop"]


def test_neighbours_share_the_genre_and_scale_does_not_dominate(engine):
    with engine.begin() as conn:
        ids = fill_separable(conn, genres_=GENRES, per_genre=6)
        # A feature in huge units that is pure noise: without standardising it would decide everything.
        sid = conn.execute(insert(students).values(name="ana").returning(students.c.id)).scalar_one()
        conn.execute(insert(proposals).values(student_id=sid, track_id=ids["Jazz"][1], sheet_row=2))
        res = nearest_to_track(conn, ids["Jazz"][0], k=5, features="gtzan_csv")
    assert [n.genre for n in res.neighbours] == ["Jazz"] * 5
    assert ids["Jazz"][0] not in [n.track_id for n in res.neighbours]
    sims = [n.similarity for n in res.neighbours]
    assert sims == sorted(sims, reverse=True) and all(-1.0 <= s <= 1.0 for s in sims)
    assert {n.student for n in res.neighbours if n.track_id == ids["Jazz"][1]} == {"ana"}
    assert res.n_candidates == 24 and res.n_features == len(GTZAN_V1)


def test_a_feature_in_huge_units_does_not_decide(sqlite_engine):
    rng = np.random.default_rng(0)
    with sqlite_engine.begin() as conn:
        first = {}
        for gi, genre in enumerate(GENRES):
            for j in range(5):
                values = {n: (3.0 if k % 4 == gi else 0.0) + float(rng.normal()) for k, n in enumerate(GTZAN_V1)}
                values[GTZAN_V1[1]] = float(rng.normal(0, 1e6))  # pure noise, in huge units
                tid = add_track(conn, key=f"{genre}{j}", genre=genre)
                add_features(conn, tid, "gtzan_csv", values)
                first.setdefault(genre, tid)
        space = feature_space(conn, "gtzan_csv")
        res = nearest_to_track(conn, first["Jazz"], k=4, features="gtzan_csv")
    np.testing.assert_allclose(np.linalg.norm(space.Z, axis=1), 1.0)
    assert [n.genre for n in res.neighbours] == ["Jazz"] * 4


def test_neighbours_of_tracks_within_a_set(sqlite_engine):
    with sqlite_engine.begin() as conn:
        ids = fill_separable(conn, genres_=GENRES, per_genre=5)
        members = [t for g in GENRES for t in ids[g]]
        out = neighbours_of(conn, [ids["Pop"][0], ids["Rock"][2]], within=members, features="gtzan_csv", k=3)
    assert [n.genre for n in out[ids["Pop"][0]]] == ["Pop"] * 3
    assert len(out[ids["Rock"][2]]) == 3


def test_unknown_track_and_bad_features_are_input_errors(sqlite_engine):
    with sqlite_engine.begin() as conn:
        fill_separable(conn, genres_=GENRES, per_genre=3)
        with pytest.raises(InputError, match="track 999: no gtzan_csv features"):
            nearest_to_track(conn, 999, features="gtzan_csv")
        with pytest.raises(InputError, match="--features 'nope'"):
            nearest_to_track(conn, 1, features="nope")
        with pytest.raises(InputError, match="0 stored track"):
            nearest_to_track(conn, 1, features="spotify")


def test_similar_command(sqlite_engine, tmp_path):
    from music_classifier.cli import app

    with sqlite_engine.begin() as conn:
        ids = fill_separable(conn, genres_=GENRES, per_genre=4)
    db = ["--db", str(sqlite_engine.url)]
    res = CliRunner().invoke(app, [*db, "similar", str(ids["Metal"][0]), "--k", "3", "--features", "gtzan_csv"])
    assert res.exit_code == 0, res.output
    assert res.output.count("Metal song") == 3 + 1  # the query line and three neighbours
    res = CliRunner().invoke(app, [*db, "similar", str(tmp_path / "missing.wav")])
    assert res.exit_code == 1 and "file not found" in res.output
