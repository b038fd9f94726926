"""The evaluation path of benchmarks/evaluate.py on a 5,000-track stratified sample of spotify_songs:
import, dataset create and compare through the CLI; our RandomForest's CV mean equals a plain
scikit-learn RandomForest's on the same 5 StratifiedKFold(shuffle=True, random_state=0) folds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.shared_data


def _evaluate_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "evaluate.py"
    spec = importlib.util.spec_from_file_location("mc_benchmark_evaluate", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_our_random_forest_matches_plain_sklearn_on_the_same_folds(shared_data, tmp_path):
    ev = _evaluate_module()
    csv = ev.stratified_sample(shared_data / "tables" / "spotify_songs.csv", 5000, tmp_path / "sample.csv")
    cli = ev.new_cli(tmp_path, "ci", echo=False)
    out = cli.run("spotify", "import-csv", csv)
    assert "5,000 rows read" in out
    cli.run("dataset", "create", "songs", "--features", "spotify", "--top", "6", "--min-per-genre", "10")
    chk = ev.rf_check(cli, tmp_path, "songs", ev.plain_spotify(csv))
    assert chk["n_tracks"] == 5000 and chk["splitter"] == "StratifiedKFold"
    assert chk["same_folds"], "our outer folds are not the plain StratifiedKFold folds"
    assert abs(chk["difference"]) <= 0.02, chk
    assert 0.45 < chk["ours_mean"] < 0.7  # the 12 features carry signal, but this is not GTZAN
