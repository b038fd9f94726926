"""Model files whose arrays would send compiled code out of bounds are refused with one line.

The probe (issue 17, row 2): a stored model whose ``Tree`` node arrays hold an out-of-range child index,
its sha256 updated in the registry as an attacker with write access would, made ``predict`` and
``evaluate`` die with SIGSEGV. Each case below corrupts one array of one class in a real saved model file
and predicts in a subprocess, so a segfault (or an endless walk of a cyclic tree) is a failed test,
not a killed pytest.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from models_helpers import fill_separable, sqlite_cli
from sqlalchemy import update

from music_classifier.db.tables import models
from music_classifier.models.fitted_checks import CHECKS
from music_classifier.models.pipelines import make_pipeline, model_file_classes
from music_classifier.models.registry import file_sha256, get_model_row, library_versions, store_model

REFUSED = 3
# Run in a fresh interpreter: load the model (every check) and predict. Exit 3 with the one-line
# refusal, 0 with the predictions; a crash shows as a negative return code.
PREDICT = """
import sys, numpy as np
from music_classifier.db.engine import make_engine
from music_classifier.errors import InputError
from music_classifier.models.registry import load_model
url, model_id, models_dir, x_path = sys.argv[1:]
with make_engine(url).connect() as conn:
    try:
        pipeline, _ = load_model(conn, int(model_id), models_path=models_dir)
    except InputError as exc:
        print(exc)
        sys.exit(3)
np.save(sys.stdout.buffer, pipeline.predict_proba(np.load(x_path)))
"""
# Classes that hold no array, or only placeholders their code never reads (the unweighted distances'
# vec/mat); their checks still run (p, the scalars), but there is nothing to corrupt.
NO_ARRAYS = {
    "sklearn.pipeline.Pipeline", "sklearn._loss.loss.HalfBinomialLoss", "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.LogitLink", "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss._loss.CyHalfMultinomialLoss", "sklearn._loss.link.MultinomialLogit", "sklearn._loss.link.Interval",
    "numpy.random._generator.Generator", "numpy.random.PCG64", "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64", "sklearn.metrics._dist_metrics.ChebyshevDistance64",
}
# The fitted pipelines the cases corrupt: every kind, big enough that every tree has splits.
VARIANTS: dict[str, tuple[str, dict]] = {
    "rf": ("rf", {"clf__n_estimators": 3}),
    "logreg": ("logreg", {}),
    "svm": ("svm", {}),
    "hgb": ("hgb", {"clf__max_iter": 3}),
    "kd": ("knn", {}),
    "ball": ("knn", {"clf__algorithm": "ball_tree"}),
    "minkowski": ("knn", {"clf__p": 3}),
}


def _set(field: str, index: int, value: float) -> Callable[[np.ndarray], np.ndarray]:
    def mutate(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        (a[field] if field else a)[index] = value
        return a
    return mutate


def _first_split(field: str, value: float) -> Callable[[np.ndarray], np.ndarray]:
    """Set ``field`` of the first split node (the root of a fitted tree is one)."""
    def mutate(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        assert a.size > 1, "the fitted tree has no split to corrupt"
        a[field][0] = value
        return a
    return mutate


def _append_class(a: np.ndarray) -> np.ndarray:
    return np.append(a, "zz" if a.dtype.kind in "US" else a.max() + 1)


# (variant, class, key in that object's state, mutation, what the one-line refusal names)
CASES = [
    ("rf", "sklearn.tree._tree.Tree", "nodes", _first_split("left_child", 10**6), "children 1000000"),
    ("rf", "sklearn.tree._tree.Tree", "nodes", _first_split("right_child", 0), "children"),  # a cycle
    ("rf", "sklearn.tree._tree.Tree", "nodes", _first_split("feature", 40), "feature 40"),
    ("rf", "sklearn.tree._tree.Tree", "nodes", _first_split("threshold", np.nan), "threshold"),
    ("rf", "sklearn.tree._tree.Tree", "values", lambda a: a[:-1], "does not load"),
    ("rf", "sklearn.tree._classes.DecisionTreeClassifier", "classes_", _append_class, "classes"),
    ("rf", "sklearn.ensemble._forest.RandomForestClassifier", "classes_", lambda a: a[:-1], "n_classes_"),
    ("logreg", "sklearn.impute._base.SimpleImputer", "statistics_", lambda a: a[:-1], "statistics_"),
    ("logreg", "sklearn.preprocessing._data.StandardScaler", "scale_", _set("", 0, np.nan), "scale_"),
    ("logreg", "sklearn.linear_model._logistic.LogisticRegression", "coef_", lambda a: a[:, :-1], "coef_"),
    ("svm", "sklearn.svm._classes.SVC", "_n_support", lambda a: a + 100, "_n_support"),
    ("svm", "sklearn.svm._classes.SVC", "support_vectors_", lambda a: np.hstack([a, a]), "support_vectors_"),
    ("svm", "sklearn.svm._classes.SVC", "_dual_coef_", lambda a: a[:, :-1], "_dual_coef_"),
    ("svm", "sklearn.calibration.CalibratedClassifierCV", "classes_", _append_class, "classes"),
    ("svm", "sklearn.calibration._CalibratedClassifier", "classes", lambda a: a[:-1], "classes"),
    ("svm", "sklearn.calibration._SigmoidCalibration", "a_", lambda a: np.float64(np.nan), "a_"),
    ("hgb", "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
     "_baseline_prediction", lambda a: a[:, :-1], "_baseline_prediction"),
    ("hgb", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", "nodes",
     _first_split("left", 10**6), "children 1000000"),
    ("hgb", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", "nodes",
     _first_split("feature_idx", 40), "feature 40"),
    ("hgb", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", "nodes",
     _first_split("is_leaf", 7), "is_leaf"),
    ("hgb", "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper", "n_bins_non_missing_",
     lambda a: a + 300, "bins"),
    ("hgb", "sklearn.preprocessing._label.LabelEncoder", "classes_", lambda a: a[:-1], "classes"),
    ("kd", "sklearn.neighbors._classification.KNeighborsClassifier", "_y", _set("", 0, 99), "_y"),
    ("kd", "sklearn.neighbors._kd_tree.KDTree", 1, _set("", 0, 10**6), "idx_array"),
    ("kd", "sklearn.neighbors._kd_tree.KDTree", 2, _set("idx_end", 0, 10**6), "node range"),
    ("ball", "sklearn.neighbors._ball_tree.BallTree", 1, _set("", 0, -5), "idx_array"),
    ("ball", "sklearn.neighbors._ball_tree.BallTree", 3, lambda a: a[:, :-1], "node_bounds"),
    ("minkowski", "sklearn.metrics._dist_metrics.MinkowskiDistance64", 1, lambda a: np.full(40, 1.0), "weights"),
]


def _data(n_per_genre: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.array(["rock", "jazz", "pop"])[np.arange(3 * n_per_genre) % 3]
    X = rng.normal(size=(len(y), 4))
    X[np.arange(len(y)), np.arange(len(y)) % 3] += 3.0
    return X, y


def _store(engine, variant: str, models_dir: Path) -> tuple[int, Path, np.ndarray, np.ndarray]:
    kind, params = VARIANTS[variant]
    X, y = _data()
    pipe = make_pipeline(kind, seed=0).set_params(**params).fit(X, y)
    row = {"dataset_name": "d", "dataset_snapshot": {"definition": {}, "members": []}, "kind": kind,
           "params": {}, "feature_names": ["a", "b", "c", "d"], "versions": library_versions()}
    with engine.begin() as conn:
        model_id = store_model(conn, pipe, row, models_path=models_dir)
        path = Path(get_model_row(conn, model_id)["file_path"])
    return model_id, path, X, pipe.predict_proba(X)


def _class_nodes(node, class_name: str):
    """Every skops node of ``class_name`` (``module.Class``) in a schema, in file order."""
    if isinstance(node, dict):
        if f"{node.get('__module__')}.{node.get('__class__')}" == class_name:
            yield node
        for value in node.values():
            yield from _class_nodes(value, class_name)
    elif isinstance(node, list):
        for value in node:
            yield from _class_nodes(value, class_name)


def _array_node(schema: dict, class_name: str, key: str | int) -> dict:
    """The stored array ``key`` of the first ``class_name`` object that has it (a named attribute, or
    a position in a tuple state such as a KDTree's)."""
    for node in _class_nodes(schema, class_name):
        content = node["content"]["content"]
        if isinstance(key, int) and isinstance(content, list):
            return content[key]
        if isinstance(key, str) and isinstance(content, dict) and key in content:
            return content[key]
    raise AssertionError(f"no {class_name} with {key!r} in the model file")


def corrupt(path: Path, class_name: str, key: str | int, mutate: Callable[[np.ndarray], np.ndarray]) -> None:
    """Rewrite one array of a saved model file, as an attacker with write access to the file would."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    node = _array_node(json.loads(members["schema.json"]), class_name, key)
    before = np.load(io.BytesIO(members[node["file"]]), allow_pickle=False)
    after = np.asarray(mutate(before))
    assert after.shape != before.shape or after.tobytes() != before.tobytes()
    buffer = io.BytesIO()
    np.save(buffer, after, allow_pickle=False)
    members[node["file"]] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def rehash(engine, model_id: int, path: Path) -> None:
    """Whoever can write the file can write the row: the sha256 proves nothing."""
    with engine.begin() as conn:
        conn.execute(update(models).where(models.c.id == model_id).values(file_sha256=file_sha256(path)))


def predict_in_subprocess(engine, model_id: int, models_dir: Path, X: np.ndarray, tmp_path: Path):
    x_path = tmp_path / "X.npy"
    np.save(x_path, X)
    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "MUSIC_CLASSIFIER_MODELS_DIR": str(models_dir)}
    return subprocess.run([sys.executable, "-c", PREDICT, url, str(model_id), str(models_dir), str(x_path)],
                          capture_output=True, env=env, timeout=300)  # a ceiling that only catches hangs


def test_every_class_a_model_file_may_hold_has_an_array_check():
    assert model_file_classes() <= set(CHECKS)


def test_every_class_holding_arrays_has_a_corruption_case():
    assert model_file_classes() - NO_ARRAYS == {case[1] for case in CASES}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_untouched_models_load_and_predict(sqlite_engine, tmp_path, variant):
    models_dir = tmp_path / "models"
    model_id, _, X, expected = _store(sqlite_engine, variant, models_dir)
    proc = predict_in_subprocess(sqlite_engine, model_id, models_dir, X, tmp_path)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    np.testing.assert_allclose(np.load(io.BytesIO(proc.stdout)), expected)


@pytest.mark.parametrize(("variant", "class_name", "key", "mutate", "named"), CASES,
                         ids=[f"{c[1].rsplit('.', 1)[1]}-{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_corrupted_array_is_refused_in_one_line(sqlite_engine, tmp_path, variant, class_name, key, mutate, named):
    models_dir = tmp_path / "models"
    model_id, path, X, _ = _store(sqlite_engine, variant, models_dir)
    corrupt(path, class_name, key, mutate)
    rehash(sqlite_engine, model_id, path)
    proc = predict_in_subprocess(sqlite_engine, model_id, models_dir, X, tmp_path)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == REFUSED, f"exit {proc.returncode}: {out} {proc.stderr.decode(errors='replace')[-2000:]}"
    assert out.count("\n") == 1 and f"model {model_id}: " in out and "refusing to use it" in out
    assert named in out


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_cli_refuses_a_model_with_an_out_of_range_tree_child(engine, tmp_path, monkeypatch, command):
    """The probe through the CLI, in a new process, on both databases: one line and exit 1, not SIGSEGV (exit 139)."""
    models_dir = tmp_path / "models"
    cli = sqlite_cli(engine, models_dir, monkeypatch)  # any engine's URL, not only SQLite's
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"rf": {"n_estimators": [5]}}))
    with engine.begin() as conn:
        ids = fill_separable(conn, genres_=["Rock", "Jazz", "Pop"], per_genre=10, prefix="pl")
    cli("dataset", "create", "pl", "--features", "gtzan_csv", "--top", "3", "--min-per-genre", "5")
    cli("train", "pl", "--grid", str(grid), "--cv", "3", "--seed", "2")
    with engine.connect() as conn:
        path = Path(get_model_row(conn, 1)["file_path"])
    corrupt(path, "sklearn.tree._tree.Tree", "nodes", _first_split("left_child", 10**6))
    rehash(engine, 1, path)
    args = ["predict", "1", "--track", str(ids["Pop"][0])] if command == "predict" else ["evaluate", "1", "--on", "pl"]
    env = {**os.environ, "MUSIC_CLASSIFIER_MODELS_DIR": str(models_dir)}
    proc = subprocess.run([sys.executable, "-m", "music_classifier.cli", "--db", cli.url, *args],
                          capture_output=True, text=True, env=env, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, f"exit {proc.returncode}: {output[-2000:]}"
    assert output.count("\n") == 1 and "Traceback" not in output
    assert "model 1: " in output and "children 1000000" in output and "refusing to use it" in output
