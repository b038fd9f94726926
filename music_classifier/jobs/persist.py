"""Extraction rows: which tracks need work, ``queued`` rows, and idempotent results.

The database is the source of truth for the jobs. Every function takes a Connection; the caller
owns the transaction. Results are written delete-then-insert inside the caller's transaction, so
a job that runs twice (an RQ retry, a worker declared dead that was only slow) leaves exactly one
set of feature rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.sql import ColumnElement

from music_classifier.db.tables import extractions, tracks
from music_classifier.db.values import SegmentValues
from music_classifier.db.values import replace_values as _replace_values
from music_classifier.errors import InputError
from music_classifier.features.registry import get_extractor

SELECTIONS = ("missing", "failed", "stale", "all")
MAX_ERROR_CHARS = 2000
log = logging.getLogger(__name__)
_CHUNK = 5000  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits

#: A segment result: (segment index, start in seconds, {feature name: value}).
Segment = SegmentValues


def utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _same_kind(extractor: str, version: str, params_hash: str) -> ColumnElement[bool]:
    return and_(extractions.c.extractor == extractor, extractions.c.version == version,
                extractions.c.params_hash == params_hash)


def _eligible_tracks(extractor: str) -> ColumnElement[bool]:
    """Live tracks an extractor can work on: audio extractors need a linked audio file."""
    live = tracks.c.removed_at.is_(None)
    if get_extractor(extractor).needs_audio:
        return and_(live, tracks.c.audio_path.is_not(None))
    return live


def _selection_condition(extractor: str, version: str, params_hash: str, selection: str) -> ColumnElement[bool]:
    """Condition on ``tracks`` for :func:`select_track_ids` (correlated EXISTS on extractions)."""
    if selection not in SELECTIONS:
        raise InputError(f"unknown selection {selection!r}: use one of {', '.join(SELECTIONS)}")
    e = extractions.alias("e")
    row = and_(e.c.track_id == tracks.c.id, e.c.extractor == extractor, e.c.version == version,
               e.c.params_hash == params_hash)
    has_row = exists().where(row)
    never_queued = exists().where(row, e.c.status == "queued", e.c.rq_job_id.is_(None))
    if selection == "missing":
        cond = or_(~has_row, never_queued)
        if get_extractor(extractor).done_under_any_params:
            d = extractions.alias("d")
            cond = and_(cond, ~exists().where(d.c.track_id == tracks.c.id, d.c.extractor == extractor,
                                              d.c.status == "done"))
    elif selection in ("failed", "stale"):
        cond = exists().where(row, e.c.status == selection)
    else:
        cond = or_(~has_row, never_queued, exists().where(row, e.c.status.in_(("done", "failed", "stale"))))
    return and_(_eligible_tracks(extractor), cond)


def select_track_ids(conn: Connection, *, extractor: str, version: str, params_hash: str, selection: str) -> list[int]:
    """Tracks to (re)compute for one (extractor, version, params).

    - ``missing``: no row yet, or a ``queued`` row never handed to a queue (an interrupted
      ``features compute``). Spotify also skips tracks that already have ``done`` Spotify values
      under other params (a dataset import).
    - ``failed`` / ``stale``: rows in that status (stale = the audio file changed).
    - ``all``: everything except rows ``running`` or already waiting in a queue.
    """
    cond = _selection_condition(extractor, version, params_hash, selection)
    return list(conn.execute(select(tracks.c.id).where(cond).order_by(tracks.c.id)).scalars())


def queue_selection(conn: Connection, *, extractor: str, version: str, params: Mapping[str, Any], params_hash: str,
                    selection: str) -> tuple[datetime, list[tuple[int, int]]]:
    """Set-based :func:`select_track_ids` + :func:`ensure_extractions`, for 100,000-row enqueues.

    Two statements do the work inside the database (reset existing rows, ``INSERT … SELECT`` the
    new ones); every touched row carries the same ``queued_at`` stamp, by which they are read
    back. Returns ``(stamp, [(extraction_id, attempts)])`` ordered by extraction id.
    """
    from sqlalchemy import literal

    now = utcnow()
    kind = _same_kind(extractor, version, params_hash)
    cond = _selection_condition(extractor, version, params_hash, selection)
    conn.execute(update(extractions).where(kind, extractions.c.track_id.in_(select(tracks.c.id).where(cond)))
                 .values(status="queued", error=None, worker=None, rq_job_id=None, queued_at=now, started_at=None,
                         finished_at=None))
    missing = select(tracks.c.id, literal(extractor), literal(version), literal(params_hash),
                     literal(dict(params), type_=extractions.c.params.type), literal("queued"), literal(0),
                     literal(now, type_=extractions.c.queued_at.type)).where(
        _eligible_tracks(extractor), ~exists().where(extractions.c.track_id == tracks.c.id, kind), cond)
    conn.execute(insert(extractions).from_select(
        ["track_id", "extractor", "version", "params_hash", "params", "status", "attempts", "queued_at"], missing))
    rows = conn.execute(select(extractions.c.id, extractions.c.attempts)
                        .where(kind, extractions.c.queued_at == now, extractions.c.status == "queued")
                        .order_by(extractions.c.id))
    return now, [(eid, attempts) for eid, attempts in rows]


def set_job_ids_by_formula(conn: Connection, *, extractor: str, version: str, params_hash: str, stamp: datetime,
                           prefix: str) -> None:
    """``rq_job_id = prefix || id || '-' || (attempts + 1)`` for the rows of one :func:`queue_selection`,
    in one statement (the formula of :func:`~music_classifier.jobs.runtime.job_id_for`)."""
    from sqlalchemy import String, cast, literal

    conn.execute(update(extractions).where(_same_kind(extractor, version, params_hash),
                                           extractions.c.queued_at == stamp, extractions.c.status == "queued")
                 .values(rq_job_id=literal(prefix) + cast(extractions.c.id, String) + literal("-")
                         + cast(extractions.c.attempts + 1, String)))


def ensure_extractions(
    conn: Connection, track_ids: Iterable[int], *, extractor: str, version: str, params: Mapping[str, Any],
    params_hash: str | None = None,
) -> dict[int, int]:
    """Bulk upsert: every given track gets a ``queued`` row for (extractor, version, params).

    Existing rows are reset to ``queued`` (error, worker, times and job id cleared: a stale or
    failed row recomputes); missing rows are inserted. Returns ``{track_id: extraction_id}``.
    """
    from music_classifier.features.librosa_extractor import params_hash as hash_params

    wanted = list(dict.fromkeys(int(t) for t in track_ids))
    if not wanted:
        return {}
    phash = params_hash or hash_params(params)
    kind = _same_kind(extractor, version, phash)
    wanted_set = set(wanted)

    def current() -> dict[int, int]:
        rows = conn.execute(select(extractions.c.track_id, extractions.c.id).where(kind))
        return {t: i for t, i in rows if t in wanted_set}

    existing = current()
    now = utcnow()
    if existing:
        conn.execute(
            update(extractions).where(extractions.c.id == bindparam("eid")).values(
                status="queued", error=None, worker=None, rq_job_id=None, queued_at=now, started_at=None,
                finished_at=None),
            [{"eid": eid} for eid in existing.values()],
        )
    new = [t for t in wanted if t not in existing]
    if new:
        conn.execute(insert(extractions), [
            {"track_id": t, "extractor": extractor, "version": version, "params_hash": phash, "params": dict(params),
             "status": "queued", "attempts": 0, "queued_at": now} for t in new])
        existing = current()
    return {t: existing[t] for t in wanted}


def set_job_ids(conn: Connection, job_ids: Mapping[int, str | None]) -> None:
    """Record the RQ job now responsible for each extraction (``{extraction_id: job_id}``)."""
    if job_ids:
        conn.execute(update(extractions).where(extractions.c.id == bindparam("eid")).values(
            rq_job_id=bindparam("jid")), [{"eid": e, "jid": j} for e, j in job_ids.items()])


def attempts_of(conn: Connection, extraction_ids: Sequence[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for chunk in _chunks(list(extraction_ids)):
        rows = conn.execute(select(extractions.c.id, extractions.c.attempts).where(extractions.c.id.in_(chunk)))
        out.update((eid, attempts) for eid, attempts in rows)
    return out


#: The states a job may claim a row from (a failed row is claimed by a retry).
CLAIMABLE_STATUSES = ("queued", "failed")


@dataclass(frozen=True)
class Claim:
    """A job's hold on one extraction row, returned by :func:`mark_running`.

    Every later state change of that job is a compare-and-set on it: the row must still be for
    ``extractor``, ``running`` and owned by ``worker`` (the label names host and process, so each
    execution of a job has its own), so a job given crafted ids, or one that lost its row to
    reconciliation or a newer run, changes nothing.
    """

    extraction_id: int
    extractor: str
    worker: str


def _held_by(claim: Claim) -> ColumnElement[bool]:
    return and_(extractions.c.id == claim.extraction_id, extractions.c.extractor == claim.extractor,
                extractions.c.status == "running", extractions.c.worker == claim.worker)


def _explain_refusal(conn: Connection, extraction_id: int, wanted: str) -> str:
    row = conn.execute(select(extractions.c.extractor, extractions.c.status, extractions.c.worker)
                       .where(extractions.c.id == extraction_id)).first()
    if row is None:
        return f"extraction {extraction_id}: no such row"
    return (f"extraction {extraction_id} is a {row.extractor} extraction in status {row.status}"
            f" (worker {row.worker or '-'}); this job expected {wanted}")


def mark_running(conn: Connection, extraction_id: int, worker: str, *, extractor: str,
                 job_id: str | None = None) -> Claim | None:
    """Claim the row for a job: ``queued``/``failed`` -> ``running``, one more attempt (compare-and-set).

    ``extractor`` is the kind of row the task computes; a row of another extractor, or one that is
    ``done``, ``stale`` or run by someone else, is left alone: returns None and logs why. Under RQ,
    ``job_id`` lets a retry of the same job (RQ's Retry after a transient error) take back the row it
    left ``running``. Returns the :class:`Claim` the later writes must present.
    """
    worker = worker[:200]
    claimable = extractions.c.status.in_(CLAIMABLE_STATUSES)
    if job_id is not None:
        claimable = or_(claimable, and_(extractions.c.status == "running", extractions.c.rq_job_id == job_id))
    result = conn.execute(update(extractions).where(
        extractions.c.id == extraction_id, extractions.c.extractor == extractor, claimable).values(
        status="running", attempts=extractions.c.attempts + 1, worker=worker, started_at=utcnow(),
        finished_at=None, error=None))
    if result.rowcount == 0:
        log.warning("not running it: %s", _explain_refusal(
            conn, extraction_id, f"a {extractor} extraction in status {' or '.join(CLAIMABLE_STATUSES)}"))
        return None
    return Claim(int(extraction_id), extractor, worker)


def mark_queued(conn: Connection, extraction_ids: Sequence[int], job_id: str | None,
                *, claims: Sequence[Claim] | None = None) -> None:
    """Back to ``queued`` under a (new) job, e.g. a batch re-enqueued after a 429.

    With ``claims``, only the rows those claims still hold change (compare-and-set).
    """
    values = {"status": "queued", "rq_job_id": job_id, "queued_at": utcnow(), "error": None}
    if claims is not None:
        for claim in claims:
            conn.execute(update(extractions).where(_held_by(claim)).values(**values))
        return
    for chunk in _chunks(list(extraction_ids)):
        conn.execute(update(extractions).where(extractions.c.id.in_(chunk)).values(**values))


def save_result(
    conn: Connection, extraction_id: int, features: Mapping[str, float], segments: Sequence[Segment] | None,
    *, seconds: float, claim: Claim | None = None, extractor: str | None = None,
) -> bool:
    """Replace the extraction's feature (and segment) rows and mark it ``done``; idempotent.

    With ``claim`` (every task passes the one :func:`mark_running` gave it) this is a compare-and-set:
    a row the claim no longer holds keeps its features and status, and False is returned (logged).
    Values go to the extractor's tables (:mod:`music_classifier.db.values`): one row, and one
    statement for the segments (``extractor``: the claim's, else looked up from the row).
    """
    done = {"status": "done", "error": None, "finished_at": utcnow(), "seconds": round(float(seconds), 4)}
    if claim is not None:
        if conn.execute(update(extractions).where(_held_by(claim)).values(**done)).rowcount == 0:
            log.warning("result not stored: %s", _explain_refusal(
                conn, extraction_id, f"running by {claim.worker}"))
            return False
        extractor = claim.extractor
    if extractor is None:
        extractor = conn.execute(select(extractions.c.extractor).where(extractions.c.id == extraction_id)).scalar()
    if extractor is None:
        raise ValueError(f"extraction {extraction_id}: no such row")
    _replace_values(conn, extractor, extraction_id, features, segments)
    if claim is None:
        conn.execute(update(extractions).where(extractions.c.id == extraction_id).values(**done))
    return True


def mark_failed(conn: Connection, extraction_id: int, error: str, *, only_if: Mapping[str, Any] | None = None,
                claim: Claim | None = None) -> bool:
    """Status ``failed`` with a readable one-line-first error. ``only_if``: column values the row
    must still have (compare-and-set, so reconciliation never overwrites a result that just landed);
    ``claim``: the row must still be held by that job (what every task passes)."""
    query = update(extractions).where(extractions.c.id == extraction_id)
    if claim is not None:
        query = query.where(_held_by(claim))
    for column, value in (only_if or {}).items():
        query = query.where(extractions.c[column] == value)
    result = conn.execute(query.values(status="failed", error=error.strip()[:MAX_ERROR_CHARS] or "failed",
                                       finished_at=utcnow()))
    if claim is not None and result.rowcount == 0:
        log.warning("failure not stored: %s", _explain_refusal(conn, extraction_id, f"running by {claim.worker}"))
    return result.rowcount > 0


@dataclass(frozen=True)
class AudioJob:
    extraction_id: int
    track_id: int
    audio_path: str | None
    excerpt_s: float | None
    segment_s: float | None
    extractor: str = "librosa"


LibrosaJob = AudioJob  # the name before musicnn


def extraction_exists(conn: Connection, extraction_id: int) -> bool:
    return conn.execute(select(extractions.c.id).where(extractions.c.id == extraction_id)).first() is not None


def load_audio_job(conn: Connection, extraction_id: int, extractor: str = "librosa") -> AudioJob | None:
    """What an audio extractor's task needs from its row; None when there is no such extraction."""
    row = conn.execute(
        select(extractions.c.id, extractions.c.track_id, extractions.c.params, tracks.c.audio_path)
        .join(tracks, tracks.c.id == extractions.c.track_id)
        .where(extractions.c.id == extraction_id, extractions.c.extractor == extractor)
    ).first()
    if row is None:
        return None
    params = row.params or {}
    return AudioJob(row.id, row.track_id, row.audio_path, params.get("excerpt_s"), params.get("segment_s"), extractor)


def load_librosa_job(conn: Connection, extraction_id: int) -> AudioJob | None:
    return load_audio_job(conn, extraction_id, "librosa")
