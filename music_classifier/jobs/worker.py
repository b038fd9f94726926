"""``music-classifier worker``: an RQ worker that runs only :mod:`music_classifier.jobs.tasks`.

RQ resolves a job's function by importing the dotted path stored in Redis, so anyone able to
write to Redis could make a plain RQ worker run ``os.system``. :class:`TaskWorker` checks every
job before forking (and again inside the work horse): a function outside
:data:`~music_classifier.jobs.tasks.ALLOWED_FUNCTIONS`, an object-method call, a
success/failure/stopped callback (also imported by dotted path), webhooks (RQ would POST the job,
traceback included, to any URL and wait out its timeout), dependencies, or any job field the
project never sets gets the job failed with "refused: …" — nothing named by the job is imported
and no request leaves the worker. Still, Redis must sit on a private network behind a password or
ACL (see the README).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from rq import Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
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
    if job.webhooks:
        return "job webhooks are not allowed"
    if job._dependency_ids:
        return "job dependencies are not allowed"
    try:
        foreign = foreign_fields(job)
    except Exception as exc:  # noqa: BLE001 - a job whose fields cannot be read is not run
        return f"unreadable job fields ({type(exc).__name__})"
    if foreign:
        return f"job fields the project never sets: {', '.join(foreign)}"
    return None


#: The fields of a job's Redis hash that RQ writes for the project's jobs, from enqueue (with a timeout,
#: result TTL, retry policy and description) through scheduling, retries and the end. Anything else
#: set (webhooks, dependencies, repeats, rate limits, meta, TTLs, groups, fields of a later RQ) means
#: someone else wrote the job, and some of those fields make RQ act (send requests, enqueue other jobs).
PROJECT_JOB_FIELDS = frozenset({
    "created_at", "data", "description", "enqueued_at", "started_at", "ended_at", "last_heartbeat", "origin",
    "status", "timeout", "result_ttl", "retries_left", "retry_intervals", "number_of_retries", "worker_name",
    "exc_info", "result",
    # always written by RQ, empty unless set (refused above when set)
    "success_callback_name", "failure_callback_name", "stopped_callback_name", "group_id",
})


def foreign_fields(job: Job) -> list[str]:
    """The non-empty fields of ``job``'s hash in Redis outside :data:`PROJECT_JOB_FIELDS`, sorted."""
    raw = job.connection.hgetall(job.key)
    names = (k.decode(errors="replace") if isinstance(k, bytes) else str(k)
             for k, v in raw.items() if v not in (b"", ""))
    return sorted(name for name in names if name not in PROJECT_JOB_FIELDS)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to send SIGTERM to this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``).

    Elsewhere (or if prctl is unavailable) :class:`WorkerBoundScheduler` still notices the parent's
    death on its next loop, by ``os.getppid()``.
    """
    import ctypes
    import ctypes.util
    import os
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except OSError:
            log.warning("prctl(PR_SET_PDEATHSIG) unavailable; the scheduler polls its parent instead")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class WorkerBoundScheduler(RQScheduler):
    """RQ's scheduler process, ending with its worker.

    RQ forks the scheduler from the worker; when the worker is SIGKILLed (OOM killer, ``kill -9``,
    a supervisor's hard stop) the scheduler would live on as an orphan, holding the queue's
    scheduler lock and enqueueing jobs for a worker that no longer exists. This one gets SIGTERM
    when its parent dies (Linux) and also checks its parent on every loop, then stops as RQ's own
    SIGTERM handler does (releasing its locks).
    """

    _parent_pid: int | None = None

    def start(self):  # noqa: ANN201 - RQ's signature
        import os

        self._parent_pid = os.getpid()  # the worker; recorded before the fork
        return super().start()

    def work(self) -> None:  # runs in the forked scheduler process
        if self._parent_pid is not None:
            die_with_parent(self._parent_pid)
        super().work()

    def enqueue_scheduled_jobs(self) -> None:  # once per loop of RQScheduler.work
        import os

        if self._parent_pid is not None and os.getpid() != self._parent_pid and os.getppid() != self._parent_pid:
            log.warning("scheduler: worker %s is gone; stopping", self._parent_pid)
            self.request_stop()  # the loop stops (releasing the locks) before it sleeps again
            return
        super().enqueue_scheduled_jobs()


PUBSUB_POLL_S = 1.0  # the pubsub thread's longest wait for a command; bounds how long a worker takes to exit


class TaskWorker(Worker):
    """An RQ worker that refuses every job outside the task allowlist (see the module docstring)."""

    def subscribe(self) -> None:
        """RQ's subscription to the worker's command channel, polled every :data:`PUBSUB_POLL_S` (RQ: 60 s).

        At exit RQ sends UNSUBSCRIBE and then stops the thread; since redis-py 8, ``stop()`` waits for the
        thread. When the thread reads the UNSUBSCRIBE reply before ``stop()`` clears its flag (a busy CPU
        makes that likely), it goes on waiting for a subscription for its whole poll interval: every
        ``worker --burst`` then lingered 60 s after "done, quitting". A short poll bounds that wait.
        """
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_POLL_S, daemon=True, exception_handler=self._pubsub_exception_handler)

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
                         log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        """RQ's scheduler start, with :class:`WorkerBoundScheduler` (RQ constructs its own class)."""
        self.scheduler = WorkerBoundScheduler(
            self.queues, connection=self.connection, serializer=self.serializer, date_format=date_format,
            log_format=log_format, logging_level=logging_level if logging_level is not None else self.log.level)
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:  # burst: enqueue what is due once, in this process
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()

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
        # Skip RQ's failure callback: it would import the dotted path the job names. Nor send the
        # job's webhooks (to a URL the job chose), repeat it or touch a rate-limit slot it names.
        job._failure_callback_name = None
        job._failure_callback = None
        job.webhooks = []
        job.repeats_left = None
        job.rate_limit_key = None
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
        from music_classifier.features.librosa_extractor import extract_librosa_features

        # A warm cache is only checked, not loaded: load the kernels here, once, for every work horse.
        extract_librosa_features(y=tone, sr=22050)
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


RQ_ENV = ("RQ_WORKER_ID", "RQ_JOB_ID", "RQ_EXECUTION_ID")  # what rq's fork_work_horse sets in the parent


def run_worker(settings: Settings, *, queue_name: str | None = None, burst: bool = False,
               preload: bool = True, logging_level: str = "INFO") -> bool:
    """Run a worker with RQ's scheduler (retry intervals and 429 re-enqueues need it).

    Returns True when it processed at least one job. RQ writes the worker's and the last job's ids into
    this process's environment as it forks each work horse; they are put back as they were on return, so
    a caller that goes on in-process (a test, a script) is not labelled as that worker afterwards
    (:func:`music_classifier.jobs.runtime.worker_label` reads ``RQ_WORKER_ID``).
    """
    worker = make_worker(settings, queue_name)
    if preload:
        preload_extractor()
    saved = {name: os.environ.get(name) for name in RQ_ENV}
    try:
        return worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
