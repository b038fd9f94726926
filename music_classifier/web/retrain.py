"""The page's "Retrain" button: ``train DATASET --final`` as a background job, its progress polled.

With Redis configured (``REDIS_URL``) the job goes to the RQ queue as the task
:func:`music_classifier.jobs.tasks.train_final` (the dataset's name is all that travels), a
``music-classifier worker`` runs it, and the page reads its state and progress (the job's meta) from
Redis. Either way the job first refreshes the dataset's members to the tracks' effective genres (label
decisions taken since it was created; :mod:`music_classifier.models.dataset_refresh`), commits that, and
then trains, so the model and its data snapshot have the decided genres; the job page says what the
refresh changed. Without Redis it runs in a thread of the server process (one at a time: a second press while
one runs gets that one back), with its own transaction, exactly as the ``train`` command runs it; that
state lives in memory, so a restarted server forgets finished jobs (their models stay in the registry).
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from music_classifier.errors import MusicClassifierError


@dataclass
class RetrainJob:
    id: str
    dataset: str
    state: str = "queued"  # queued | running | done | failed
    done: int = 0  # fits done (the grid search's progress)
    total: int = 0
    model_id: int | None = None
    message: str = ""
    refreshed: str = ""  # what refreshing the dataset to the label decisions changed, before training
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


class Retrainer:
    """Starts and remembers retrain jobs for one database (an engine) and models directory."""

    def __init__(self, engine: Any, models_path: Path, *, options: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self.models_path = models_path
        # `train DATASET --final` with the command's defaults; a caller may narrow them (tests: a small grid).
        self.options = {"n_jobs": 1, **(options or {}), "final": True}
        self._ids = itertools.count(1)
        self._jobs: dict[int, RetrainJob] = {}
        self._lock = threading.Lock()

    def start(self, dataset: str) -> RetrainJob:
        with self._lock:
            running = [j for j in self._jobs.values() if j.state in ("queued", "running")]
            if running:
                return running[0]
            job = RetrainJob(id=str(next(self._ids)), dataset=dataset)
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"retrain-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> RetrainJob | None:
        return self._jobs.get(str(job_id))

    def _run(self, job: RetrainJob) -> None:
        from music_classifier.models.dataset_refresh import refresh_committed
        from music_classifier.models.train import TrainOptions, train_model

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        job.state = "running"
        try:
            job.refreshed = refresh_committed(self.engine, job.dataset).summary()
            with self.engine.begin() as conn:
                result = train_model(conn, job.dataset, TrainOptions(**self.options),
                                     models_path=self.models_path, progress=progress)
            job.model_id = result.model_id
            job.message = f"model {result.model_id} ({result.kind} on {result.dataset}), final"
            job.state = "done"
        except MusicClassifierError as exc:
            job.message, job.state = str(exc), "failed"
        except Exception as exc:  # noqa: BLE001 - the page shows one line; the server keeps running
            job.message, job.state = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", "failed"
        finally:
            job.finished.set()


TRAIN_TASK = "music_classifier.jobs.tasks.train_final"
_RQ_STATES = {"queued": "queued", "scheduled": "queued", "deferred": "queued", "started": "running",
              "finished": "done", "failed": "failed", "stopped": "failed", "canceled": "failed"}


class QueueRetrainer:
    """Retrain jobs on the RQ queue (a worker runs them); the same interface as :class:`Retrainer`."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def start(self, dataset: str) -> RetrainJob:
        from music_classifier.jobs.tasks import TRAIN_RESULT_TTL_S, TRAIN_TIMEOUT_S

        job = self.queue.enqueue(TRAIN_TASK, dataset, job_timeout=TRAIN_TIMEOUT_S, result_ttl=TRAIN_RESULT_TTL_S,
                                 description=f"retrain {dataset} (final)")
        return RetrainJob(id=job.id, dataset=dataset)

    def get(self, job_id: str) -> RetrainJob | None:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        if not _RQ_JOB_ID.match(job_id):
            return None
        try:
            job = Job.fetch(job_id, connection=self.queue.connection, serializer=self.queue.serializer)
        except NoSuchJobError:
            return None
        if job.func_name != TRAIN_TASK:  # the page shows its own jobs only
            return None
        meta = job.get_meta(refresh=True) or {}
        state = _RQ_STATES.get(str(job.get_status(refresh=True)).split(".")[-1].lower(), "queued")
        view = RetrainJob(id=job.id, dataset=str(job.args[0]) if job.args else "?", state=state,
                          done=int(meta.get("done") or 0), total=int(meta.get("total") or 0),
                          refreshed=str(meta.get("refreshed") or ""))
        if state == "done":
            result = job.return_value() or {}
            if result.get("error"):
                view.state, view.message = "failed", str(result["error"])
            else:
                view.model_id, view.message = result.get("model_id"), str(result.get("message", ""))
        elif state == "failed":
            view.message = _last_line(job.latest_result().exc_string if job.latest_result() else "") or \
                "the job failed (see the worker's log)"
        if state in ("done", "failed"):
            view.finished.set()
        return view


_RQ_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
