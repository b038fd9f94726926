"""``features enqueue``: queued rows in the database, then one RQ job per track (Spotify: per batch).

Fast path for 100,000 jobs: the rows are written with a few bulk statements, the jobs are built
with :meth:`rq.Queue.prepare_data` and pushed by :meth:`rq.Queue.enqueue_many` through one Redis
pipeline per chunk (one round trip per chunk instead of several per job). Payloads are extraction
ids only, serialised as JSON.

Rows are written before the jobs are pushed, in the caller's transaction: if Redis fails, the
transaction rolls back and nothing is half-done. A worker that picks a job up before the commit
does not see its row yet and raises; RQ retries it 10 s later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from music_classifier.jobs.persist import EXTRACTORS, queue_selection, set_job_ids, set_job_ids_by_formula
from music_classifier.jobs.runtime import JOB_TIMEOUT_S, RESULT_TTL_S, job_id_for, job_id_prefix, retry_policy

if TYPE_CHECKING:
    from rq import Queue
    from sqlalchemy import Connection

LIBROSA_TASK = "music_classifier.jobs.tasks.librosa_track"
SPOTIFY_TASK = "music_classifier.jobs.tasks.spotify_batch"
TASK_OF = {"librosa": LIBROSA_TASK, "spotify": SPOTIFY_TASK}
VERSION_OF = {"librosa": "1", "spotify": "1"}
SPOTIFY_BATCH_SIZE = 100  # the Web API's maximum ids per audio-features request
PUSH_CHUNK = 10_000  # jobs per Redis pipeline
DEFAULT_SEGMENT_S = 3.0


@dataclass(frozen=True)
class ExtractionSpec:
    """What to compute: extractor, version and the parameters that make extractions differ."""

    extractor: str
    version: str
    params: dict[str, Any]

    @property
    def params_hash(self) -> str:
        from music_classifier.features.librosa_extractor import params_hash

        return params_hash(self.params)


def librosa_spec(*, excerpt_s: float | None = None, segments: bool = True,
                 segment_s: float = DEFAULT_SEGMENT_S) -> ExtractionSpec:
    """Whole track (``excerpt_s=None``) and a 30 s excerpt are different extractions."""
    from music_classifier.errors import InputError

    if excerpt_s is not None and excerpt_s <= 0:
        raise InputError(f"--excerpt must be a positive number of seconds, got {excerpt_s}")
    params = {"excerpt_s": float(excerpt_s) if excerpt_s else None, "segment_s": float(segment_s) if segments else None}
    return ExtractionSpec("librosa", VERSION_OF["librosa"], params)


def spotify_spec(provider: str = "spotify") -> ExtractionSpec:
    from music_classifier.features.spotify_provider import extraction_params

    return ExtractionSpec("spotify", VERSION_OF["spotify"], extraction_params(provider.strip().lower()))


def spec_for(extractor: str, *, excerpt_s: float | None = None, segments: bool = True,
             provider: str = "spotify") -> ExtractionSpec:
    from music_classifier.errors import InputError

    if extractor == "librosa":
        return librosa_spec(excerpt_s=excerpt_s, segments=segments)
    if extractor == "spotify":
        if excerpt_s is not None:
            raise InputError("--excerpt applies to --extractor librosa only")
        return spotify_spec(provider)
    raise InputError(f"unknown extractor {extractor!r}: use one of {', '.join(EXTRACTORS)}")


@dataclass
class EnqueueReport:
    extractor: str
    selection: str
    queue: str
    params: dict[str, Any]
    tracks: int = 0
    jobs: int = 0
    job_ids: list[str] = field(default_factory=list, repr=False)


def plan_jobs(queue_name: str, extractor: str, extraction_ids: Sequence[int],
              attempts: Mapping[int, int]) -> list[tuple[str, list[int]]]:
    """``[(job_id, [extraction ids])]``: one job per librosa extraction, batches of 100 for Spotify."""
    size = SPOTIFY_BATCH_SIZE if extractor == "spotify" else 1
    plan = []
    for start in range(0, len(extraction_ids), size):
        batch = list(extraction_ids[start:start + size])
        attempt = max(attempts.get(i, 0) for i in batch) + 1
        plan.append((job_id_for(queue_name, extractor, batch[0], attempt), batch))
    return plan


def push_jobs(queue: Queue, extractor: str, plan: Sequence[tuple[str, list[int]]]) -> None:
    """Create the RQ jobs, pipelined in chunks (one Redis round trip per chunk)."""
    from rq import Queue as RQQueue

    func = TASK_OF[extractor]
    retry = retry_policy()
    for start in range(0, len(plan), PUSH_CHUNK):
        datas = [
            RQQueue.prepare_data(func, args=[ids[0]] if extractor == "librosa" else [ids], job_id=job_id,
                                 timeout=JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S, retry=retry,
                                 description=f"{extractor} {ids[0]}" + (f"+{len(ids) - 1}" if len(ids) > 1 else ""))
            for job_id, ids in plan[start:start + PUSH_CHUNK]
        ]
        with queue.connection.pipeline(transaction=False) as pipe:
            queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()


def enqueue_extractions(conn: Connection, queue: Queue, *, extractor: str, selection: str,
                        params: Mapping[str, Any] | None = None, spec: ExtractionSpec | None = None) -> EnqueueReport:
    """Queue the selected tracks' extractions (see :func:`~.persist.select_track_ids`) on ``queue``.

    ``params`` (or a full ``spec``) defaults to the extractor's defaults (whole track, 3 s segments).
    Already queued or running extractions are left alone, so enqueueing twice adds nothing.
    """
    if spec is None:
        spec = spec_for(extractor) if params is None else ExtractionSpec(extractor, VERSION_OF[extractor], dict(params))
    if extractor not in EXTRACTORS or spec.extractor != extractor:
        from music_classifier.errors import InputError

        raise InputError(f"unknown extractor {extractor!r}: use one of {', '.join(EXTRACTORS)}")
    report = EnqueueReport(extractor, selection, queue.name, dict(spec.params))
    kind = {"extractor": extractor, "version": spec.version, "params_hash": spec.params_hash}
    stamp, rows = queue_selection(conn, params=spec.params, selection=selection, **kind)
    report.tracks = len(rows)
    if extractor == "librosa":  # job ids computed by one UPDATE, with the same formula as job_id_for
        prefix = job_id_prefix(queue.name, extractor)
        set_job_ids_by_formula(conn, stamp=stamp, prefix=prefix, **kind)
        plan = [(f"{prefix}{eid}-{attempts + 1}", [eid]) for eid, attempts in rows]
    else:
        plan = plan_jobs(queue.name, extractor, [eid for eid, _ in rows], dict(rows))
        set_job_ids(conn, {eid: job_id for job_id, ids in plan for eid in ids})
    push_jobs(queue, extractor, plan)
    report.jobs = len(plan)
    report.job_ids = [job_id for job_id, _ in plan]
    return report
