"""--jobs: how many processes, parallel fits that give the same numbers as one process, and a progress
bar that moves while the workers are still busy."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from models_helpers import add_features, add_track
from typer.testing import CliRunner
from waits import HANG_S

from music_classifier.cli import app
from music_classifier.db.feature_columns import GTZAN_V1
from music_classifier.errors import InputError
from music_classifier.models.compare import compare_models
from music_classifier.models.datasets import DatasetDefinition, create_dataset
from music_classifier.models.parallel import (
    FitCounter,
    available_cores,
    delayed,
    fit_with_jobs,
    resolve_jobs,
    run_parallel,
)
from music_classifier.models.registry import load_model
from music_classifier.models.train import TrainOptions, train_model

GENRES = ["Rock", "Jazz", "Pop", "Metal", "Blues", "Soul"]


def _noisy_class(conn, *, per_genre: int = 7, seed: int = 3) -> None:
    """A class-shaped set (6 genres x 7 tracks) whose genres overlap, so fold scores differ from fold to fold."""
    rng = np.random.default_rng(seed)
    for gi, genre in enumerate(GENRES):
        for j in range(per_genre):
            tid = add_track(conn, key=f"n-{genre}-{j}", genre=genre, title=f"{genre} {j}", artist=f"a{gi}{j}")
            centre = np.where(np.arange(len(GTZAN_V1)) % 6 == gi, 1.2, 0.0)
            add_features(conn, tid, "gtzan_csv", dict(zip(GTZAN_V1, centre + rng.normal(0, 1, len(GTZAN_V1)),
                                                          strict=True)))
    create_dataset(conn, "noisy", DatasetDefinition(features="gtzan_csv", top=len(GENRES), min_per_genre=5))


def test_resolve_jobs():
    cores = available_cores()
    assert resolve_jobs(None) == cores
    assert resolve_jobs(-1) == cores
    assert resolve_jobs(1) == 1
    assert resolve_jobs(10_000) == cores  # more than the machine has: every core, not oversubscription
    assert resolve_jobs(None, "1") == 1
    assert resolve_jobs(2, "1") == min(2, cores)  # --jobs wins over the environment
    with pytest.raises(InputError, match="^--jobs 0: "):
        resolve_jobs(0)
    with pytest.raises(InputError, match="^MUSIC_CLASSIFIER_JOBS 'many': "):
        resolve_jobs(None, "many")


def _tick_then_wait(tick, marker: str, seconds: float) -> bool:
    """In a worker: report one fit, then wait for the parent to have seen it (the marker file)."""
    tick()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if Path(marker).exists():
            return True
        time.sleep(0.02)
    return False


def test_progress_moves_while_workers_run(tmp_path):
    """Each worker waits until the parent has counted its tick: a bar that only moved at the end would
    leave every worker waiting out its timeout and returning False."""
    seen: list[int] = []

    def on_fit() -> None:
        seen.append(1)
        (tmp_path / f"seen-{len(seen)}").touch()

    with FitCounter(on_fit, n_jobs=2) as counter:
        results = run_parallel(2, (delayed(_tick_then_wait)(counter.tick, str(tmp_path / f"seen-{i + 1}"), HANG_S)
                                   for i in range(1)))
    assert results == [True]
    assert len(seen) == 1


def test_counter_delivers_every_tick_from_workers():
    seen: list[int] = []
    with FitCounter(lambda: seen.append(1), n_jobs=2) as counter:
        run_parallel(2, (delayed(_tick_n)(counter.tick, 5) for _ in range(4)))
    assert len(seen) == 20


def _tick_n(tick, n: int) -> None:
    for _ in range(n):
        tick()


@pytest.mark.skipif(available_cores() < 2, reason="needs two cores")
def test_compare_in_parallel_gives_the_same_numbers(sqlite_engine, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text('{"rf": {"n_estimators": [20, 40]}, "logreg": {"C": [0.1, 1.0]}, "knn": {"n_neighbors": 3}}')
    with sqlite_engine.begin() as conn:
        _noisy_class(conn)
    results, ticks = {}, {}
    for n_jobs in (1, 2):
        ticks[n_jobs] = []
        with sqlite_engine.connect() as conn:
            results[n_jobs] = compare_models(conn, "noisy", kinds=["rf", "logreg", "knn"], grid=grid, cv=3,
                                             inner_cv=2, seed=0, n_jobs=n_jobs, repeats=1,
                                             progress=lambda d, t, n=n_jobs: ticks[n].append((d, t)))
    one, two = results[1], results[2]
    assert [s.fold_accuracy for s in one.scores] == [s.fold_accuracy for s in two.scores]
    assert [s.fold_best_params for s in one.scores] == [s.fold_best_params for s in two.scores]
    assert len({a for s in one.scores for a in s.fold_accuracy}) > 1  # the data is not trivially separable
    total = 3 * ((2 * 2 + 1) + (2 * 2 + 1) + 1)
    assert ticks[1][-1] == ticks[2][-1] == (total, total)
    assert [d for d, _ in ticks[2]] == list(range(1, total + 1))  # every fit counted, in order


@pytest.mark.skipif(available_cores() < 2, reason="needs two cores")
@pytest.mark.parametrize("kind", ["logreg", "rf"])
def test_train_in_parallel_gives_the_same_model(sqlite_engine, tmp_path, kind):
    grid = tmp_path / "grid.json"
    grid.write_text('{"rf": {"n_estimators": [20, 40]}, "logreg": {"C": [0.1, 1.0]}}')
    with sqlite_engine.begin() as conn:
        _noisy_class(conn)
    out = {}
    for n_jobs in (1, 2):
        ticks: list[tuple[int, int]] = []
        with sqlite_engine.begin() as conn:
            res = train_model(conn, "noisy", TrainOptions(kind=kind, grid=grid, cv=3, seed=0, n_jobs=n_jobs),
                              models_path=tmp_path / f"m{n_jobs}", progress=lambda d, t, acc=ticks: acc.append((d, t)))
        held_out = [(p["track_id"], p["pred"], p["proba"]) for p in res.test_metrics["predictions"]]  # 6 decimals
        out[n_jobs] = (res.best_params, res.cv_score, held_out, ticks[-1])
        with sqlite_engine.connect() as conn:
            stored, _ = load_model(conn, res.model_id, models_path=tmp_path / f"m{n_jobs}")
        assert stored.named_steps["clf"].get_params().get("n_jobs") in (None, 1)  # scored on 2 cores, stored with 1
    assert out[1] == out[2]  # the same held-out predictions and probabilities, however many cores scored them
    assert out[2][3][0] == out[2][3][1] > 3  # the bar reached its total


def test_refit_on_every_core_grows_the_same_forest_and_stores_one_job():
    from music_classifier.models.pipelines import make_pipeline

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 8)), np.repeat(["a", "b", "c"], 20)
    one = make_pipeline("rf", seed=0).fit(X, y)
    two = fit_with_jobs(make_pipeline("rf", seed=0), X, y, n_jobs=2)
    assert np.array_equal(one.predict_proba(X), two.predict_proba(X))
    assert two.named_steps["clf"].n_jobs == 1  # the stored model does not carry this machine's cores


def test_cli_rejects_bad_jobs_in_one_line(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["--db", db, "db", "upgrade"]).exit_code == 0
    res = runner.invoke(app, ["--db", db, "train", "nope", "--jobs", "0"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.strip().splitlines() == ["error: --jobs 0: give a positive number of processes, or -1 for "
                                                "all cores"]
    monkeypatch.setenv("MUSIC_CLASSIFIER_JOBS", "lots")
    res = runner.invoke(app, ["--db", db, "compare", "nope"])
    assert res.exit_code == 1
    assert "MUSIC_CLASSIFIER_JOBS 'lots'" in res.output and len(res.output.strip().splitlines()) == 1
