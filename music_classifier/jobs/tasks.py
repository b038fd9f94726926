"""The ONLY functions a worker runs. Each takes extraction ids (JSON), or (``train_final``, the page's
Retrain button) a dataset name, nothing else.

RQ imports whatever dotted path a job names, so :class:`~music_classifier.jobs.worker.TaskWorker`
refuses every job whose function is not listed in :data:`ALLOWED_FUNCTIONS`. Credentials and
paths never travel through Redis: a task reads the database URL and the library root from its
own machine's environment (:mod:`.runtime`) and the audio path from the database.

Error policy: a permanent problem (bad audio, missing file, path outside the library) ends as a
``failed`` extraction with a readable error and the task returns normally, so RQ does not retry
it; a transient one (database unavailable or locked, network) is raised so RQ's Retry applies.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta

from music_classifier.db.planner_stats import refresh_after_results
from music_classifier.features.registry import EXTRACTORS
from music_classifier.ingest.library_root import library_root_for
from music_classifier.jobs.persist import (
    AudioJob,
    Claim,
    extraction_exists,
    load_audio_job,
    mark_failed,
    mark_queued,
    mark_running,
    save_result,
)
from music_classifier.jobs.runtime import (
    JOB_TIMEOUT_S,
    RESULT_TTL_S,
    job_engine,
    job_settings,
    make_queue,
    next_job_id,
    retry_policy,
    worker_label,
)

log = logging.getLogger(__name__)

#: Test hook, off by default: when set to a FIFO's path, an audio task blocks reading it right after
#: its row turns ``running`` (the test kills the worker there). A regular file does not block.
TEST_HOLD_ENV = "MUSIC_CLASSIFIER_TEST_HOLD_FIFO"

#: One task per extractor of the registry (features.registry); the worker runs these and nothing else.
TASK_NAMES = tuple(e.task for e in EXTRACTORS.values())
#: Tasks beyond the extractors': the page's Retrain button (``serve``) when Redis is configured.
OTHER_TASKS = ("train_final",)
ALLOWED_FUNCTIONS = frozenset(f"{__name__}.{name}" for name in TASK_NAMES + OTHER_TASKS)
TRAIN_TIMEOUT_S = 6 * 3600  # a grid search on a large class takes far longer than an extraction
TRAIN_RESULT_TTL_S = 24 * 3600  # the page shows the finished job (and its model) for a day
PROGRESS_EVERY_S = 1.0


class ExtractionNotFound(LookupError):
    """The row is not visible (yet): its enqueue has not committed, or it was deleted. Retried."""


def librosa_track(extraction_id: int) -> None:
    """Compute one librosa extraction and store it with ONE commit (or mark it failed)."""
    audio_track("librosa", extraction_id)


def musicnn_track(extraction_id: int) -> None:
    """Compute one musicnn extraction (embeddings and tags) and store it with ONE commit (or mark it failed)."""
    audio_track("musicnn", extraction_id)


def audio_track(extractor: str, extraction_id: int) -> None:
    """An audio extractor's task body: running -> values -> done, or failed with a readable error."""
    extraction_id = int(extraction_id)
    settings = job_settings()
    engine = job_engine(settings)
    with engine.begin() as conn:
        claim = mark_running(conn, extraction_id, worker_label(), extractor=extractor, job_id=_current_job_id())
        if claim is None:  # not a row of this extractor waiting for work: nothing changed, mark_running logged why
            if not extraction_exists(conn, extraction_id):
                raise ExtractionNotFound(f"{extractor} extraction {extraction_id} not found in the database")
            return
        job = load_audio_job(conn, extraction_id, extractor)
        # --library / MUSIC_CLASSIFIER_LIBRARY, else the root a scan stored, else the working directory.
        library_root = library_root_for(conn, settings.library).path
    _hold_for_tests()
    started = time.perf_counter()
    try:
        values, segments = _extract_audio(job, library_root)
    except Exception as exc:  # noqa: BLE001 - permanent: the same file fails the same way again
        with engine.begin() as conn:
            mark_failed(conn, extraction_id, describe_error(exc), claim=claim)
        log.warning("extraction %s failed: %s", extraction_id, describe_error(exc))
        return
    with engine.begin() as conn:
        save_result(conn, extraction_id, values, segments, seconds=time.perf_counter() - started, claim=claim)
    refresh_after_results(engine)  # ANALYZE once the values grew by a fifth (one worker at a time)


def spotify_batch(extraction_ids: list[int]) -> None:
    """One batch (up to 100) of Spotify extractions; a 429 re-enqueues the batch after Retry-After."""
    from music_classifier.errors import RemoteError
    from music_classifier.features.spotify_errors import AudioFeaturesForbidden, RateLimited
    from music_classifier.jobs.spotify_batch import process_spotify_batch

    ids = [int(i) for i in extraction_ids]
    settings = job_settings()
    engine = job_engine(settings)
    label, job_id = worker_label(), _current_job_id()
    with engine.begin() as conn:  # only rows this job may claim; the others are logged and left alone
        claims = [claim for extraction_id in ids
                  if (claim := mark_running(conn, extraction_id, label, extractor="spotify", job_id=job_id))]
    if not claims:
        return
    ids = [claim.extraction_id for claim in claims]
    try:
        process_spotify_batch(engine, ids, settings=settings, claims=claims)
    except RateLimited as exc:
        if not _reschedule_rate_limited(engine, claims, exc.retry_after_s):
            with engine.begin() as conn:  # in-process: the caller counts down and calls again
                mark_queued(conn, ids, None, claims=claims)
            raise
    except AudioFeaturesForbidden:
        if _current_rq_job() is None:
            raise  # in-process: the caller shows the message once and stops
        # Under RQ: the batch is already failed and the breaker open; a retry cannot help.
    except RemoteError as exc:  # 5xx/network that outlived the client's backoff: let RQ retry later
        with engine.begin() as conn:
            for claim in claims:
                mark_failed(conn, claim.extraction_id, str(exc), claim=claim)
        raise
    refresh_after_results(engine)


def describe_error(exc: BaseException) -> str:
    """One readable line: domain errors as they are, anything else prefixed with its type."""
    from music_classifier.errors import MusicClassifierError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, MusicClassifierError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _extract_audio(job: AudioJob, library_root):  # noqa: ANN001, ANN202
    from music_classifier.features.audio_io import excerpt_window, load_audio, probe_audio
    from music_classifier.features.errors import FeatureError
    from music_classifier.ingest.audio_scan import resolve_in_library
    from music_classifier.jobs.audio_extract import extract_audio

    if not job.audio_path:
        raise FeatureError(f"track {job.track_id} has no audio file linked (run `music-classifier audio scan`)")
    path = resolve_in_library(library_root, job.audio_path)
    offset_s = duration_s = None
    if job.excerpt_s:
        offset_s, duration_s = excerpt_window(probe_audio(path).duration_s, float(job.excerpt_s))
    y, sr = load_audio(path, offset_s=offset_s, duration_s=duration_s)
    return extract_audio(job.extractor, y=y, sr=sr, segment_s=float(job.segment_s) if job.segment_s else None)


def train_final(dataset: str) -> dict:
    """``dataset refresh DATASET`` then ``train DATASET --final`` with the command's defaults, for the page's
    Retrain button (the refresh is committed first; what it changed is in the job's meta and result).

    Takes the dataset's name only (checked like ``dataset create`` checks it); the database, models
    directory and cores come from this worker's own environment. Progress (fits done / in all) is
    saved in the job's meta about once a second. A domain error (no such dataset, one genre) ends the
    job normally with ``{"error": ...}``: retrying would fail the same way.
    """
    from music_classifier.errors import MusicClassifierError
    from music_classifier.models.dataset_refresh import refresh_committed
    from music_classifier.models.datasets import validate_name
    from music_classifier.models.parallel import resolve_jobs
    from music_classifier.models.train import TrainOptions, train_model

    settings = job_settings()
    job = _current_rq_job()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if job is not None and (done == total or now - last[0] >= PROGRESS_EVERY_S):
            last[0] = now
            job.meta.update(done=int(done), total=int(total))
            job.save_meta()

    refreshed = ""
    try:
        name = validate_name(str(dataset))
        engine = job_engine(settings)
        refreshed = refresh_committed(engine, name).summary()
        if job is not None:
            job.meta.update(refreshed=refreshed)
            job.save_meta()
        with engine.begin() as conn:
            result = train_model(conn, name, TrainOptions(final=True, n_jobs=resolve_jobs(None, settings.jobs)),
                                 models_path=settings.models_path, progress=progress)
    except MusicClassifierError as exc:
        return {"error": str(exc), "refreshed": refreshed}
    return {"model_id": result.model_id, "refreshed": refreshed,
            "message": f"model {result.model_id} ({result.kind} on {result.dataset}), final"}


def _current_rq_job():  # noqa: ANN202
    from rq import get_current_job

    return get_current_job()


def _current_job_id() -> str | None:
    job = _current_rq_job()
    return job.id if job is not None else None


def _reschedule_rate_limited(engine, claims: list[Claim], retry_after_s: float) -> bool:  # noqa: ANN001
    """Under RQ: enqueue the same payload ``retry_after_s`` from now and return True (the worker
    never sleeps). Outside RQ: False."""
    job = _current_rq_job()
    if job is None:
        return False
    queue = make_queue(job.connection, job.origin)
    new_id = next_job_id(job.id)
    delay = timedelta(seconds=max(1.0, float(retry_after_s)))
    ids = [claim.extraction_id for claim in claims]
    queue.enqueue_in(delay, spotify_batch, ids, job_id=new_id, job_timeout=JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S,
                     retry=retry_policy())
    with engine.begin() as conn:
        mark_queued(conn, ids, new_id, claims=claims)
    log.warning("rate limited: batch of %d re-enqueued as %s in %.0f s", len(ids), new_id, delay.total_seconds())
    return True


def _hold_for_tests() -> None:
    path = os.environ.get(TEST_HOLD_ENV)
    if path:
        with open(path, "rb") as fifo:  # blocks until a writer opens the FIFO (or the process is killed)
            fifo.read()
