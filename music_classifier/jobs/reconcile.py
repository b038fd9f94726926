"""The database is the source of truth; Redis is made to agree with it.

``reconcile``:
1. runs RQ's own ``StartedJobRegistry.cleanup()`` (jobs whose worker stopped heart-beating);
2. rows ``running`` whose worker is dead -> ``failed`` with a "worker died" error. Dead means: the
   worker ran on this machine and its process is gone (found at once), or its RQ job is no longer
   started (RQ noticed the missing heartbeat, about a minute after the worker died, or the job
   vanished with a Redis restart). A job whose RQ retry is pending goes back to ``queued``;
3. rows ``queued`` whose RQ job no longer exists or has ended (Redis restarted without
   persistence, an enqueue that never reached Redis) are enqueued again, so nothing queued is lost.

Every change is a compare-and-set on the row's status (and worker or job id): a result that lands
while reconciliation runs is never overwritten.
"""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, bindparam, select, update

from music_classifier.db.tables import extractions
from music_classifier.features.registry import NAMES as EXTRACTORS
from music_classifier.features.registry import get_extractor
from music_classifier.jobs.persist import _chunks, mark_failed, utcnow
from music_classifier.jobs.runtime import job_id_for, next_job_id, parse_worker_label, process_alive

if TYPE_CHECKING:
    from rq import Queue
    from rq.job import Job

LIVE_RQ_STATUSES = ("queued", "scheduled", "deferred", "started")
WAITING_RQ_STATUSES = ("queued", "scheduled", "deferred")


@dataclass
class ReconcileReport:
    dead: list[tuple[int, str]] = field(default_factory=list)  # (extraction id, error written)
    back_to_queued: int = 0  # running rows whose RQ job waits for a retry
    requeued: int = 0  # queued rows whose job was lost, enqueued again
    jobs_pushed: int = 0


@dataclass(frozen=True)
class _Row:
    id: int
    extractor: str
    status: str
    rq_job_id: str | None
    worker: str | None
    attempts: int


def fetch_jobs(queue: Queue, job_ids: Sequence[str]) -> dict[str, Job | None]:
    from rq.job import Job

    out: dict[str, Job | None] = {}
    unique = list(dict.fromkeys(job_ids))
    for chunk in _chunks(unique):
        out.update(zip(chunk, Job.fetch_many(chunk, connection=queue.connection, serializer=queue.serializer),
                       strict=True))
    return out


def _status(job: Job | None) -> str | None:
    return None if job is None else str(job.get_status(refresh=False).value)


def _dead_locally(row: _Row) -> str | None:
    parsed = parse_worker_label(row.worker)
    if parsed and parsed[0] == socket.gethostname() and not process_alive(parsed[1]):
        return f"worker died: process {parsed[1]} on {parsed[0]} is gone (killed or crashed mid-job)"
    return None


def _fail_rq_job(queue: Queue, job: Job, reason: str) -> None:
    """Make RQ agree that a job whose worker died has failed (no automatic retry later)."""
    from rq.job import JobStatus

    with queue.connection.pipeline() as pipe:
        queue.started_job_registry.remove_executions(job, pipeline=pipe)
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        job.retries_left = None
        queue.failed_job_registry.add(job, exc_string=reason, pipeline=pipe)
        pipe.execute()


def reconcile(conn: Connection, queue: Queue | None, *, extractor: str | None = None) -> ReconcileReport:
    """Fix rows left ``running`` by dead workers and re-enqueue ``queued`` rows Redis has lost.

    Without a queue (no Redis configured) only the local dead-process check applies.
    """
    report = ReconcileReport()
    if queue is not None:
        queue.started_job_registry.cleanup()
    query = select(extractions.c.id, extractions.c.extractor, extractions.c.status, extractions.c.rq_job_id,
                   extractions.c.worker, extractions.c.attempts).where(
        extractions.c.status.in_(("queued", "running")), extractions.c.extractor.in_(EXTRACTORS))
    if extractor:
        query = query.where(extractions.c.extractor == extractor)
    rows = [_Row(*r) for r in conn.execute(query.order_by(extractions.c.id))]
    jobs = fetch_jobs(queue, [r.rq_job_id for r in rows if r.rq_job_id]) if queue is not None else {}

    lost: list[_Row] = []
    for row in rows:
        job = jobs.get(row.rq_job_id) if row.rq_job_id else None
        status = _status(job)
        if row.status == "running":
            reason = _dead_locally(row)
            if reason is None and queue is not None and row.rq_job_id:
                if status is None:
                    reason = "worker died or Redis lost its job (no RQ job left); retry with `jobs retry --failed`"
                elif status in WAITING_RQ_STATUSES:
                    if conn.execute(update(extractions).where(extractions.c.id == row.id,
                                                              extractions.c.status == "running")
                                    .values(status="queued")).rowcount:
                        report.back_to_queued += 1
                    continue
                elif status != "started":
                    reason = f"worker died: its RQ job ended as {status} without storing a result"
            if reason is None:
                continue
            if mark_failed(conn, row.id, reason, only_if={"status": "running", "worker": row.worker}):
                report.dead.append((row.id, reason))
                if job is not None and status == "started" and queue is not None:
                    _fail_rq_job(queue, job, reason)
        elif queue is not None and (status is None or status not in LIVE_RQ_STATUSES):
            lost.append(row)

    if lost and queue is not None:
        plan = _requeue_plan(queue.name, lost, jobs)
        _push_and_record(conn, queue, plan, expected_status="queued")
        report.requeued = sum(len(ids) for _, _, ids in plan)
        report.jobs_pushed = len(plan)
    return report


def _requeue_plan(queue_name: str, rows: list[_Row], jobs: dict[str, Job | None]) -> list[tuple[str, str, list[int]]]:
    """``[(extractor, job_id, extraction ids)]``: a fresh id when the old job hash still exists."""
    by_extractor: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        by_extractor[row.extractor].append(row)
    plan = []
    for extractor, group in by_extractor.items():
        size = get_extractor(extractor).batch_size
        for start in range(0, len(group), size):
            batch = group[start:start + size]
            first = batch[0]
            if size == 1 and first.rq_job_id and jobs.get(first.rq_job_id) is None:
                job_id = first.rq_job_id  # the lost job's own id: nothing in Redis to collide with
            elif size == 1 and first.rq_job_id:
                job_id = next_job_id(first.rq_job_id)
            else:
                job_id = job_id_for(queue_name, extractor, first.id, max(r.attempts for r in batch) + 1)
                while job_id in jobs and jobs[job_id] is not None:
                    job_id = next_job_id(job_id)
            plan.append((extractor, job_id, [r.id for r in batch]))
    return plan


def _push_and_record(conn: Connection, queue: Queue, plan: list[tuple[str, str, list[int]]],
                     expected_status: str) -> None:
    from music_classifier.jobs.enqueue import push_jobs

    now = utcnow()
    params = [{"eid": eid, "jid": job_id} for _, job_id, ids in plan for eid in ids]
    for chunk in _chunks(params):
        conn.execute(update(extractions).where(extractions.c.id == bindparam("eid"),
                                               extractions.c.status == expected_status)
                     .values(status="queued", rq_job_id=bindparam("jid"), error=None, queued_at=now), list(chunk))
    by_extractor: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
    for extractor, job_id, ids in plan:
        by_extractor[extractor].append((job_id, ids))
    for extractor, extractor_plan in by_extractor.items():
        push_jobs(queue, extractor, extractor_plan)


def retry_failed(conn: Connection, queue: Queue, *, extractor: str | None = None) -> int:
    """Enqueue every ``failed`` extraction of a registered extractor again (fresh job ids); returns how many."""
    query = select(extractions.c.id, extractions.c.extractor, extractions.c.status, extractions.c.rq_job_id,
                   extractions.c.worker, extractions.c.attempts).where(
        extractions.c.status == "failed", extractions.c.extractor.in_(EXTRACTORS))
    if extractor:
        query = query.where(extractions.c.extractor == extractor)
    rows = [_Row(*r) for r in conn.execute(query.order_by(extractions.c.id))]
    if not rows:
        return 0
    plan = []
    by_extractor: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        by_extractor[row.extractor].append(row)
    from music_classifier.jobs.enqueue import plan_jobs

    for name, group in by_extractor.items():
        attempts = {r.id: r.attempts for r in group}
        plan += [(name, job_id, ids) for job_id, ids in plan_jobs(queue.name, name, [r.id for r in group], attempts)]
    existing = fetch_jobs(queue, [job_id for _, job_id, _ in plan])
    plan = [(name, next_job_id(job_id) if existing.get(job_id) is not None else job_id, ids)
            for name, job_id, ids in plan]
    _push_and_record(conn, queue, plan, expected_status="failed")
    return len(rows)
