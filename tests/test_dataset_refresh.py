"""`dataset refresh`: a dataset's members follow the label decisions taken after it was created (moved to
another of its genres, or out of it), within the definition recorded at creation; `train` warns that a
dataset is stale; the page's Retrain button and the RQ task refresh first, so the model's data snapshot
has the decided genres. On both databases."""

from __future__ import annotations

import json
import os
import re

import pytest
from models_helpers import add_features, add_track, fill_separable, separable_values, sqlite_cli
from sqlalchemy import select, text

from music_classifier.db.tables import dataset_members, models
from music_classifier.errors import InputError
from music_classifier.ingest.label_decisions import set_genre, undo_decision
from music_classifier.models.dataset_refresh import plan_refresh, refresh_dataset
from music_classifier.models.datasets import DatasetDefinition, create_dataset, get_dataset


def _members(engine, name: str = "class") -> dict[int, str]:
    """track id -> genre, as the dataset's view (what `train` reads) has it."""
    with engine.connect() as conn:
        return {int(t): str(g) for t, g in conn.execute(text(f'SELECT track_id, genre FROM "dataset_{name}"'))}


def _stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(dataset_members)))


def _class(engine, *, per_genre: int = 5, min_per_genre: int = 3, max_per_genre: int | None = None,
           seed: int = 0) -> dict[str, list[int]]:
    """Rock, Jazz, Pop with features (the dataset's genres) and one Blues track (left out: too few)."""
    import numpy as np

    with engine.begin() as conn:
        ids = fill_separable(conn, genres_=["Rock", "Jazz", "Pop"], per_genre=per_genre)
        blues = add_track(conn, key="blues-0", genre="Blues", artist="B", title="Blues song")
        add_features(conn, blues, "gtzan_csv", separable_values("gtzan_csv", 3, np.random.default_rng(1)))
        ids["Blues"] = [blues]
        create_dataset(conn, "class", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=min_per_genre,
                                                        max_per_genre=max_per_genre, seed=seed))
    return ids


def test_a_relabel_then_refresh_moves_the_member_and_one_outside_the_genres_leaves(engine):
    ids = _class(engine)
    moved, leaving = ids["Rock"][0], ids["Pop"][1]
    with engine.begin() as conn:
        set_genre(conn, moved, "Jazz", note="brushes")
        set_genre(conn, leaving, "Blues")
    before = _members(engine)
    assert before[moved] == "Rock" and before[leaving] == "Pop"  # created before the decisions: old genres

    with engine.begin() as conn:
        dry = refresh_dataset(conn, "class", dry_run=True)
    assert not dry.applied and _members(engine) == before  # a dry run writes nothing
    assert [c.track_id for c in dry.moved] == [moved] and [c.track_id for c in dry.left] == [leaving]
    assert dry.text() == "dataset class: 1 would be moved, 1 would be left, 13 unchanged"

    with engine.begin() as conn:
        done = refresh_dataset(conn, "class")
    assert done.applied and done.text() == "dataset class: 1 moved, 1 left, 13 unchanged"
    assert (done.moved[0].genre_before, done.moved[0].genre_after) == ("Rock", "Jazz")
    assert done.left[0].effective_genre == "Blues" and "not a genre of the dataset" in done.left[0].text()
    assert done.counts_after == {"Jazz": 6, "Pop": 4, "Rock": 4}
    after = _members(engine)
    assert after == {**{t: g for t, g in before.items() if t != leaving}, moved: "Jazz"}
    with engine.connect() as conn:
        shown = get_dataset(conn, "class")
        assert shown.genre_counts == done.counts_after == shown.live_counts  # `dataset show` has the decided genres
        assert [(m.track_id, m.sheet_genre, m.genre, m.action) for m in shown.decided] == [(moved, "Rock", "Jazz",
                                                                                             "set")]
        with engine.begin() as again:
            assert refresh_dataset(again, "class").changed == 0  # nothing left to do

    # An undo is a change too: the member goes back to the sheet's genre (one that left stays out).
    with engine.begin() as conn:
        undo_decision(conn, moved)
        back = refresh_dataset(conn, "class")
        assert [(c.track_id, c.genre_after, c.decision_id) for c in back.moved] == [(moved, "Rock", None)]
        assert get_dataset(conn, "class").decided == []
    assert _members(engine) == {t: g for t, g in before.items() if t != leaving}


def test_a_refresh_below_the_minimum_is_refused_and_writes_nothing(engine):
    ids = _class(engine, per_genre=3, min_per_genre=3)
    with engine.begin() as conn:
        set_genre(conn, ids["Rock"][0], "Jazz")
    stored = _stored(engine)
    for dry_run in (True, False):
        with pytest.raises(InputError) as refused, engine.begin() as conn:
            refresh_dataset(conn, "class", dry_run=dry_run)
        assert str(refused.value).startswith("dataset 'class': refreshing it would leave Rock with 2 member(s), "
                                             "below its --min-per-genre 3; nothing changed")
        assert "\n" not in str(refused.value)
        assert _stored(engine) == stored
    with engine.begin() as conn, pytest.raises(InputError, match="dataset 'nope' not found"):
        refresh_dataset(conn, "nope")


@pytest.mark.parametrize("seed", [0, 7])  # seed 0: the relabelled track falls past the cap; 7: a Jazz member does
def test_a_genre_a_move_takes_over_the_cap_keeps_the_sample_dataset_create_takes(engine, seed):
    ids = _class(engine, per_genre=6, min_per_genre=3, max_per_genre=4, seed=seed)
    members = _members(engine)
    relabelled = next(t for t in ids["Rock"] if t in members)
    with engine.begin() as conn:
        set_genre(conn, relabelled, "Jazz")
        done = refresh_dataset(conn, "class")
        # The same definition created now picks its Jazz sample from every Jazz candidate, the relabelled one
        # included: the refreshed Jazz members are that sample.
        create_dataset(conn, "fresh", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=3,
                                                        max_per_genre=4, seed=seed))
    after, fresh = _members(engine), _members(engine, "fresh")
    jazz = {t for t, g in after.items() if g == "Jazz"}
    assert len(jazz) == 4 and jazz == {t for t, g in fresh.items() if g == "Jazz"}
    assert done.counts_after == {"Jazz": 4, "Pop": 4, "Rock": 3}
    # Whoever falls past the cap leaves, the relabelled track or a Jazz member it displaced.
    assert {c.track_id for c in done.left} == ({t for t, g in members.items() if g == "Jazz"} | {relabelled}) - jazz
    assert [c.track_id for c in done.moved] == ([relabelled] if relabelled in jazz else [])
    assert all("past --max-per-genre 4 in the dataset's sample order" in c.text() for c in done.left)


# --- the CLI ---------------------------------------------------------------------------------------------------

def test_refresh_and_train_through_the_cli(engine, models_dir, monkeypatch, tmp_path):
    ids = _class(engine)
    moved = ids["Rock"][0]
    run = sqlite_cli(engine, models_dir, monkeypatch)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"n_estimators": [10]}))
    train = ("train", "class", "--final", "--grid", str(grid), "--cv", "3", "--repeats", "1")
    assert "stale" not in run(*train).output
    run("labels", "set", str(moved), "Jazz")

    warned = run(*train).output
    assert ("warning: dataset class is stale: its members' effective genres (label decisions) changed since it was "
            "created: 1 would move, 0 would leave; it trains on the genres it stored (refresh it first: "
            "music-classifier dataset refresh class)" in " ".join(warned.split()))
    stale = ("warning: dataset class is stale: its members' effective genres (label decisions) changed since it was "
             "created: 1 would move, 0 would leave (apply them: music-classifier dataset refresh class)")
    for listing in ("show", "list"):
        assert stale in " ".join(run("dataset", listing, *(["class"] if listing == "show" else [])).output.split())
    dry = run("dataset", "refresh", "class", "--dry-run").output
    assert dry.splitlines()[0] == "dataset class: 1 would be moved, 0 would be left, 14 unchanged (Jazz 5 -> 6, " \
                                  "Rock 5 -> 4)"
    assert f"would move: track {moved} (artist t0-0 - Rock song 0): Rock -> Jazz (decision" in dry
    assert _members(engine)[moved] == "Rock"
    done = run("dataset", "refresh", "class").output
    assert done.startswith("dataset class: 1 moved, 0 left, 14 unchanged") and f"moved: track {moved}" in done
    shown = run("dataset", "show", "class").output
    assert "stale" not in shown and "stale" not in run("dataset", "list").output
    assert "  Jazz: 6 / 6" in shown and f"track {moved} (artist t0-0 - Rock song 0): sheet Rock -> Jazz" in shown

    trained = run(*train).output
    assert "stale" not in trained
    model_id = int(re.search(r"model (\d+) ", trained).group(1))
    with engine.connect() as conn:
        from music_classifier.models.registry import get_model_row
        from music_classifier.models.report import genre_counts_of

        row = get_model_row(conn, model_id)
        assert [moved, "Jazz"] in row["dataset_snapshot"]["members"]
        assert genre_counts_of(conn, row) == get_dataset(conn, "class").genre_counts  # the report's counts

    assert run("dataset", "refresh", "nope", code=1).output.strip() == \
        "error: dataset 'nope' not found (see: music-classifier dataset list)"
    assert run("dataset", "refresh", "Bad-Name", code=1).output.count("\n") == 1


# --- the page's Retrain button ---------------------------------------------------------------------------------

def test_retrain_on_the_page_refreshes_first_and_the_model_has_the_decided_genre(engine, tmp_path, models_dir):
    from serve_helpers import build_class
    from test_serve import _client

    served = build_class(engine, tmp_path, audit=False, model=False)
    client = _client(engine, served, models_dir)
    csrf = client.app.app.state.csrf_token
    track = served.flipped[1]  # Jazz audio the sheet files under Rock; the dataset was created so
    assert _members(engine)[track] == "Rock"
    assert client.post(f"/tracks/{track}/decide", data={"action": "set", "genre": "Jazz",
                                                        "csrf_token": csrf}).status_code == 303
    started = client.post("/retrain", data={"dataset": "class", "csrf_token": csrf})
    assert started.status_code == 202
    job = client.app.app.state.retrainer.get(1)
    assert job.finished.wait(timeout=600), "the retrain job did not finish"
    assert job.state == "done", job.message
    page = client.get("/jobs/1").text
    assert "refreshed to the label decisions: dataset class: 1 moved, 0 left" in page and "Rock" in page
    with engine.connect() as conn:
        snapshot = conn.execute(select(models.c.dataset_snapshot).where(models.c.id == job.model_id)).scalar_one()
    assert [track, "Jazz"] in snapshot["members"] and [track, "Rock"] not in snapshot["members"]
    assert _members(engine)[track] == "Jazz"


def test_a_refused_refresh_fails_the_retrain_job_and_trains_nothing(engine, tmp_path, models_dir):
    from serve_helpers import GENRES, build_class
    from test_serve import _client

    served = build_class(engine, tmp_path, audit=False, model=False)
    client = _client(engine, served, models_dir)
    csrf = client.app.app.state.csrf_token
    with engine.begin() as conn:  # every Pop member relabelled to Rock: Pop would be left with none
        for t, g in _members(engine).items():
            if g == "Pop":
                set_genre(conn, t, GENRES[0])
    client.post("/retrain", data={"dataset": "class", "csrf_token": csrf})
    job = client.app.app.state.retrainer.get(1)
    assert job.finished.wait(timeout=600) and job.state == "failed"
    assert job.message.startswith("dataset 'class': refreshing it would leave Pop with 0 member(s)")
    with engine.connect() as conn:
        assert conn.execute(select(models.c.id)).all() == []
    assert "would leave Pop with 0 member(s)" in client.get("/jobs/1").text


@pytest.mark.redis
def test_the_rq_retrain_task_refreshes_first(sqlite_engine, tmp_path, models_dir, redis_url, monkeypatch):
    import uuid

    from serve_helpers import build_class
    from test_serve import LOCAL, TestClient, _url

    from music_classifier.jobs.runtime import make_queue, redis_connection
    from music_classifier.jobs.worker import run_worker
    from music_classifier.settings import get_settings
    from music_classifier.web.app import ServeConfig, create_app

    served = build_class(sqlite_engine, tmp_path, audit=False, model=False)
    track = served.flipped[1]
    with sqlite_engine.begin() as conn:
        set_genre(conn, track, "Jazz")
    url = _url(sqlite_engine)
    queue_name = f"mc-refresh-{uuid.uuid4().hex[:8]}"
    config = ServeConfig(database_url=url, models_path=models_dir, redis_url=redis_url, queue_name=queue_name)
    client = TestClient(create_app(config, engine=sqlite_engine), base_url=LOCAL)
    queue = make_queue(redis_connection(redis_url), queue_name)
    try:
        started = client.post("/retrain", data={"dataset": "class", "csrf_token": client.app.app.state.csrf_token})
        job_id = re.search(r'hx-get="/jobs/([^"]+)"', started.text).group(1)
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("MUSIC_CLASSIFIER_JOBS", "1")
        monkeypatch.delenv("RQ_WORKER_ID", raising=False)
        assert run_worker(get_settings(redis_url=redis_url), queue_name=queue_name, burst=True, preload=False,
                          logging_level="WARNING")
        # rq wrote its worker id into this process's environment for the work horse; run_worker put it back,
        # so what this process runs next in-process is not labelled as that worker's (runtime.worker_label).
        assert "RQ_WORKER_ID" not in os.environ
        page = client.get(f"/jobs/{job_id}").text
        assert 'data-state="done"' in page and "refreshed to the label decisions: dataset class: 1 moved" in page
        with sqlite_engine.connect() as conn:
            snapshot = conn.execute(select(models.c.dataset_snapshot)).scalar_one()
        assert [track, "Jazz"] in snapshot["members"]
    finally:
        queue.empty()
        for registry in (queue.finished_job_registry, queue.failed_job_registry):
            for jid in registry.get_job_ids():
                registry.remove(jid, delete_job=True)


def test_plan_reads_without_writing(engine):
    ids = _class(engine)
    with engine.begin() as conn:
        set_genre(conn, ids["Jazz"][0], "Pop")
    stored = _stored(engine)
    with engine.connect() as conn:
        _, plan = plan_refresh(conn, "class")
    assert [c.track_id for c in plan.moved] == [ids["Jazz"][0]] and _stored(engine) == stored


def test_a_member_changed_by_another_writer_meanwhile_fails_the_refresh_whole(engine):
    """Compare-and-set: another transaction changes a member the refresh is about to move; the refresh waits
    for it, sees the row no longer holds the genre it read, and writes nothing (PostgreSQL: two writers at
    once; SQLite serialises whole transactions, so the race cannot arise there)."""
    import threading

    from sqlalchemy import update
    from waits import HANG_S, wait_until

    from music_classifier.models.dataset_refresh import DatasetChanged

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    ids = _class(engine)
    # The refresh moves `first` (Rock -> Jazz), then blocks on `raced` (Rock -> Pop), which the other writer
    # has meanwhile filed under Pop: the move of `first` must be rolled back with it.
    first, raced = ids["Rock"][0], ids["Rock"][1]
    with engine.begin() as conn:
        set_genre(conn, first, "Jazz")
        set_genre(conn, raced, "Pop")
        pop = conn.execute(text("SELECT id FROM genres WHERE name = 'pop'")).scalar_one()
        rock = conn.execute(text("SELECT id FROM genres WHERE name = 'rock'")).scalar_one()
    pid: list[int] = []
    outcome: list[object] = []

    def refresh() -> None:
        try:
            with engine.begin() as conn:
                pid.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                outcome.append(refresh_dataset(conn, "class"))
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    def blocked() -> bool:
        with engine.connect() as conn:
            return bool(pid) and bool(conn.execute(text("SELECT cardinality(pg_blocking_pids(:p)) > 0"),
                                                   {"p": pid[0]}).scalar_one())

    with engine.connect() as writer:
        tx = writer.begin()
        writer.execute(update(dataset_members).where(dataset_members.c.track_id == raced).values(genre_id=pop))
        worker = threading.Thread(target=refresh)
        worker.start()
        wait_until(blocked, "the refresh waiting on the other writer's row")
        tx.commit()
    worker.join(HANG_S)
    [error] = outcome
    assert isinstance(error, DatasetChanged) and str(error).startswith(
        "dataset 'class' changed while it was being refreshed; nothing changed")
    genre_of = {t: g for _, t, g in _stored(engine)}
    assert (genre_of[first], genre_of[raced]) == (rock, pop)  # its own move rolled back; the other writer's stands
    with engine.begin() as conn:  # run again, it sees the committed rows: `raced` already has its genre
        again = refresh_dataset(conn, "class")
    assert [c.track_id for c in again.moved] == [first]
