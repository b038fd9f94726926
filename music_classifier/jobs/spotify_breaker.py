"""The Spotify audio-features breaker: one row in ``service_state`` that every worker reads.

Spotify answers 403 on audio-features for apps created after 2024-11-27, and will keep doing so:
after the first 403 any worker opens the breaker, and every later batch (on any machine) fails at
once with the same message instead of asking again. ``music-classifier spotify breaker --reset``
closes it (after switching provider or getting access). Functions take the caller's connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, select

from music_classifier.db.tables import service_state

BREAKER_KEY = "spotify_audio_features"


@dataclass(frozen=True)
class BreakerState:
    is_open: bool
    reason: str | None = None
    opened_at: datetime | None = None


def read_breaker(conn: Connection) -> BreakerState:
    row = conn.execute(select(service_state.c.value, service_state.c.updated_at)
                       .where(service_state.c.key == BREAKER_KEY)).first()
    if row is None or not row.value:
        return BreakerState(False)
    try:
        value = json.loads(row.value)
    except ValueError:  # written by hand: any non-JSON value still means "open"
        value = {"state": "open", "reason": row.value}
    if value.get("state") != "open":
        return BreakerState(False)
    return BreakerState(True, value.get("reason"), row.updated_at)


def open_breaker(conn: Connection, reason: str) -> None:
    """Open (or re-open) the breaker: an upsert, so two workers tripping it at once both succeed."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    value = json.dumps({"state": "open", "reason": reason})
    stmt = insert(service_state).values(key=BREAKER_KEY, value=value, updated_at=func.now())
    conn.execute(stmt.on_conflict_do_update(index_elements=[service_state.c.key],
                                            set_={"value": stmt.excluded.value, "updated_at": func.now()}))


def reset_breaker(conn: Connection) -> bool:
    """Close the breaker. Returns whether it was open."""
    was_open = read_breaker(conn).is_open
    conn.execute(delete(service_state).where(service_state.c.key == BREAKER_KEY))
    return was_open
