"""The models commands through the CLI: dataset, train, models, evaluate, compare, predict."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from models_helpers import fill_separable, sqlite_cli
from waits import HANG_S


@pytest.fixture
def cli(sqlite_engine, tmp_path, monkeypatch):
    return sqlite_cli(sqlite_engine, tmp_path / "models", monkeypatch)


@pytest.fixture
def grid_file(tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"rf": {"n_estimators": [20]}, "knn": {"n_neighbors": [3]}}))
    return str(path)


def test_dataset_train_models_evaluate_compare_predict(cli, sqlite_engine, grid_file, tmp_path):
    with sqlite_engine.begin() as conn:
        ids = fill_separable(conn, genres_=["Rock", "Jazz", "Pop"], per_genre=10, source="csv", prefix="pl")
        fill_separable(conn, genres_=["Rock", "Jazz", "Folk"], per_genre=4, source="sheet", prefix="cls", seed=3)
    out = cli("dataset", "create", "pl", "--features", "gtzan_csv", "--top", "3", "--min-per-genre", "5",
              "--source", "csv").output
    assert "10 tracks" not in out and "30 tracks in 3 genres" in out
    cli("dataset", "create", "cls", "--features", "gtzan_csv", "--top", "5", "--min-per-genre", "2",
        "--source", "sheet", "--allow-fewer")
    assert "pl" in cli("dataset", "list").output
    assert "Rock: 10" in cli("dataset", "show", "pl").output

    out = cli("train", "pl", "--grid", grid_file, "--cv", "3", "--seed", "2").output
    assert "model 1 (rf on pl)" in out and "single held-out split: accuracy 1.000" in out
    assert "confusion matrix" in out
    assert "pl" in cli("models", "list").output
    row = json.loads(cli("models", "show", "1", "--json").output)
    assert row["best_params"] == {"clf__n_estimators": 20} and row["params"]["seed"] == 2

    out = cli("evaluate", "1", "--on", "cls").output
    assert "8 tracks in 2 shared genres" in out and "Pop" in out and "Folk (4 tracks)" in out

    report = tmp_path / "cmp.json"
    out = cli("compare", "pl", "--models", "rf,knn", "--grid", grid_file, "--cv", "3", "--json", str(report)).output
    assert "± " in out and "no winner" in out
    figures = json.loads(report.read_text())
    assert [s["kind"] for s in figures["scores"]] == ["rf", "knn"] and len(figures["scores"][0]["fold_accuracy"]) == 15

    out = cli("predict", "1", "--track", str(ids["Pop"][0])).output
    assert f"track {ids['Pop'][0]}: Pop" in out

    # A new shell (a new process) lists, evaluates, reports and predicts with the stored model.
    env = {"MUSIC_CLASSIFIER_MODELS_DIR": str(tmp_path / "models"), "PATH": "/usr/bin:/bin"}
    jazz = str(ids["Jazz"][1])
    report_dir = tmp_path / "report"
    for args in (["models", "list"], ["evaluate", "1", "--on", "cls"], ["report", "1", "--out", str(report_dir)],
                 ["predict", "1", "--track", jazz]):
        proc = subprocess.run([sys.executable, "-m", "music_classifier.cli", "--db", cli.url, *args],
                              capture_output=True, text=True, env=env, timeout=HANG_S)
        assert proc.returncode == 0, proc.stderr
    assert f"track {ids['Jazz'][1]}: Jazz" in proc.stdout
    assert "per-genre" in (report_dir / "index.html").read_text()

    cli("dataset", "drop", "pl")
    assert "pl" in cli("models", "show", "1").output  # the model keeps its snapshot


def test_one_line_errors(cli, sqlite_engine, tmp_path):
    with sqlite_engine.begin() as conn:
        fill_separable(conn, genres_=["Rock", "Jazz"], per_genre=6)
    r = cli("dataset", "create", "Bad-Name", "--features", "gtzan_csv", "--top", "2", "--min-per-genre", "2", code=1)
    assert "must match" in r.output and "Traceback" not in r.output
    r = cli("train", "missing", code=1)
    assert "dataset 'missing' not found" in r.output
    r = cli("models", "show", "7", code=1)
    assert "model 7 not found" in r.output
    r = cli("predict", "1", code=1)
    assert "either --track" in r.output
    cli("dataset", "create", "ok", "--features", "gtzan_csv", "--top", "2", "--min-per-genre", "2")
    r = cli("train", "ok", "--grid", str(tmp_path / "nope.json"), code=1)
    assert "--grid" in r.output and "file not found" in r.output
    r = cli("compare", "ok", "--models", "rf,forest", code=1)
    assert "--models" in r.output
