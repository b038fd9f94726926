"""The registry: skops files loaded only after the directory, sha256 and exact allow-list checks."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from music_classifier.db.tables import models
from music_classifier.errors import InputError
from music_classifier.models.grids import MODEL_KINDS
from music_classifier.models.pipelines import make_pipeline
from music_classifier.models.registry import (
    file_sha256,
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


def _fitted(kind="rf", n_genres=2):
    """A class-sized problem: 10 tracks a genre, a missing value (the imputer keeps statistics)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10 * n_genres, 4))
    y = np.array(["rock", "jazz", "pop", "folk"][:n_genres])[np.arange(10 * n_genres) % n_genres]
    X[np.arange(len(y)), np.arange(len(y)) % n_genres] += 4.0
    X[3, 1] = np.nan
    pipe = make_pipeline(kind, seed=0)
    if kind == "rf":
        pipe.set_params(clf__n_estimators=5)
    return pipe.fit(X, y), X


@pytest.mark.parametrize("n_genres", [2, 3])
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_round_trip_every_kind(sqlite_engine, tmp_path, kind, n_genres):
    """Every kind the project trains passes the exact allow-list (binary and multi-class)."""
    pipe, X = _fitted(kind, n_genres)
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


def test_untrusted_type_is_neither_stored_nor_loaded(sqlite_engine, tmp_path):
    from sklearn.pipeline import Pipeline

    pipe = Pipeline([("odd", NotAllowed())])
    with pytest.raises(InputError, match="NotAllowed.*refusing to store it"), sqlite_engine.begin() as conn:
        store_model(conn, pipe, _row(), models_path=tmp_path)
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(models)).all() == []
    assert list(tmp_path.glob("*.skops*")) == []


def test_allowlist():
    assert untrusted_types_refused([
        "sklearn.tree._tree.Tree", "numpy.dtype", "builtins.eval", "os.system", "sklearnx.Evil",
        "numpy.testing._private.utils.runstring", "sklearn.utils._testing.TempMemmap",
    ]) == ["builtins.eval", "os.system", "sklearnx.Evil", "numpy.testing._private.utils.runstring",
           "sklearn.utils._testing.TempMemmap"]


def _node(loader, module, cls, **extra):
    return {"__class__": cls, "__module__": module, "__loader__": loader, **extra}


def _str_node(value):
    return _node("JsonNode", "builtins", "str", content=json.dumps(value), is_json=True)


def _tamper(path, attack):
    """Rewrite a stored model file with ``attack`` (a skops node) as one more attribute of the Pipeline."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    attrs = schema["content"]
    attrs["content"]["memory_hint"] = attack
    attrs["key_types"]["content"].append(_node("TypeNode", "builtins", "str"))
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _runstring(marker):
    """``numpy.testing._private.utils.runstring(code, {})``: exec() of the file's own code on load."""
    code = f"import os; os.system('touch {marker}')"
    args = _node("TupleNode", "builtins", "tuple", content=[
        _str_node(code), _node("DictNode", "builtins", "dict", content={},
                               key_types=_node("ListNode", "builtins", "list", content=[]))])
    return _node("ConstructorFromReduceNode", "numpy.testing._private.utils", "runstring", content=args)


@pytest.mark.parametrize("attack", ["runstring", "function", "type"])
def test_crafted_model_file_with_matching_sha256_is_refused_on_predict(engine, tmp_path, monkeypatch, attack):
    """The probe: a model file whose tree calls a numpy function, with the registry's sha256 updated
    to match. Loading it (predict, evaluate) must refuse with one line, and the command must not run."""
    from music_classifier.cli import app
    from music_classifier.models.predict import predict_tracks

    marker = tmp_path / "pwned"
    node = {"runstring": _runstring(marker),
            "function": _node("FunctionNode", "os", "system", content={"module_path": "os", "function": "system"}),
            "type": _node("TypeNode", "numpy.testing._private.utils", "runstring")}[attack]
    pipe, _ = _fitted()
    with engine.begin() as conn:
        model_id = store_model(conn, pipe, _row(), models_path=tmp_path)
        path = get_model_row(conn, model_id)["file_path"]
    _tamper(path, node)
    with engine.begin() as conn:  # whoever can write the file can write the row: the sha256 proves nothing
        conn.execute(update(models).where(models.c.id == model_id).values(file_sha256=file_sha256(path)))
    with engine.connect() as conn, pytest.raises(InputError) as refused:
        predict_tracks(conn, model_id, [1])
    message = str(refused.value)
    assert "outside the model allow-list" in message and "refusing to load it" in message
    assert ("runstring" in message) if attack != "function" else ("os.system (FunctionNode)" in message)
    assert "\n" not in message
    assert not marker.exists()

    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["--db", url, "predict", str(model_id), "--track", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and "refusing to load it" in result.output
    assert not marker.exists()


def test_model_file_outside_the_models_directory_is_refused(sqlite_engine, tmp_path):
    pipe, _ = _fitted()
    elsewhere = tmp_path / "elsewhere"
    with sqlite_engine.begin() as conn:
        model_id = store_model(conn, pipe, _row(), models_path=elsewhere)
    with sqlite_engine.connect() as conn:
        load_model(conn, model_id, models_path=elsewhere)
        with pytest.raises(InputError, match="outside the models directory .*refusing to load"):
            load_model(conn, model_id, models_path=tmp_path / "models")
        conn.execute(update(models).values(file_path=str(tmp_path / "models" / ".." / "elsewhere" /
                                                         get_model_row(conn, model_id)["file_path"].split("/")[-1])))
        with pytest.raises(InputError, match="outside the models directory"):
            load_model(conn, model_id, models_path=tmp_path / "models")


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
