"""The evaluation path of benchmarks/evaluate.py on a 5,000-track stratified sample of spotify_songs:
import, dataset create and compare through the CLI; our RandomForest's CV mean equals a plain
scikit-learn RandomForest's on the same 5 StratifiedKFold(shuffle=True, random_state=0) folds."""

from __future__ import annotations

import pytest
from models_helpers import evaluate_module

pytestmark = pytest.mark.shared_data


def test_our_random_forest_matches_plain_sklearn_on_the_same_folds(shared_data, tmp_path):
    ev = evaluate_module()
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
