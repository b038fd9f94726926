"""The page's "Retrain" button: ``train DATASET --final`` as a background job, its progress polled.

The job runs in a thread of the server process (one at a time: a second press while one runs gets
that one back), with its own transaction, exactly as the ``train`` command runs it. Its state lives in
memory: a restarted server forgets finished jobs, while the models they registered stay in the registry.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from music_classifier.errors import MusicClassifierError


@dataclass
class RetrainJob:
    id: int
    dataset: str
    state: str = "queued"  # queued | running | done | failed
    done: int = 0  # fits done (the grid search's progress)
    total: int = 0
    model_id: int | None = None
    message: str = ""
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
            job = RetrainJob(id=next(self._ids), dataset=dataset)
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"retrain-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: int) -> RetrainJob | None:
        return self._jobs.get(int(job_id))

    def _run(self, job: RetrainJob) -> None:
        from music_classifier.models.train import TrainOptions, train_model

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        job.state = "running"
        try:
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
