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


# --- with the real network (skips without the musicnn package; fails under CI=1) ---------------------

def _clip(path, *, seconds: float, freq: float, seed: int) -> None:
    import soundfile as sf

    sr = 22050
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).normal(size=t.size)
    beat = (np.sin(2 * np.pi * 2 * t) > 0.95).astype(float)  # clicks twice a second
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * noise + 0.3 * beat * noise
    sf.write(path, y.astype(np.float32), sr)


@pytest.fixture
def two_clips(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    _clip(lib / "low.wav", seconds=7.0, freq=110.0, seed=0)
    _clip(lib / "high.wav", seconds=7.0, freq=1760.0, seed=1)
    return lib


def _audio_tracks(conn, names: list[str]) -> list[int]:
    ids = []
    for i, name in enumerate(names):
        tid = add_track(conn, key=name, genre=["Rock", "Jazz"][i % 2], source="file", title=name)
        conn.execute(text("UPDATE tracks SET audio_path = :p WHERE id = :i"), {"p": name, "i": tid})
        ids.append(tid)
    return ids


def test_compute_musicnn_in_process_then_tags_and_predict(engine, two_clips, musicnn_checkpoint, tmp_path):
    from typer.testing import CliRunner

    from music_classifier.cli import app
    from music_classifier.db.tags import track_top_tags
    from music_classifier.jobs.compute import compute_extractions
    from music_classifier.jobs.enqueue import spec_for
    from music_classifier.settings import get_settings

    url = engine.url.render_as_string(hide_password=False)
    settings = get_settings(database_url=url, library=two_clips, models_dir=tmp_path / "models")
    with engine.begin() as conn:
        ids = _audio_tracks(conn, ["low.wav", "high.wav"])
    spec = spec_for("musicnn")
    assert spec.version == "1" and len(spec.params["weights_sha256"]) == 64 and spec.params["segment_s"] == 3.0
    report = compute_extractions(engine, settings, spec, processes=1)
    assert (report.tracks, report.done, report.failed) == (2, 2, 0), report.errors
    assert compute_extractions(engine, settings, spec, processes=1).tracks == 0  # nothing missing any more
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM musicnn_features ORDER BY track_id")).mappings().all()
        segs = conn.execute(text("SELECT track_id, segment, start_s FROM musicnn_segment_features "
                                 "ORDER BY track_id, segment")).all()
        found = track_top_tags(conn, ids[0], k=5)
    assert [r["track_id"] for r in rows] == ids
    vectors = np.array([[r[c] for c in MUSICNN_V1] for r in rows], dtype=float)
    assert np.isfinite(vectors).all() and ((vectors[:, 400:] >= 0) & (vectors[:, 400:] <= 1)).all()
    assert np.abs(vectors[0] - vectors[1]).max() > 0.01  # two different sounds, two different outputs
    assert [tuple(s) for s in segs] == [(ids[0], 0, 0.0), (ids[0], 1, 3.0), (ids[1], 0, 0.0), (ids[1], 1, 3.0)]
    assert len(found.tags) == 5 and found.tags == sorted(found.tags, key=lambda kv: -kv[1])

    runner = CliRunner()
    stored = runner.invoke(app, ["--db", url, "tags", str(ids[0]), "--k", "3"])
    assert stored.exit_code == 0, stored.output
    assert f"stored musicnn extraction {found.extraction_id}" in stored.output and found.tags[0][0] in stored.output
    computed = runner.invoke(app, ["--db", url, "tags", str(two_clips / "low.wav"), "--k", "3"])
    assert computed.exit_code == 0, computed.output
    assert "computed now" in computed.output and found.tags[0][0] in computed.output  # same audio, same top tag
    missing = runner.invoke(app, ["--db", url, "tags", "999999"])
    assert missing.exit_code == 1 and "track 999999 not found" in missing.output
    assert "Traceback" not in missing.output


def test_predict_a_file_with_a_librosa_and_musicnn_model(sqlite_engine, two_clips, musicnn_checkpoint, tmp_path):
    from music_classifier.models.predict import predict_files
    from music_classifier.models.train import TrainOptions, train_model

    rng = np.random.default_rng(3)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"rf": {"n_estimators": [20]}}))
    with sqlite_engine.begin() as conn:
        for gi, genre in enumerate(["Rock", "Jazz"]):
            for j in range(6):
                tid = add_track(conn, key=f"{genre}-{j}", genre=genre, source="file")
                add_segments(conn, tid, [separable_values("librosa", gi, rng) for _ in range(2)])
                add_segments(conn, tid, [separable_values("musicnn", gi, rng) for _ in range(2)], extractor="musicnn")
        create_dataset(conn, "mixseg", DatasetDefinition(features="librosa,musicnn", segments=True, top=2,
                                                         min_per_genre=5))
        model_id = train_model(conn, "mixseg", TrainOptions(kind="rf", grid=grid, cv=2),
                               models_path=tmp_path / "models").model_id
        [pred] = predict_files(conn, model_id, [two_clips / "low.wav"])
    assert pred.genre in {"Rock", "Jazz"} and abs(sum(pred.probabilities.values()) - 1) < 1e-6


def test_musicnn_in_a_process_pool(sqlite_engine, two_clips, musicnn_checkpoint, tmp_path):
    from music_classifier.jobs.compute import compute_extractions
    from music_classifier.jobs.enqueue import spec_for
    from music_classifier.settings import get_settings

    url = sqlite_engine.url.render_as_string(hide_password=False)
    settings = get_settings(database_url=url, library=two_clips)
    with sqlite_engine.begin() as conn:
        _audio_tracks(conn, ["low.wav", "high.wav"])
    report = compute_extractions(sqlite_engine, settings, spec_for("musicnn", segments=False), processes=2)
    assert (report.done, report.failed) == (2, 0), report.errors
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM musicnn_features")).scalar_one() == 2
        assert conn.execute(text("SELECT COUNT(*) FROM musicnn_segment_features")).scalar_one() == 0


def test_report_shows_mistakes_top_tags_and_importances_per_set(sqlite_engine, tmp_path):
    from music_classifier.models.report import build_report
    from music_classifier.models.train import TrainOptions, train_model

    rng = np.random.default_rng(4)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"rf": {"n_estimators": [10]}}))
    with sqlite_engine.begin() as conn:
        for genre in ["Rock", "Jazz", "Folk"]:
            for j in range(8):
                tid = add_track(conn, key=f"{genre}-{j}", genre=genre, source="file", title=f"{genre} {j}")
                add_features(conn, tid, "librosa", {c: float(v) for c, v in zip(
                    COLUMNS["librosa"], rng.normal(size=83), strict=True)})
                tags = {n: 0.01 for n in MUSICNN_V1[400:]}
                add_features(conn, tid, "musicnn", {**{n: float(v) for n, v in zip(
                    MUSICNN_V1[:400], rng.normal(size=400), strict=True)}, **tags, "tag_hip_hop": 0.7,
                    "tag_female_vocalists": 0.2})
        create_dataset(conn, "noise", DatasetDefinition(features="librosa,musicnn", top=3, min_per_genre=5))
        trained = train_model(conn, "noise", TrainOptions(kind="rf", grid=grid, cv=2, seed=0),
                              models_path=tmp_path / "models")
    assert trained.test_metrics["accuracy"] < 1.0  # pure noise: there are mistakes to show
    with sqlite_engine.connect() as conn:
        html = build_report(conn, trained.model_id, out_dir=tmp_path / "report").read_text()
    assert "top MSD tags (musicnn)" in html
    assert "Hip-Hop 0.70, female vocalists 0.20" in html  # the network's names, most likely first
    assert 'id="importance-groups"' in html and "<td>musicnn</td>" in html and "<td>librosa</td>" in html


def test_without_the_musicnn_package_compute_and_enqueue_say_how_to_install(sqlite_engine, monkeypatch, tmp_path):
    import importlib.util

    from typer.testing import CliRunner

    from music_classifier.cli import app

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # the environment without the package
                        lambda name, *a, **k: None if name == "musicnn" else real_find_spec(name, *a, **k))
    url = sqlite_engine.url.render_as_string(hide_password=False)
    with sqlite_engine.begin() as conn:
        _audio_tracks(conn, ["low.wav"])
    for command in (["features", "compute", "--extractor", "musicnn", "--processes", "1"],
                    ["features", "enqueue", "--extractor", "musicnn"]):
        result = CliRunner().invoke(app, ["--db", url, *command])
        assert result.exit_code == 1, result.output
        assert "pip install --no-deps musicnn==0.1.0" in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(extractions.c.id)).all() == []  # nothing queued, nothing half-done
