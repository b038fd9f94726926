"""Migration 0009_wide_features on a populated database (both kinds): every value carried into the wide
tables and back, the views unchanged, datasets and models still load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from music_classifier.db import migrate
from music_classifier.db.engine import make_engine
from music_classifier.db.feature_columns import GTZAN_V1, LIBROSA_V1, SPOTIFY_V1
from music_classifier.errors import InputError
from music_classifier.models.datasets import DatasetDefinition, create_dataset
from music_classifier.models.load_data import load_dataset
from music_classifier.models.predict import predict_tracks
from music_classifier.models.train import TrainOptions, train_model

REVISION = "0009_wide_features"
GENRES = ["Rock", "Jazz", "Pop"]
VIEWS = ["librosa_features", "librosa_segment_features", "spotify_features", "gtzan_features", "musicnn_features"]


def _before(engine) -> str:
    return ScriptDirectory.from_config(migrate.alembic_config(engine)).get_revision(REVISION).down_revision


def _long(conn, extraction_id: int, values: dict[str, float | None]) -> None:
    conn.execute(text("INSERT INTO features (extraction_id, name, value) VALUES (:e, :n, :v)"),
                 [{"e": extraction_id, "n": n, "v": v} for n, v in values.items()])


def _extraction(conn, track_id: int, extractor: str, status: str = "done") -> int:
    return conn.execute(text("INSERT INTO extractions (track_id, extractor, version, params_hash, status) "
                             "VALUES (:t, :x, '1', 'p', :s) RETURNING id"),
                        {"t": track_id, "x": extractor, "s": status}).scalar_one()


def _populate(conn) -> None:
    """The long tables as the code before 0009 wrote them: GTZAN rows, librosa with segments (and an older
    extraction the views must skip), Spotify with a field missing, a failed extraction's leftovers."""
    rng = np.random.default_rng(7)
    for gi, genre in enumerate(GENRES):
        gid = conn.execute(text("INSERT INTO genres (name, display_name) VALUES (:n, :d) RETURNING id"),
                           {"n": genre.lower(), "d": genre}).scalar_one()
        for j in range(10):
            tid = conn.execute(text(
                "INSERT INTO tracks (source, track_key, artist, title, song) VALUES ('csv', :k, :a, :t, :s) "
                "RETURNING id"), {"k": f"{genre}{j}", "a": f"artist {genre} {j}", "t": f"song {j}",
                                  "s": f"artist {genre} {j} - song {j}"}).scalar_one()
            conn.execute(text("INSERT INTO track_genres (track_id, rank, genre_id) VALUES (:t, 0, :g)"),
                         {"t": tid, "g": gid})
            centre = np.where(np.arange(len(GTZAN_V1)) % 3 == gi, 5.0, 0.0)
            _long(conn, _extraction(conn, tid, "gtzan_csv"),
                  dict(zip(GTZAN_V1, (centre + rng.normal(size=len(GTZAN_V1))).tolist(), strict=True)))
            if j < 4:
                old = _extraction(conn, tid, "librosa")
                _long(conn, old, dict.fromkeys(LIBROSA_V1, -1.0))
                conn.execute(text("UPDATE extractions SET params_hash = 'old' WHERE id = :e"), {"e": old})
                eid = _extraction(conn, tid, "librosa")
                _long(conn, eid, dict(zip(LIBROSA_V1, rng.normal(size=len(LIBROSA_V1)).tolist(), strict=True)))
                conn.execute(text("INSERT INTO segment_features (extraction_id, segment, start_s, name, value) "
                                  "VALUES (:e, :s, :st, :n, :v)"),
                             [{"e": eid, "s": s, "st": 3.0 * s, "n": n, "v": float(rng.normal()) + gi * 4}
                              for s in range(3) for n in LIBROSA_V1])
            if j < 2:
                values = dict(zip(SPOTIFY_V1, rng.random(len(SPOTIFY_V1)).tolist(), strict=True))
                del values["duration_ms"]  # ReccoBeats has none: no row, NULL in the view
                _long(conn, _extraction(conn, tid, "spotify"), values)
            if j == 9:
                _long(conn, _extraction(conn, tid, "librosa", status="failed"), {"tempo": 99.0})


def _snapshot(conn) -> dict[str, list[tuple]]:
    out = {"features": sorted(tuple(r) for r in conn.execute(text(
               "SELECT extraction_id, name, value FROM features WHERE value IS NOT NULL"))),
           "segment_features": sorted(tuple(r) for r in conn.execute(text(
               "SELECT extraction_id, segment, start_s, name, value FROM segment_features")))}
    for view in VIEWS:
        order = "track_id, segment" if "segment" in view else "track_id"
        out[view] = [tuple(r) for r in conn.execute(text(f"SELECT * FROM {view} ORDER BY {order}"))]
    return out


@pytest.fixture
def one_candidate(tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"rf": {"n_estimators": [20]}}))
    return path


def test_0009_carries_every_value_and_datasets_and_models_still_load(db_url, tmp_path, one_candidate):
    engine = make_engine(db_url)
    before_rev = _before(engine)
    migrate.upgrade(engine, before_rev)
    with engine.begin() as conn:
        _populate(conn)
        create_dataset(conn, "gz", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=5))
        create_dataset(conn, "segs", DatasetDefinition(features="librosa", top=3, min_per_genre=4, segments=True))
    with engine.begin() as conn:
        model_id = train_model(conn, "gz", TrainOptions(kind="rf", grid=one_candidate, cv=3, seed=1),
                               models_path=tmp_path / "models").model_id
    with engine.connect() as conn:
        before = _snapshot(conn)
        frames = {n: load_dataset(conn, n) for n in ("gz", "segs")}
    assert len(before["features"]) == 30 * 57 + 24 * 83 + 6 * 11 + 3
    assert len(before["librosa_features"]) == 12 and len(before["librosa_segment_features"]) == 36

    migrate.upgrade(engine)
    with engine.connect() as conn:
        after = _snapshot(conn)
        kinds = set(conn.execute(text("SELECT DISTINCT e.extractor FROM features f "
                                      "JOIN extractions e ON e.id = f.extraction_id")).scalars())
        assert conn.execute(text("SELECT COUNT(*) FROM librosa_values")).scalar_one() == 12 + 12 + 3
        assert conn.execute(text("SELECT COUNT(*) FROM gtzan_csv_values")).scalar_one() == 30
        for name, frame in frames.items():
            again = load_dataset(conn, name)
            assert np.array_equal(again.X, frame.X, equal_nan=True) and again.feature_names == frame.feature_names
            assert np.array_equal(again.track_ids, frame.track_ids) and list(again.y) == list(frame.y)
    assert after == before  # every value, the long shape and every view, row for row
    assert kinds == {"gtzan_csv", "librosa", "spotify"}
    with engine.begin() as conn:
        predictions = predict_tracks(conn, model_id, sorted(frames["gz"].track_ids.tolist())[:6],
                                     settings=None)
    assert len(predictions) == 6

    migrate.downgrade(engine, before_rev)  # and back: the long tables hold the same rows again
    with engine.connect() as conn:
        assert _snapshot(conn) == before
    migrate.upgrade(engine)
    engine.dispose()


def test_0009_refuses_values_no_extractor_declares(db_url):
    engine = make_engine(db_url)
    migrate.upgrade(engine, _before(engine))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tracks (source, track_key, artist, title, song) "
                          "VALUES ('csv', 'k', 'a', 't', 'a - t')"))
        eid = _extraction(conn, 1, "librosa")
        _long(conn, eid, {"tempo": 120.0, "my_own_feature": 1.0})
    with pytest.raises(InputError, match="librosa my_own_feature: 1 rows"):
        migrate.upgrade(engine)
    with engine.connect() as conn:  # nothing changed: the long table still holds both rows
        assert conn.execute(text("SELECT COUNT(*) FROM features")).scalar_one() == 2
    engine.dispose()
