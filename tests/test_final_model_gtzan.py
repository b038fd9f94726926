"""A final model on the 70 shared GTZAN excerpts is a plain scikit-learn RandomForest fitted on all 70.

Through the CLI (audio scan, features compute, dataset create, train --final, predict): the registered
model has seen every row of the dataset, and on clips it never trained on — GTZAN blues.00099 (mp3)
and the part of mirdata's full country.00000 beyond the 17.47 s the excerpt holds, whole and in
10 s windows — its probabilities equal those of a plain RandomForestClassifier with the same
hyper-parameters and random_state fitted on the same 70 rows, so it scores exactly what that scores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from models_helpers import evaluate_module

pytestmark = pytest.mark.shared_data

EXCERPT_SECONDS = 17.47  # zenny126's country.00000.wav is the first 17.47 s of mirdata's full clip


def _unseen_clips(shared_data: Path, tmp_path: Path) -> list[Path]:
    import soundfile as sf

    from music_classifier.features.audio_io import load_audio

    blues = shared_data / "audio" / "gtzan_mp3_madkan" / "blues" / "blues.00099.mp3"
    y, sr = load_audio(shared_data / "audio" / "mirdata_fixtures" / "gtzan_genre" / "country" / "country.00000.wav")
    country_tail = tmp_path / "country.00000.tail.wav"
    sf.write(country_tail, y[int(np.ceil(EXCERPT_SECONDS * sr)):], sr)
    clips = [blues, country_tail]
    yb, srb = load_audio(blues)
    for i, start in enumerate((0.0, 10.0, 20.0)):
        window = tmp_path / f"blues.00099.window{i}.wav"
        sf.write(window, yb[int(start * srb):int((start + 10.0) * srb)], srb)
        clips.append(window)
    return clips


def test_final_model_equals_plain_random_forest_on_all_70(shared_data, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    from music_classifier.features.audio_io import load_audio
    from music_classifier.features.librosa_extractor import extract_librosa_features
    from music_classifier.models.load_data import load_dataset
    from music_classifier.models.registry import load_model

    ev = evaluate_module()
    cli = ev.new_cli(tmp_path, "final", echo=False)
    cli.library = shared_data / "audio" / "gtzan_subset_zenny126"
    for genre_dir in sorted(p for p in cli.library.iterdir() if p.is_dir()):
        cli.run("audio", "scan", genre_dir, "--add-unmatched", "--genre", genre_dir.name)
    cli.run("features", "compute", "--extractor", "librosa", "--missing", "--processes", "2")
    cli.run("dataset", "create", "clips", "--features", "librosa", "--top", "10", "--min-per-genre", "7",
            "--source", "file")
    grid = tmp_path / "rf.json"
    grid.write_text(json.dumps({"rf": {k: [v] for k, v in ev.RF_FIXED.items()}}))
    out = cli.run("train", "clips", "--model", "rf", "--grid", grid, "--final", "--repeats", "2", "--seed", "0")
    assert "final model fitted on all 70 tracks" in out and "2x5-fold CV" in out
    model_id = int(re.search(r"model (\d+) \(", out).group(1))

    engine = cli.engine()
    with engine.connect() as conn:
        frame = load_dataset(conn, "clips")
        pipeline, row = load_model(conn, model_id, models_path=cli.models_dir)
    engine.dispose()
    assert len(frame.y) == 70 and not np.isnan(frame.X).any()
    assert pipeline.named_steps["scale"].n_samples_seen_ == 70  # the final model saw every row
    assert row["params"]["model_basis"] == "final" and row["test_metrics"] is None
    assert row["feature_names"] == frame.feature_names

    forest = pipeline.named_steps["clf"]
    assert forest.get_params()["n_estimators"] == ev.RF_FIXED["n_estimators"] and forest.random_state == 0
    plain = RandomForestClassifier(**ev.RF_FIXED, random_state=0).fit(frame.X, frame.y)

    clips = _unseen_clips(shared_data, tmp_path)
    X = []
    for clip in clips:
        y, sr = load_audio(clip)
        feats = extract_librosa_features(y=y, sr=sr)
        X.append([feats[n] for n in frame.feature_names])
    X = np.asarray(X, dtype=float)
    ours, theirs = pipeline.predict_proba(X), plain.predict_proba(X)
    assert list(pipeline.classes_) == list(plain.classes_)
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    truth = np.array(["blues", "country", "blues", "blues", "blues"])
    ours_acc = float(np.mean(pipeline.predict(X) == truth))
    assert ours_acc == float(np.mean(plain.predict(X) == truth))

    out = cli.run("predict", str(model_id), *map(str, clips))
    assert f"model {model_id} is a final model, fitted on all 70 tracks of clips" in out
    from sqlalchemy import select

    from music_classifier.db.tables import predictions

    engine = cli.engine()
    with engine.connect() as conn:
        stored = dict(conn.execute(select(predictions.c.file_path, predictions.c.genre)
                                   .where(predictions.c.model_id == model_id)).all())
    engine.dispose()
    assert [stored[str(c.resolve())] for c in clips] == [str(g) for g in plain.predict(X)]
