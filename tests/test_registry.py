"""The registry: skops files loaded only after the sha256 check, with an explicit trusted-types list."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, update

from music_classifier.db.tables import models
from music_classifier.errors import InputError
from music_classifier.models.pipelines import make_pipeline
from music_classifier.models.registry import (
    get_model_row,
    library_versions,
    list_models,
    load_model,
    store_model,
    untrusted_types_refused,
)


class NotAllowed:
    """A class outside sklearn/numpy: loading it would mean trusting arbitrary code."""

    def fit(self, X, y=None):  # noqa: ANN001, ANN201
        return self

    def transform(self, X):  # noqa: ANN001, ANN201
        return X


def _row(**extra):
    return {"dataset_name": "d", "dataset_snapshot": {"definition": {}, "members": []}, "kind": "rf",
            "params": {}, "feature_names": ["a", "b"], "versions": library_versions(), **extra}


def _fitted(kind="rf"):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = np.where(X[:, 0] > 0, "rock", "jazz")
    pipe = make_pipeline(kind, seed=0)
    if kind == "rf":
        pipe.set_params(clf__n_estimators=5)
    return pipe.fit(X, y), X


@pytest.mark.parametrize("kind", ["rf", "logreg", "svm", "hgb", "knn"])
def test_round_trip_every_kind(sqlite_engine, tmp_path, kind):
    pipe, X = _fitted(kind)
    with sqlite_engine.begin() as conn:
        model_id = store_model(conn, pipe, _row(kind=kind), models_path=tmp_path)
    with sqlite_engine.connect() as conn:
        loaded, row = load_model(conn, model_id)
    assert row["kind"] == kind and row["file_path"].startswith(str(tmp_path))
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X))


def test_changed_file_is_refused(engine, tmp_path):
    pipe, _ = _fitted()
    with engine.begin() as conn:
        model_id = store_model(conn, pipe, _row(), models_path=tmp_path)
        path = get_model_row(conn, model_id)["file_path"]
    with open(path, "ab") as fh:
        fh.write(b"\0")
    with engine.connect() as conn, pytest.raises(InputError, match="refusing to load a changed file"):
        load_model(conn, model_id)


def test_untrusted_type_is_refused(sqlite_engine, tmp_path):
    from sklearn.pipeline import Pipeline

    pipe = Pipeline([("odd", NotAllowed())])
    with sqlite_engine.begin() as conn:
        model_id = store_model(conn, pipe, _row(), models_path=tmp_path)
    # the sha256 matches: the refusal is about the types
    with sqlite_engine.connect() as conn, pytest.raises(InputError, match="NotAllowed.*refusing to load"):
        load_model(conn, model_id)


def test_allowlist():
    assert untrusted_types_refused(["sklearn.tree._tree.Tree", "numpy.dtype", "builtins.eval",
                                    "os.system", "sklearnx.Evil"]) == ["builtins.eval", "os.system", "sklearnx.Evil"]


def test_missing_model_and_file(sqlite_engine, tmp_path):
    pipe, _ = _fitted()
    with sqlite_engine.begin() as conn:
        model_id = store_model(conn, pipe, _row(), models_path=tmp_path)
        with pytest.raises(InputError, match="model 99 not found"):
            get_model_row(conn, 99)
        conn.execute(update(models).values(file_path=str(tmp_path / "gone.skops")))
        with pytest.raises(InputError, match="is missing"):
            load_model(conn, model_id)


def test_failed_transaction_leaves_no_file(sqlite_engine, tmp_path):
    pipe, _ = _fitted()
    with pytest.raises(RuntimeError), sqlite_engine.begin() as conn:
        store_model(conn, pipe, _row(), models_path=tmp_path)
        raise RuntimeError("later step failed")
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(models)).all() == [] and list_models(conn) == []
    assert list(tmp_path.glob("*.skops*")) == []  # the rolled-back row's file was removed too


def test_committed_file_stays(sqlite_engine, tmp_path):
    pipe, _ = _fitted()
    with sqlite_engine.begin() as conn:
        model_id = store_model(conn, pipe, _row(), models_path=tmp_path)
    with sqlite_engine.begin() as conn:  # a later transaction on a pooled connection rolls back
        conn.execute(select(models)).all()
        conn.rollback()
    with sqlite_engine.connect() as conn:
        assert [m["id"] for m in list_models(conn)] == [model_id]
        load_model(conn, model_id)
