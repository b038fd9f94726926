"""Training, splits without leakage, evaluation across datasets, nested comparison, prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from models_helpers import fill_segments, fill_separable
from sqlalchemy import select

from music_classifier.db.tables import models, predictions
from music_classifier.errors import InputError
from music_classifier.models.compare import ModelScores, compare_models, pick_winner
from music_classifier.models.datasets import DatasetDefinition, create_dataset
from music_classifier.models.evaluate import evaluate_model
from music_classifier.models.load_data import load_dataset
from music_classifier.models.predict import predict_tracks
from music_classifier.models.splits import cv_splitter, holdout_split
from music_classifier.models.train import TrainOptions, json_safe, train_model

GENRES = ["Rock", "Jazz", "Pop", "Metal"]


@pytest.fixture
def one_candidate(tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"rf": {"n_estimators": [25]}, "logreg": {"C": 1.0}, "knn": {"n_neighbors": 3}}))
    return path


def _dataset(conn, name="sep", genres=GENRES, per_genre=12, **kw):
    fill_separable(conn, genres_=genres, per_genre=per_genre, prefix=name, **kw)
    return create_dataset(conn, name, DatasetDefinition(features="gtzan_csv", top=len(genres), min_per_genre=5))


def test_separable_features_score_near_perfect_and_registry_row(engine, tmp_path, one_candidate):
    with engine.begin() as conn:
        _dataset(conn)
    ticks = []
    with engine.begin() as conn:
        result = train_model(conn, "sep", TrainOptions(kind="rf", grid=one_candidate, cv=3, seed=1, repeats=1),
                             models_path=tmp_path / "models", progress=lambda d, t: ticks.append((d, t)))
    assert result.test_metrics["accuracy"] >= 0.95 and result.cv_score >= 0.95
    assert ticks[-1] == (4, 4)  # 1 candidate x 3 folds + refit, counted as they ran
    with engine.connect() as conn:
        row = conn.execute(select(models).where(models.c.id == result.model_id)).mappings().one()
    assert row["best_params"] == {"clf__n_estimators": 25}  # read from the search object
    assert row["params"]["n_test_tracks"] == 12 and row["params"]["n_train_tracks"] == 36
    tm = row["test_metrics"]
    assert set(tm["per_genre"]) == set(GENRES) and tm["confusion"]["labels"] == sorted(GENRES)
    assert len(tm["predictions"]) == 12
    p = tm["predictions"][0]
    assert set(p) >= {"track_id", "artist", "title", "true", "pred", "confidence"}
    assert {t for t, _ in row["dataset_snapshot"]["members"]} >= {q["track_id"] for q in tm["predictions"]}
    assert row["feature_importances"]["method"] == "impurity"
    assert len(row["feature_importances"]["values"]) == len(row["feature_names"]) == 57
    # The generated signal sits on features j % 5 in 0..3; j % 5 == 4 is noise.
    values = np.array(row["feature_importances"]["values"])
    noise = np.arange(57) % 5 == 4
    assert values[~noise].mean() > 5 * values[noise].mean()
    assert set(row["versions"]) == {"python", "sklearn", "numpy", "scipy", "skops", "pandas"}
    assert len(row["file_sha256"]) == 64


def test_logreg_permutation_importances(sqlite_engine, tmp_path, one_candidate):
    with sqlite_engine.begin() as conn:
        _dataset(conn)
        result = train_model(conn, "sep", TrainOptions(kind="logreg", grid=one_candidate, cv=3),
                             models_path=tmp_path)
        row = conn.execute(select(models.c.feature_importances)).scalar_one()
    assert result.test_metrics["accuracy"] >= 0.95
    assert row["method"] == "permutation" and len(row["values"]) == 57


def test_segment_split_has_no_leakage(sqlite_engine):
    with sqlite_engine.begin() as conn:
        fill_segments(conn, genres_=["Rock", "Jazz", "Pop"], per_genre=8, n_segments=5)
        create_dataset(conn, "segs", DatasetDefinition(features="librosa", segments=True, top=3, min_per_genre=4))
        frame = load_dataset(conn, "segs")
    assert frame.is_segments and len(frame.y) == 3 * 8 * 5 and len(frame.feature_names) == 83
    for seed in range(5):
        train, test = holdout_split(frame.y, frame.groups, test_size=0.25, seed=seed)
        assert set(frame.track_ids[train]).isdisjoint(frame.track_ids[test])
        assert set(frame.track_ids[test]) and len(train) + len(test) == len(frame.y)
        inner = cv_splitter(frame.groups[train], 3, seed)
        for a, b in inner.split(frame.X[train], frame.y[train], frame.groups[train]):
            assert set(frame.track_ids[train][a]).isdisjoint(frame.track_ids[train][b])
    # The check can fail: a naive row split puts segments of one track on both sides.
    from sklearn.model_selection import train_test_split

    naive_train, naive_test = train_test_split(np.arange(len(frame.y)), test_size=0.25, random_state=0)
    assert not set(frame.track_ids[naive_train]).isdisjoint(frame.track_ids[naive_test])


def test_segment_training_soft_votes_per_track(sqlite_engine, tmp_path, one_candidate):
    with sqlite_engine.begin() as conn:
        fill_segments(conn, genres_=["Rock", "Jazz", "Pop"], per_genre=8, n_segments=4)
        create_dataset(conn, "segs", DatasetDefinition(features="librosa", segments=True, top=3, min_per_genre=4))
        result = train_model(conn, "segs", TrainOptions(grid=one_candidate, cv=3), models_path=tmp_path)
        row = conn.execute(select(models.c.params)).scalar_one()
    tm = result.test_metrics
    assert tm["n"] == result.n_test_tracks == len(tm["predictions"])  # metrics per track, not per segment
    assert row["n_test_rows"] == 4 * result.n_test_tracks
    assert tm["accuracy"] >= 0.95


def test_artist_grouping_keeps_artists_on_one_side(sqlite_engine):
    with sqlite_engine.begin() as conn:
        _dataset(conn, per_genre=12, artists_per_genre=4)
        frame = load_dataset(conn, "sep", group_by="artist")
    train, test = holdout_split(frame.y, frame.groups, test_size=0.25, seed=0)
    assert set(frame.artists[train]).isdisjoint(frame.artists[test])


def test_features_are_read_by_name(sqlite_engine):
    with sqlite_engine.begin() as conn:
        _dataset(conn)
        full = load_dataset(conn, "sep")
        wanted = ["mfcc3_var", "tempo", "rms_mean"]
        part = load_dataset(conn, "sep", feature_names=wanted)
        assert part.feature_names == wanted
        for j, name in enumerate(wanted):
            np.testing.assert_array_equal(part.X[:, j], full.X[:, full.feature_names.index(name)])
        with pytest.raises(InputError, match="lacks feature.*danceability"):
            load_dataset(conn, "sep", feature_names=["tempo", "danceability"])


def test_evaluate_on_another_dataset_lists_dropped_genres(sqlite_engine, tmp_path, one_candidate):
    with sqlite_engine.begin() as conn:
        fill_separable(conn, genres_=GENRES, per_genre=10, source="csv", prefix="pl")
        create_dataset(conn, "playlists", DatasetDefinition(features="gtzan_csv", top=4, min_per_genre=5,
                                                            sources=["csv"]))
        # the "class" tracks: same feature structure (same genre index -> same centre), other genres too
        fill_separable(conn, genres_=["Rock", "Jazz", "Folk"], per_genre=6, source="sheet", prefix="cls", seed=9)
        create_dataset(conn, "class", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=3,
                                                        sources=["sheet"]))
        model_id = train_model(conn, "playlists", TrainOptions(grid=one_candidate, cv=3),
                               models_path=tmp_path).model_id
    with sqlite_engine.connect() as conn:
        ev = evaluate_model(conn, model_id, "class")
    assert ev.shared_genres == ["Jazz", "Rock"]
    assert ev.dropped_model_genres == ["Metal", "Pop"]
    assert ev.dropped_dataset_genres == {"Folk": 6}
    assert ev.n_tracks == 12 and ev.metrics["accuracy"] >= 0.9
    assert ev.metrics["confusion"]["labels"] == ["Jazz", "Rock"]


def test_predict_stored_tracks_stores_rows(engine, tmp_path, one_candidate):
    with engine.begin() as conn:
        ids = fill_separable(conn, genres_=["Rock", "Jazz"], per_genre=8)
        create_dataset(conn, "two", DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=5))
        model_id = train_model(conn, "two", TrainOptions(grid=one_candidate, cv=3), models_path=tmp_path).model_id
    with engine.begin() as conn:
        preds = predict_tracks(conn, model_id, [ids["Jazz"][0], ids["Rock"][1]])
    assert [p.genre for p in preds] == ["Rock", "Jazz"] or [p.genre for p in preds] == ["Jazz", "Rock"]
    by_track = {p.track_id: p for p in preds}
    assert by_track[ids["Jazz"][0]].genre == "Jazz" and by_track[ids["Rock"][1]].genre == "Rock"
    assert abs(sum(by_track[ids["Jazz"][0]].probabilities.values()) - 1.0) < 1e-6
    with engine.connect() as conn:
        assert conn.execute(select(predictions.c.genre).order_by(predictions.c.track_id)).scalars().all() \
            == ["Rock", "Jazz"][:: 1 if ids["Rock"][1] < ids["Jazz"][0] else -1]
    with engine.begin() as conn, pytest.raises(InputError, match="no gtzan_csv features"):
        predict_tracks(conn, model_id, [999_999])


def test_compare_nested_cv(sqlite_engine, one_candidate):
    with sqlite_engine.begin() as conn:
        _dataset(conn, per_genre=10)
        ticks = []
        res = compare_models(conn, "sep", kinds=["rf", "knn"], grid=one_candidate, cv=5, seed=0, repeats=1,
                             progress=lambda d, t: ticks.append((d, t)))
    assert res.splitter == "StratifiedKFold" and ticks[-1] == (10, 10)
    assert [s.kind for s in res.scores] == ["rf", "knn"]
    assert all(len(s.fold_accuracy) == 5 and s.mean >= 0.95 for s in res.scores)
    assert res.winner is None  # both perfect: nobody leads by more than 2 SD


def test_compare_inner_search_with_default_grid(sqlite_engine):
    with sqlite_engine.begin() as conn:
        _dataset(conn, per_genre=8)
        res = compare_models(conn, "sep", kinds=["logreg"], cv=3, inner_cv=2, seed=0, repeats=1)
    assert res.scores[0].fold_best_params[0].keys() == {"clf__C"}
    assert len(res.scores[0].fold_accuracy) == 3


def test_winner_rule():
    a = ModelScores("rf", [0.80, 0.82, 0.81, 0.80, 0.82], [0] * 5)
    b = ModelScores("knn", [0.70, 0.71, 0.69, 0.70, 0.70], [0] * 5)
    c = ModelScores("svm", [0.79, 0.70, 0.85, 0.74, 0.80], [0] * 5)
    assert pick_winner([a, b])[0] == "rf"
    winner, reason = pick_winner([a, b, c])
    assert winner is None and "no winner" in reason


def test_bad_options(sqlite_engine, tmp_path):
    with sqlite_engine.begin() as conn:
        _dataset(conn)
        with pytest.raises(InputError, match="--model 'tree'"):
            train_model(conn, "sep", TrainOptions(kind="tree"), models_path=tmp_path)
        bad = tmp_path / "bad.json"
        bad.write_text('{"n_trees": [3]}')
        with pytest.raises(InputError, match="unknown parameter.*n_trees"):
            train_model(conn, "sep", TrainOptions(grid=bad), models_path=tmp_path)
        with pytest.raises(InputError, match="--group-by"):
            train_model(conn, "sep", TrainOptions(group_by="label"), models_path=tmp_path)
        with pytest.raises(InputError, match="not found"):
            train_model(conn, "nope", TrainOptions(), models_path=tmp_path)


def test_predict_audio_files_extracts_on_the_fly(sqlite_engine, tmp_path, one_candidate):
    import soundfile as sf

    from music_classifier.models.predict import predict_files

    sr = 22050
    t = np.arange(int(6.5 * sr)) / sr
    wav = tmp_path / "tone.wav"
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(0).normal(size=t.size))
             .astype(np.float32), sr)
    with sqlite_engine.begin() as conn:
        fill_separable(conn, genres_=["Rock", "Jazz"], per_genre=8, extractor="librosa", source="file")
        create_dataset(conn, "lib", DatasetDefinition(features="librosa", top=2, min_per_genre=5))
        fill_segments(conn, genres_=["Rock", "Jazz"], per_genre=6, n_segments=3)
        create_dataset(conn, "libseg", DatasetDefinition(features="librosa", segments=True, top=2, min_per_genre=5))
        whole = train_model(conn, "lib", TrainOptions(grid=one_candidate, cv=3), models_path=tmp_path).model_id
        seg = train_model(conn, "libseg", TrainOptions(grid=one_candidate, cv=3), models_path=tmp_path).model_id
        gtzan = _dataset(conn, name="g", genres=["Rock", "Jazz"], per_genre=6)
        assert gtzan.n_tracks == 12
        g_model = train_model(conn, "g", TrainOptions(grid=one_candidate, cv=3), models_path=tmp_path).model_id
    with sqlite_engine.begin() as conn:
        for model_id in (whole, seg):
            [p] = predict_files(conn, model_id, [wav])
            assert p.genre in {"Rock", "Jazz"} and p.file_path == str(wav.resolve())
            assert abs(sum(p.probabilities.values()) - 1.0) < 1e-6
        stored = conn.execute(select(predictions.c.model_id, predictions.c.file_path)).all()
        assert stored == [(whole, str(wav.resolve())), (seg, str(wav.resolve()))]
        with pytest.raises(InputError, match="only be predicted with a model trained on audio features"):
            predict_files(conn, g_model, [wav])
        with pytest.raises(InputError, match="file not found"):
            predict_files(conn, whole, [tmp_path / "missing.wav"])


def test_svm_balanced_and_whole_vs_segment_mismatch(sqlite_engine, tmp_path):
    grid = tmp_path / "svm.json"
    grid.write_text(json.dumps({"estimator__C": [1.0]}))
    with sqlite_engine.begin() as conn:
        _dataset(conn, genres=["Rock", "Jazz", "Pop"], per_genre=10)
        fill_segments(conn, genres_=["Rock", "Jazz"], per_genre=5, n_segments=2)
        create_dataset(conn, "segs", DatasetDefinition(features="librosa", segments=True, top=2, min_per_genre=4))
        result = train_model(conn, "sep", TrainOptions(kind="svm", grid=grid, cv=3, class_weight="balanced"),
                             models_path=tmp_path)
        row = conn.execute(select(models.c.params, models.c.best_params)).one()
        with pytest.raises(InputError, match="k-nearest neighbours has no class weights"):
            train_model(conn, "sep", TrainOptions(kind="knn", class_weight="balanced"), models_path=tmp_path)
    assert result.test_metrics["accuracy"] >= 0.95
    # 7-8 training tracks a genre, 3 folds: some training part holds only 4 of a genre, so the SVM's
    # probability calibration (5-fold by default) is lowered to 4 folds, and said so.
    assert row.params["class_weight"] == "balanced"
    assert row.best_params == {"clf__estimator__C": 1.0, "clf__cv": 4}
    assert row.params["adaptations"] == ["svm: probability calibration uses 4-fold CV (the smallest genre has 4 "
                                         "rows in a training part)"]
    with sqlite_engine.connect() as conn, pytest.raises(InputError, match="trained on whole-track features"):
        evaluate_model(conn, result.model_id, "segs")


def test_json_safe_converts_numpy_values_wherever_they_sit():
    value = {"ids": [1, 2, 3], "mixed": [1, np.int64(2), (np.float64(0.5), "x")], np.str_("k"): np.array([1, 2]),
             "plain": ("a", None, True, 1.5)}
    out = json_safe(value)
    assert out == {"ids": [1, 2, 3], "mixed": [1, 2, [0.5, "x"]], "k": [1, 2], "plain": ["a", None, True, 1.5]}
    assert json.loads(json.dumps(out)) == out
    assert type(out["mixed"][1]) is int and type(out["mixed"][2][0]) is float


def test_with_features_reorders_columns_by_name_and_refuses_a_missing_one(sqlite_engine):
    with sqlite_engine.begin() as conn:
        fill_separable(conn, genres_=["Rock", "Jazz"], per_genre=4, prefix="wf")
        create_dataset(conn, "wf", DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=4))
        frame = load_dataset(conn, "wf")
    names = frame.feature_names[::-1][:3]
    picked = frame.with_features(names)
    assert picked.feature_names == names
    for j, name in enumerate(names):
        np.testing.assert_array_equal(picked.X[:, j], frame.X[:, frame.feature_names.index(name)])
    assert picked.track_ids is frame.track_ids and frame.X.shape[1] > 3  # the original frame is unchanged
    with pytest.raises(InputError, match="dataset 'wf' lacks feature\\(s\\) the model needs: nope"):
        frame.with_features([*names, "nope"])
