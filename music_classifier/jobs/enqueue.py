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

from music_classifier.db.planner_stats import refresh_planner_stats
from music_classifier.features.registry import get_extractor
from music_classifier.jobs.persist import queue_selection, set_job_ids, set_job_ids_by_formula
from music_classifier.jobs.runtime import JOB_TIMEOUT_S, RESULT_TTL_S, job_id_for, job_id_prefix, retry_policy

if TYPE_CHECKING:
    from rq import Queue
    from sqlalchemy import Connection

LIBROSA_TASK = get_extractor("librosa").task_path
SPOTIFY_VERSION = "1"
SPOTIFY_BATCH_SIZE = get_extractor("spotify").batch_size  # the Web API's maximum ids per audio-features request
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


def audio_spec(extractor: str, *, excerpt_s: float | None = None, segments: bool = True,
               segment_s: float = DEFAULT_SEGMENT_S) -> ExtractionSpec:
    """An audio extractor's spec: whole track (``excerpt_s=None``) and a 30 s excerpt are different
    extractions, and so are two versions of the extractor's own parameters (e.g. network weights)."""
    from music_classifier.errors import InputError
    from music_classifier.jobs.audio_extract import version_and_params

    if excerpt_s is not None and excerpt_s <= 0:
        raise InputError(f"--excerpt must be a positive number of seconds, got {excerpt_s}")
    version, own = version_and_params(extractor)
    params = {"excerpt_s": float(excerpt_s) if excerpt_s else None, "segment_s": float(segment_s) if segments else None,
              **own}
    return ExtractionSpec(extractor, version, params)


def librosa_spec(*, excerpt_s: float | None = None, segments: bool = True,
                 segment_s: float = DEFAULT_SEGMENT_S) -> ExtractionSpec:
    return audio_spec("librosa", excerpt_s=excerpt_s, segments=segments, segment_s=segment_s)


def spotify_spec(provider: str = "spotify") -> ExtractionSpec:
    from music_classifier.features.spotify_provider import extraction_params

    return ExtractionSpec("spotify", SPOTIFY_VERSION, extraction_params(provider.strip().lower()))


def spec_for(extractor: str, *, excerpt_s: float | None = None, segments: bool = True,
             provider: str = "spotify") -> ExtractionSpec:
    from music_classifier.errors import InputError
    from music_classifier.features.registry import AUDIO_EXTRACTORS

    if get_extractor(extractor).needs_audio:
        return audio_spec(extractor, excerpt_s=excerpt_s, segments=segments)
    if excerpt_s is not None:
        raise InputError(f"--excerpt applies to the audio extractors ({', '.join(AUDIO_EXTRACTORS)}) only")
    return spotify_spec(provider)


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
    """``[(job_id, [extraction ids])]``: one job per audio extraction, batches of 100 for Spotify."""
    size = get_extractor(extractor).batch_size
    plan = []
    for start in range(0, len(extraction_ids), size):
        batch = list(extraction_ids[start:start + size])
        attempt = max(attempts.get(i, 0) for i in batch) + 1
        plan.append((job_id_for(queue_name, extractor, batch[0], attempt), batch))
    return plan


def push_jobs(queue: Queue, extractor: str, plan: Sequence[tuple[str, list[int]]]) -> None:
    """Create the RQ jobs, pipelined in chunks (one Redis round trip per chunk)."""
    from rq import Queue as RQQueue

    info = get_extractor(extractor)
    func = info.task_path
    retry = retry_policy()
    for start in range(0, len(plan), PUSH_CHUNK):
        datas = [
            RQQueue.prepare_data(func, args=[ids[0]] if info.batch_size == 1 else [ids], job_id=job_id,
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
    info = get_extractor(extractor)
    if spec is None:
        spec = spec_for(extractor)
        if params is not None:
            spec = ExtractionSpec(extractor, spec.version, dict(params))
    if spec.extractor != extractor:
        from music_classifier.errors import InputError

        raise InputError(f"extractor {extractor!r} given a {spec.extractor} spec")
    report = EnqueueReport(extractor, selection, queue.name, dict(spec.params))
    kind = {"extractor": extractor, "version": spec.version, "params_hash": spec.params_hash}
    stamp, rows = queue_selection(conn, params=spec.params, selection=selection, **kind)
    report.tracks = len(rows)
    if rows:  # the workers' claims and `features status` plan from these statistics
        refresh_planner_stats(conn, ["extractions"])
    if info.batch_size == 1:  # job ids computed by one UPDATE, with the same formula as job_id_for
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
