"""musicnn as a third extractor: wide tables and views, datasets over combined feature sets, jobs.

The database parts use generated values (no network needed) and run on SQLite and PostgreSQL;
the parts that run the network skip without the ``musicnn`` package (and fail under CI=1).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from models_helpers import COLUMNS, add_features, add_segments, add_track, separable_values
from sqlalchemy import inspect, select, text

from music_classifier.db.feature_columns import FEATURE_VIEWS_V1, MUSICNN_V1, SEGMENT_VIEWS_V1
from music_classifier.db.tables import extractions, musicnn_segment_values, musicnn_values
from music_classifier.db.views import views_dropped
from music_classifier.errors import InputError
from music_classifier.jobs.persist import ensure_extractions, save_result
from music_classifier.models.datasets import DatasetDefinition, create_dataset
from music_classifier.models.load_data import load_dataset, load_track_features


def _values(seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {n: float(v) for n, v in zip(MUSICNN_V1, rng.random(len(MUSICNN_V1)), strict=True)}


def test_musicnn_values_go_to_wide_tables_and_views(engine):
    with engine.begin() as conn:
        tid = add_track(conn, key="a", genre="Jazz", source="file")
        [eid] = ensure_extractions(conn, [tid], extractor="musicnn", version="1", params={"x": 1}).values()
        whole = _values(0)
        segs = [(0, 0.0, _values(1)), (2, 6.0, _values(2))]
        save_result(conn, eid, whole, segs, seconds=0.5)
        save_result(conn, eid, {**whole, "tag_jazz": 0.9}, segs, seconds=0.4)  # the job ran twice
    with engine.connect() as conn:
        assert conn.execute(select(extractions.c.status)).scalar_one() == "done"
        assert conn.execute(select(musicnn_values.c.extraction_id)).scalars().all() == [eid]
        assert conn.execute(select(musicnn_segment_values.c.segment).order_by(
            musicnn_segment_values.c.segment)).scalars().all() == [0, 2]
        row = conn.execute(text("SELECT * FROM musicnn_features")).mappings().one()
        assert row["track_id"] == tid and row["coarse_genre"] == "Jazz"
        assert row["tag_jazz"] == pytest.approx(0.9) and row["emb200_std"] == pytest.approx(whole["emb200_std"])
        assert len([c for c in row.keys() if c in set(MUSICNN_V1)]) == 450
        seg = conn.execute(text("SELECT segment, start_s, emb001_mean FROM musicnn_segment_features "
                                "ORDER BY segment")).all()
        assert [(s, t) for s, t, _ in seg] == [(0, 0.0), (2, 6.0)]
        assert seg[1][2] == pytest.approx(segs[1][2]["emb001_mean"])
        # Ranking tracks by a tag is plain SQL
        assert conn.execute(text("SELECT title FROM musicnn_features ORDER BY tag_jazz DESC")).scalars().all() == ["a"]
    with engine.begin() as conn, pytest.raises(ValueError, match="without a column: tag_kazoo"):
        save_result(conn, eid, {"tag_kazoo": 1.0}, None, seconds=0.1)


def test_extractor_names_equal_the_frozen_columns():
    pytest.importorskip("music_classifier.features.musicnn.names")
    from music_classifier.features.musicnn.names import MUSICNN_FEATURE_NAMES

    assert MUSICNN_FEATURE_NAMES == MUSICNN_V1


def test_a_migration_passing_older_view_lists_keeps_the_musicnn_views(engine):
    with engine.begin() as conn:
        tid = add_track(conn, key="a", genre="Jazz", source="file")
        add_features(conn, tid, "librosa", {"tempo": 100.0})
        add_features(conn, tid, "musicnn", {"tag_jazz": 0.5})
        create_dataset(conn, "mixed", DatasetDefinition(features="librosa,musicnn", top=1, min_per_genre=1))
        with views_dropped(conn, FEATURE_VIEWS_V1, SEGMENT_VIEWS_V1):  # e.g. a later batch migration of tracks
            pass
    views = set(inspect(engine).get_view_names())
    assert {"musicnn_features", "musicnn_segment_features", "dataset_mixed", "librosa_features"} <= views
    with engine.connect() as conn:
        assert conn.execute(text("SELECT musicnn_tag_jazz, librosa_tempo FROM dataset_mixed")).one() == (0.5, 100.0)


def test_datasets_combine_librosa_and_musicnn(engine):
    rng = np.random.default_rng(0)
    with engine.begin() as conn:
        both, librosa_only = [], []
        for gi, genre in enumerate(["Rock", "Jazz"]):
            for j in range(4):
                tid = add_track(conn, key=f"{genre}-{j}", genre=genre, source="file")
                add_features(conn, tid, "librosa", separable_values("librosa", gi, rng))
                if j < 3:
                    add_features(conn, tid, "musicnn", separable_values("musicnn", gi, rng))
                    both.append(tid)
                else:
                    librosa_only.append(tid)
        summary = create_dataset(conn, "mix", DatasetDefinition(features="librosa, musicnn", top=2,
                                                                min_per_genre=2))
        assert summary.definition["features"] == "librosa,musicnn"
        assert summary.genre_counts == {"Jazz": 3, "Rock": 3}
        frame = load_dataset(conn, "mix")
        assert sorted(set(frame.track_ids.tolist())) == sorted(both)
        assert len(frame.feature_names) == 83 + 450
        assert frame.feature_names[0] == "librosa_chroma_stft_mean" and frame.feature_names[-1] == "musicnn_tag_happy"
        alone = create_dataset(conn, "nn", DatasetDefinition(features="musicnn", top=2, min_per_genre=2))
        assert alone.n_tracks == 6 and load_dataset(conn, "nn").feature_names == MUSICNN_V1
        names = ["musicnn_tag_rock", "librosa_tempo"]
        X, tids, _ = load_track_features(conn, summary.definition, names, both[:2] + librosa_only[:1])
        assert tids.tolist() == sorted(both[:2])
        np.testing.assert_array_equal(X, frame.X[np.isin(frame.track_ids, both[:2])][:, [
            frame.feature_names.index(n) for n in names]])
        with pytest.raises(InputError, match="spotify features have no segments"):
            create_dataset(conn, "bad", DatasetDefinition(features="musicnn,spotify", segments=True, top=2,
                                                          min_per_genre=2))
        with pytest.raises(InputError, match="unknown feature set 'vggish'"):
            create_dataset(conn, "bad", DatasetDefinition(features="librosa,vggish", top=2, min_per_genre=2))


def test_segment_datasets_join_the_sets_on_the_segment_index(engine):
    rng = np.random.default_rng(1)
    with engine.begin() as conn:
        for gi, genre in enumerate(["Rock", "Jazz"]):
            for j in range(3):
                tid = add_track(conn, key=f"s-{genre}-{j}", genre=genre, source="file")
                add_segments(conn, tid, [separable_values("librosa", gi, rng) for _ in range(4)])  # segments 0-3
                # musicnn has segments 1-4: segment 0 and 4 have one set only and are left out
                add_segments(conn, tid, [separable_values("musicnn", gi, rng) for _ in range(4)], extractor="musicnn",
                             first_segment=1)
        create_dataset(conn, "segs", DatasetDefinition(features="librosa,musicnn", segments=True, top=2,
                                                       min_per_genre=2))
        frame = load_dataset(conn, "segs")
    assert frame.is_segments and len(frame.y) == 6 * 3
    assert sorted(set(frame.segments.tolist())) == [1, 2, 3]
    assert len(frame.feature_names) == 83 + 450 and np.isfinite(frame.X).all()


def test_train_and_compare_run_unchanged_on_combined_sets(sqlite_engine, tmp_path):
    from music_classifier.models.compare import compare_models
    from music_classifier.models.report import importance_groups
    from music_classifier.models.train import TrainOptions, train_model

    rng = np.random.default_rng(2)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"rf": {"n_estimators": [30]}, "logreg": {"C": 1.0}}))
    with sqlite_engine.begin() as conn:
        for gi, genre in enumerate(["Rock", "Jazz", "Folk"]):
            for j in range(8):
                tid = add_track(conn, key=f"{genre}-{j}", genre=genre, source="file")
                # librosa values are pure noise here: only musicnn separates the genres
                add_features(conn, tid, "librosa", {c: float(v) for c, v in zip(
                    COLUMNS["librosa"], rng.normal(size=83), strict=True)})
                add_features(conn, tid, "musicnn", separable_values("musicnn", gi, rng))
        create_dataset(conn, "mix", DatasetDefinition(features="librosa,musicnn", top=3, min_per_genre=5))
        res = compare_models(conn, "mix", kinds=["rf", "logreg"], grid=grid, cv=3, inner_cv=2, seed=0)
        assert all(s.mean >= 0.9 for s in res.scores)
        trained = train_model(conn, "mix", TrainOptions(kind="rf", grid=grid, cv=3, seed=0),
                              models_path=tmp_path / "models")
    assert trained.test_metrics["accuracy"] >= 0.8
    with sqlite_engine.connect() as conn:
        from music_classifier.models.report import model_row

        groups = importance_groups(model_row(conn, trained.model_id))
    assert [g["group"] for g in groups][0] == "musicnn"  # the informative set carries most importance
    assert {g["group"] for g in groups} == {"librosa", "musicnn"}
    assert {g["group"]: g["features"] for g in groups} == {"librosa": 83, "musicnn": 450}
    assert sum(g["share"] for g in groups) == pytest.approx(1.0)


def test_the_worker_runs_the_musicnn_task_and_enqueue_names_it(sqlite_engine, redis_url):
    from music_classifier.jobs.enqueue import ExtractionSpec, enqueue_extractions
    from music_classifier.jobs.runtime import make_queue, redis_connection
    from music_classifier.jobs.tasks import ALLOWED_FUNCTIONS

    assert "music_classifier.jobs.tasks.musicnn_track" in ALLOWED_FUNCTIONS
    import uuid

    queue = make_queue(redis_connection(redis_url), f"test-musicnn-{uuid.uuid4().hex[:8]}")
    spec = ExtractionSpec("musicnn", "1", {"excerpt_s": None, "segment_s": 3.0, "network": "MSD_musicnn"})
    try:
        with sqlite_engine.begin() as conn:
            with_audio = add_track(conn, key="a", genre="Jazz", source="file")
            conn.execute(text("UPDATE tracks SET audio_path = 'a.wav' WHERE id = :i"), {"i": with_audio})
            add_track(conn, key="b", genre="Jazz", source="sheet")  # no audio: not eligible
            report = enqueue_extractions(conn, queue, extractor="musicnn", selection="missing", spec=spec)
        assert report.tracks == 1 and report.jobs == 1
        job = queue.fetch_job(report.job_ids[0])
        assert job.func_name == "music_classifier.jobs.tasks.musicnn_track"
    finally:
        queue.empty()
        queue.delete(delete_jobs=True)


def test_unknown_extractor_is_one_line():
    from music_classifier.jobs.enqueue import spec_for

    with pytest.raises(InputError, match="unknown extractor 'vggish': use one of librosa, spotify, musicnn"):
        spec_for("vggish")
