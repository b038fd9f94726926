"""What a job needs at run time, built lazily inside the job (never at import time).

A worker on another machine reads its own environment: ``DATABASE_URL``,
``MUSIC_CLASSIFIER_LIBRARY`` (its mount of the shared audio), ``REDIS_URL``,
``MUSIC_CLASSIFIER_QUEUE``. Only extraction ids travel through Redis.
"""

from __future__ import annotations

import os
import re
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis import Redis
    from rq import Queue
    from sqlalchemy import Engine

    from music_classifier.settings import Settings

#: Seconds a job may run before RQ kills it (a 10-minute track takes well under a minute).
JOB_TIMEOUT_S = 600
#: RQ retries for transient errors (database or network), with these waits in seconds.
RETRY_MAX = 3
RETRY_INTERVALS = (10, 30, 60)
#: Results of finished jobs are not needed in Redis: the database holds them.
RESULT_TTL_S = 300

_engines: dict[tuple[int, str], Engine] = {}
_configured: Settings | None = None  # set by the in-process runner (CLI --db/--library); else the environment


def configure(settings: Settings | None) -> None:
    """Make :func:`job_settings` return ``settings`` in this process (pool children, inline runs)."""
    global _configured
    _configured = settings


def job_settings() -> Settings:
    if _configured is not None:
        return _configured
    from music_classifier.settings import get_settings

    return get_settings()


def job_engine(settings: Settings | None = None) -> Engine:
    """One engine per process and URL (a forked work horse or pool child never reuses its parent's)."""
    from music_classifier.db.engine import make_engine

    url = (settings or job_settings()).resolved_database_url
    key = (os.getpid(), url)
    if key not in _engines:
        _engines[key] = make_engine(url)
    return _engines[key]


def redis_connection(url: str) -> Redis:
    from redis import Redis

    return Redis.from_url(url)


def make_queue(connection: Redis, name: str) -> Queue:
    """A queue with JSON serialisation: no pickle crosses Redis, only ids."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    return Queue(name, connection=connection, serializer=JSONSerializer, default_timeout=JOB_TIMEOUT_S)


def queue_from_settings(settings: Settings, name: str | None = None) -> Queue:
    """The configured queue; ConfigError (one line) when no Redis is configured."""
    from music_classifier.errors import ConfigError

    if not settings.redis_url:
        raise ConfigError("REDIS_URL is not set: start Redis and set REDIS_URL, or compute in-process with "
                          "`music-classifier features compute`")
    return make_queue(redis_connection(settings.redis_url), name or settings.queue_name)


def retry_policy():  # noqa: ANN201 - rq.Retry, imported lazily
    from rq import Retry

    return Retry(max=RETRY_MAX, interval=list(RETRY_INTERVALS))


def worker_label() -> str:
    """Who runs this job: ``rq:<worker>@<host>/<pid>`` under RQ, ``local@<host>/<pid>`` in-process.

    Reconciliation reads the host and pid back to tell a dead worker from a busy one.
    """
    rq_worker = os.environ.get("RQ_WORKER_ID")
    who = f"rq:{rq_worker}" if rq_worker else "local"
    return f"{who}@{socket.gethostname()}/{os.getpid()}"


def parse_worker_label(label: str | None) -> tuple[str, int] | None:
    """``(host, pid)`` of a :func:`worker_label`, None when it is not one."""
    if not label or "@" not in label or "/" not in label:
        return None
    host_pid = label.rsplit("@", 1)[1]
    host, _, pid = host_pid.rpartition("/")
    return (host, int(pid)) if pid.isdigit() else None


def process_alive(pid: int) -> bool:
    """True when ``pid`` runs on this machine (a zombie, killed but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust kill()
    return state not in ("Z", "X")


def job_id_for(queue_name: str, extractor: str, first_extraction_id: int, attempt: int) -> str:
    """Deterministic RQ job id: ``<queue>-<extractor>-<extraction id>-<attempt>``.

    Derived from the extraction (the first of a Spotify batch) and its attempt count, so
    repeating an interrupted enqueue rewrites the same job instead of adding a second one,
    while a retry of a failed extraction gets a fresh id. The queue name keeps two databases
    (or two test runs) that share a Redis server on distinct queues from overwriting each
    other's job hashes (``rq:job:<id>`` keys are global).
    """
    return f"{job_id_prefix(queue_name, extractor)}{first_extraction_id}-{attempt}"


def job_id_prefix(queue_name: str, extractor: str) -> str:
    """``<queue>-<extractor>-`` with the queue name reduced to the characters RQ allows in ids."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', queue_name)}-{extractor}-"


def next_job_id(job_id: str) -> str:
    """The id of the job that takes over from ``job_id`` (a 429 re-enqueue): attempt + 1."""
    head, _, tail = job_id.rpartition("-")
    return f"{head}-{int(tail) + 1}" if head and tail.isdigit() else f"{job_id}-1"
