"""The body of a Spotify job: one batch of ``spotify`` extractions, from search to stored features.

Order of work, and why:
1. Read the extractions and the breaker (short read, no transaction held across HTTP calls).
2. Breaker open (and the provider is Spotify): fail the batch with the breaker's message, no request.
3. Search for tracks without a Spotify id (best of several results by normalised similarity).
4. Fetch audio features for all ids (batches of the provider's size).
   - 429: :class:`RateLimited` propagates and *nothing* is written; the job layer re-enqueues it after
     Retry-After (the worker never sleeps).
   - 403: open the breaker, record the searches, fail the batch with the message (one commit), then
     raise :class:`AudioFeaturesForbidden` so the CLI shows it once.
5. One commit: search results on ``tracks``; per extraction, :func:`jobs.persist.save_result` (features
   replaced, so a job run twice leaves one set of rows; status ``done``) or ``failed`` with its reason.
Status ``running``/attempts are the job layer's (``jobs.tasks.spotify_batch`` marks them first).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, func, select, update

from music_classifier.db.tables import extractions, tracks
from music_classifier.db.values import delete_values
from music_classifier.errors import ConfigError
from music_classifier.features.spotify_errors import AudioFeaturesForbidden
from music_classifier.features.spotify_match import MATCH_THRESHOLD
from music_classifier.jobs.persist import Claim, mark_failed, save_result
from music_classifier.jobs.spotify_breaker import open_breaker, read_breaker

if TYPE_CHECKING:
    from music_classifier.features.spotify_provider import AudioFeaturesProvider, FeatureValues, SpotifyCatalog
    from music_classifier.settings import Settings


@dataclass
class BatchOutcome:
    done: list[int] = field(default_factory=list)  # extraction ids
    failed: dict[int, str] = field(default_factory=dict)  # extraction id -> error
    missing: list[int] = field(default_factory=list)  # ids with no extraction row (deleted meanwhile)
    breaker_open: bool = False  # the batch was failed by the breaker without calling Spotify
    searched: int = 0
    not_found: int = 0


@dataclass(frozen=True)
class _Item:
    extraction_id: int
    track_id: int
    artist: str
    title: str
    spotify_id: str | None


@dataclass(frozen=True)
class _Lookup:
    spotify_id: str | None
    score: float | None

    @property
    def found(self) -> bool:
        return self.spotify_id is not None


def _load(conn: Connection, extraction_ids: list[int]) -> list[_Item]:
    rows = conn.execute(
        select(extractions.c.id, tracks.c.id.label("track_id"), tracks.c.artist, tracks.c.title, tracks.c.spotify_id)
        .join(tracks, tracks.c.id == extractions.c.track_id)
        .where(extractions.c.id.in_(extraction_ids), extractions.c.extractor == "spotify")
        .order_by(extractions.c.id)
    )
    return [_Item(r.id, r.track_id, r.artist, r.title, r.spotify_id) for r in rows]


def _store_lookups(conn: Connection, lookups: dict[int, _Lookup]) -> None:
    for track_id, lookup in lookups.items():
        conn.execute(update(tracks).where(tracks.c.id == track_id).values(
            spotify_id=lookup.spotify_id, spotify_match_score=lookup.score,
            spotify_lookup="found" if lookup.found else "not_found", updated_at=func.now()))


def _fail_all(engine: Engine, items: list[_Item], message: str, lookups: dict[int, _Lookup], *,
              trip_breaker: bool, claims: Mapping[int, Claim]) -> None:
    with engine.begin() as conn:
        if trip_breaker:
            open_breaker(conn, message)
        _store_lookups(conn, lookups)
        for item in items:
            mark_failed(conn, item.extraction_id, message, claim=claims.get(item.extraction_id))


def not_found_message(score: float | None, threshold: float) -> str:
    if score is None:
        return "not found on Spotify (no search results)"
    return f"not found on Spotify (best match score {score:.2f} < threshold {threshold:.2f})"


def process_spotify_batch(
    engine: Engine,
    extraction_ids: list[int],
    *,
    settings: Settings,
    provider: AudioFeaturesProvider | None = None,
    catalog: SpotifyCatalog | None = None,
    threshold: float = MATCH_THRESHOLD,
    claims: Sequence[Claim] | None = None,
) -> BatchOutcome:
    """Run one batch of ``spotify`` extractions (see the module docstring). ``provider`` and ``catalog``
    default to the ones the settings describe. ``claims`` (what the job's :func:`~.persist.mark_running`
    returned) make every status change a compare-and-set on them."""
    from music_classifier.features.spotify_provider import SpotifyCatalog, make_audio_features_provider

    started = time.monotonic()
    outcome = BatchOutcome()
    held = {claim.extraction_id: claim for claim in claims or ()}
    with engine.connect() as conn:
        items = _load(conn, list(extraction_ids))
        breaker = read_breaker(conn)
    if claims is not None:  # a job writes only the rows it holds
        items = [item for item in items if item.extraction_id in held]
    outcome.missing = sorted(set(extraction_ids) - {i.extraction_id for i in items})
    if not items:
        return outcome

    provider_name = provider.name if provider is not None else settings.audio_features_provider.strip().lower()
    if breaker.is_open and provider_name == "spotify":
        message = breaker.reason or AudioFeaturesForbidden().args[0]
        _fail_all(engine, items, message, {}, trip_breaker=False, claims=held)
        outcome.breaker_open = True
        outcome.failed = {i.extraction_id: message for i in items}
        return outcome

    # 3. search, once per track
    lookups: dict[int, _Lookup] = {}
    to_search = {i.track_id: i for i in items if not i.spotify_id}
    if to_search:
        try:
            catalog = catalog or SpotifyCatalog.from_settings(settings)
        except ConfigError as exc:  # no credentials: every row says so (none is left `running`)
            _fail_all(engine, items, str(exc), {}, trip_breaker=False, claims=held)
            raise
        for track_id, item in to_search.items():
            match = catalog.best_search_match(item.artist, item.title)
            if match is not None and match.score >= threshold:
                lookups[track_id] = _Lookup(match.spotify_id, round(match.score, 4))
            else:
                lookups[track_id] = _Lookup(None, round(match.score, 4) if match is not None else None)
        outcome.searched = len(to_search)
        outcome.not_found = sum(1 for lk in lookups.values() if not lk.found)

    def spotify_id_of(item: _Item) -> str | None:
        return item.spotify_id or lookups[item.track_id].spotify_id

    # 4. audio features
    ids = list(dict.fromkeys(sid for sid in map(spotify_id_of, items) if sid))
    values: dict[str, FeatureValues | None] = {}
    if ids:
        try:
            provider = provider or make_audio_features_provider(settings)
        except ConfigError as exc:
            _fail_all(engine, items, str(exc), lookups, trip_breaker=False, claims=held)
            raise
        try:
            values = provider.fetch_audio_features(ids)
        except AudioFeaturesForbidden as exc:
            _fail_all(engine, items, str(exc), lookups, trip_breaker=True, claims=held)
            raise

    # 5. one commit
    per_item = (time.monotonic() - started) / len(items)
    with engine.begin() as conn:
        _store_lookups(conn, lookups)
        for item in items:
            sid = spotify_id_of(item)
            row = values.get(sid) if sid else None
            if sid is None:
                error: str | None = not_found_message(lookups[item.track_id].score, threshold)
            elif row is None:
                error = f"{provider_name} has no audio features for Spotify track {sid}"
            else:
                error = None
            claim = held.get(item.extraction_id)
            if error:
                if mark_failed(conn, item.extraction_id, error, claim=claim):
                    # No values from an earlier run may outlive a failure (the views skip failed rows anyway).
                    delete_values(conn, "spotify", [item.extraction_id])
                    outcome.failed[item.extraction_id] = error
            # A field the provider lacks (ReccoBeats has no duration_ms) stays NULL: NULL in the view.
            elif save_result(conn, item.extraction_id, {k: v for k, v in row.items() if v is not None}, None,
                             seconds=per_item, claim=claim):
                outcome.done.append(item.extraction_id)
    return outcome
