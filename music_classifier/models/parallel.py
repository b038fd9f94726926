"""Parallel fits that still move the progress bar, and how many cores they may use.

scikit-learn runs GridSearchCV's fits (and our nested-CV tasks) in joblib worker processes. A plain
callback would count in each worker's copy, so the bar would sit still until the end. A
:class:`FitCounter` instead hands the workers a picklable :class:`Tick`: one ``put`` on a
multiprocessing-manager queue per finished fit, which a thread in the parent drains into the
progress callback. With one job nothing crosses a process boundary and the callback is called
directly.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from music_classifier.errors import InputError

JOBS_ENV = "MUSIC_CLASSIFIER_JOBS"


def available_cores() -> int:
    """Cores this process may run on (the CPU affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_jobs(jobs: int | None, default: int | str | None = None) -> int:
    """How many worker processes to use.

    Parameters
    ----------
    jobs : int or None
        ``--jobs`` as given: a positive count, ``-1`` for all cores, or None to fall back to ``default``.
    default : int, str or None
        ``MUSIC_CLASSIFIER_JOBS`` from the settings; None means all cores.

    Returns
    -------
    int
        A count between 1 and the number of available cores (asking for more gives every core).
    """
    source, value = ("--jobs", jobs) if jobs is not None else (JOBS_ENV, default)
    if value is None or value == "":
        return available_cores()
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{source} {value!r}: give a whole number of processes (-1 = all cores)") from None
    if n == -1:
        return available_cores()
    if n < 1:
        raise InputError(f"{source} {n}: give a positive number of processes, or -1 for all cores")
    return min(n, available_cores())


class Tick:
    """A picklable 'one more fit done' signal for worker processes."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def __call__(self) -> None:
        self.channel.put(1)


class FitCounter:
    """Context manager turning fits finished anywhere (parent or workers) into ``on_fit()`` calls.

    Use ``counter.tick`` as the callback inside fits; it is ``on_fit`` itself when ``n_jobs == 1``.
    Leaving the context waits until every tick sent so far has been delivered.
    """

    def __init__(self, on_fit: Callable[[], None], n_jobs: int) -> None:
        self.on_fit = on_fit
        self.n_jobs = n_jobs
        self.tick: Callable[[], None] = on_fit
        self._manager: Any = None
        self._queue: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FitCounter:
        if self.n_jobs > 1:
            import multiprocessing

            self._manager = multiprocessing.Manager()
            self._queue = self._manager.Queue()
            self.tick = Tick(self._queue)
            self._thread = threading.Thread(target=self._drain, name="fit-progress", daemon=True)
            self._thread.start()
        return self

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get()
            except (EOFError, OSError, queue.Empty):  # the manager went away: nothing more will come
                return
            if item is None:
                return
            self.on_fit()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._manager.shutdown()
            self._thread = None


def thread_limit(n_jobs: int) -> Any:
    """With ``--jobs 1``, keep native thread pools (OpenMP in HistGradientBoosting, BLAS) on one core too,
    so one job means one core; with more, joblib's workers already share the cores out among themselves."""
    if n_jobs != 1:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def delayed(func: Callable[..., Any]) -> Callable[..., Any]:
    """joblib's ``delayed``, imported only when parallel work is about to start."""
    from joblib import delayed as joblib_delayed

    return joblib_delayed(func)


def run_parallel(n_jobs: int, calls: Any) -> list[Any]:
    """Run joblib ``delayed`` calls on ``n_jobs`` processes (in this process for one), results in order."""
    from joblib import Parallel

    return Parallel(n_jobs=n_jobs)(calls)


# Classifiers whose own fit/predict spread over cores (joblib threads); others either have no such
# parameter or, like LogisticRegression since scikit-learn 1.8, warn that it does nothing.
CORE_AWARE = ("RandomForestClassifier", "ExtraTreesClassifier", "KNeighborsClassifier")


def _core_aware(pipeline: Any) -> Any | None:
    clf = pipeline.steps[-1][1]
    return clf if type(clf).__name__ in CORE_AWARE else None


def predict_with_jobs(pipeline: Any, n_jobs: int) -> None:
    """Let a loaded pipeline's classifier predict on ``n_jobs`` cores where it can (forests, k-NN)."""
    clf = _core_aware(pipeline)
    if clf is not None:
        clf.set_params(n_jobs=n_jobs)


def fit_with_jobs(pipeline: Any, X: Any, y: Any, n_jobs: int) -> Any:
    """Fit ``pipeline`` in this process with its classifier on ``n_jobs`` cores where it can (a forest's
    trees), then set it back to one job, so the stored model does not depend on this machine."""
    clf = _core_aware(pipeline)
    if clf is not None and n_jobs > 1:
        clf.set_params(n_jobs=n_jobs)
    pipeline.fit(X, y)
    if clf is not None:
        clf.set_params(n_jobs=1)
    return pipeline
