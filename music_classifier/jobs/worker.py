"""``music-classifier worker``: an RQ worker that runs only :mod:`music_classifier.jobs.tasks`.

RQ resolves a job's function by importing the dotted path stored in Redis, so anyone able to
write to Redis could make a plain RQ worker run ``os.system``. :class:`TaskWorker` checks every
job before forking (and again inside the work horse): a function outside
:data:`~music_classifier.jobs.tasks.ALLOWED_FUNCTIONS`, an object-method call, or a
success/failure/stopped callback (also imported by dotted path) gets the job failed with
"refused: …" — nothing named by the job is imported. Still, Redis must sit on a private network
behind a password or ACL (see the README).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rq import Worker
from rq.utils import now

from music_classifier.jobs.tasks import ALLOWED_FUNCTIONS

if TYPE_CHECKING:
    from rq.executions import Execution
    from rq.job import Job
    from rq.queue import Queue

    from music_classifier.settings import Settings

log = logging.getLogger(__name__)


def refusal_reason(job: Job) -> str | None:
    """Why ``job`` must not run, or None when it is one of our tasks. Reads names only; imports nothing."""
    try:
        func_name = job.func_name
        instance = job.instance
    except Exception as exc:  # noqa: BLE001 - undecodable payload (e.g. pickle sent to a JSON worker)
        return f"undecodable job payload ({type(exc).__name__})"
    if func_name not in ALLOWED_FUNCTIONS:
        return f"function {func_name!r} is not a music_classifier task"
    if instance is not None:
        return "method calls on objects are not allowed"
    callbacks = [job._success_callback_name, job._failure_callback_name, job._stopped_callback_name]
    if any(callbacks):
        return "job callbacks are not allowed"
    return None


class TaskWorker(Worker):
    """An RQ worker that refuses every job outside the task allowlist (see the module docstring)."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        reason = refusal_reason(job)
        if reason is None:
            return super().execute_job(job, queue)
        self._refuse(job, queue, reason, execution=None)
        self.set_state("idle")
        return None

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        reason = refusal_reason(job)  # defence in depth: the horse checks again before job.perform()
        if reason is not None:
            self._refuse(job, queue, reason, execution=execution)
            return False
        return super().perform_job(job, queue, execution)

    def _refuse(self, job: Job, queue: Queue, reason: str, execution: Execution | None) -> None:
        self.log.error("Worker %s: refused job %s: %s", self.name, job.id, reason)
        job.retries_left = None  # never retried
        # Skip RQ's failure callback: it would import the dotted path the job names.
        job._failure_callback_name = None
        job._failure_callback = None
        job.started_at = job.started_at or now()
        job.ended_at = now()
        self.handle_job_failure(job, queue=queue, started_job_registry=queue.started_job_registry,
                                exc_string=f"refused: {reason}", execution=execution)


def preload_extractor() -> None:
    """Import librosa and compile the numba kernels (and load musicnn's weights) once in the worker,
    so that every forked work horse starts warm instead of paying seconds of imports and JIT per job."""
    import numpy as np

    from music_classifier.features.numba_cache import warm_numba_cache

    t = np.arange(22050 * 4, dtype=np.float32) / 22050
    tone = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    try:  # under the numba cache's lock: workers started together never write one cache at once
        warm_numba_cache()
    except Exception:  # noqa: BLE001 - a warm-up problem must not stop the worker; jobs report errors
        log.exception("extractor warm-up failed")
    try:  # musicnn: read and verify the weights once, so every work horse inherits them
        from music_classifier.features.musicnn.extractor import extract_musicnn_features

        extract_musicnn_features(y=tone, sr=22050)
    except Exception as exc:  # noqa: BLE001 - e.g. the musicnn package is not installed: its jobs will say so
        log.warning("musicnn warm-up skipped: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def make_worker(settings: Settings, queue_name: str | None = None) -> TaskWorker:
    """A :class:`TaskWorker` on the configured queue with JSON serialisation."""
    from rq.serializers import JSONSerializer

    from music_classifier.jobs.runtime import queue_from_settings

    queue = queue_from_settings(settings, queue_name)
    return TaskWorker([queue], connection=queue.connection, serializer=JSONSerializer)


def run_worker(settings: Settings, *, queue_name: str | None = None, burst: bool = False,
               preload: bool = True, logging_level: str = "INFO") -> bool:
    """Run a worker with RQ's scheduler (retry intervals and 429 re-enqueues need it).

    Returns True when it processed at least one job.
    """
    worker = make_worker(settings, queue_name)
    if preload:
        preload_extractor()
    return worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
