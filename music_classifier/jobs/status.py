"""``music-classifier jobs``: what the database says about extractions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, select

from music_classifier.db.tables import EXTRACTION_STATUSES, extractions, tracks


@dataclass(frozen=True)
class Failure:
    extraction_id: int
    extractor: str
    track_id: int
    song: str
    error: str
    finished_at: datetime | None


@dataclass
class JobsStatus:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # extractor -> status -> count
    failures: list[Failure] = field(default_factory=list)  # most recent first
    redis_queued: int | None = None  # jobs waiting in the RQ queue (None: no Redis)


def jobs_status(conn: Connection, *, recent_failures: int = 10) -> JobsStatus:
    out = JobsStatus()
    rows = conn.execute(select(extractions.c.extractor, extractions.c.status, func.count())
                        .group_by(extractions.c.extractor, extractions.c.status)
                        .order_by(extractions.c.extractor))
    for extractor, status, n in rows:
        out.counts.setdefault(extractor, dict.fromkeys(EXTRACTION_STATUSES, 0))[status] = n
    failed = conn.execute(
        select(extractions.c.id, extractions.c.extractor, extractions.c.track_id, tracks.c.song, extractions.c.error,
               extractions.c.finished_at)
        .join(tracks, tracks.c.id == extractions.c.track_id)
        .where(extractions.c.status == "failed")
        .order_by(extractions.c.finished_at.desc().nulls_last(), extractions.c.id.desc())
        .limit(recent_failures))
    out.failures = [Failure(r.id, r.extractor, r.track_id, r.song, r.error or "", r.finished_at) for r in failed]
    return out
