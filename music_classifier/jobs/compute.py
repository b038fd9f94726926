"""``features compute``: the worker's task functions, run in-process (no Redis needed).

Audio extractions (librosa, musicnn) run in a :class:`~concurrent.futures.ProcessPoolExecutor` of
N processes, each child calling the extractor's task (:func:`music_classifier.jobs.tasks.audio_track`)
exactly as an RQ work horse does, with its own engine (SQLite writes are short transactions that
wait on ``busy_timeout``).
Spotify batches are network-bound and run one after another in this process; a 429 shows a
countdown of Retry-After and retries the same batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from music_classifier.db.tables import extractions
from music_classifier.features.registry import get_extractor
from music_classifier.jobs import runtime
from music_classifier.jobs.persist import ensure_extractions, mark_failed, select_track_ids

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from music_classifier.jobs.enqueue import ExtractionSpec
    from music_classifier.settings import Settings

#: Give up a Spotify batch after this many consecutive 429s (each waits its Retry-After).
MAX_RATE_LIMIT_WAITS = 5


@dataclass
class ComputeReport:
    extractor: str
    selection: str
    params: dict
    tracks: int = 0
    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (extraction id, error), first few


def _init_child(settings: Settings) -> None:
    runtime.configure(settings)


def _run_audio(extractor: str, extraction_id: int) -> None:
    from music_classifier.jobs.tasks import audio_track

    audio_track(extractor, extraction_id)


def countdown(seconds: float, message: str) -> None:
    """Wait ``seconds`` showing a live countdown on stderr (in-process runs only; workers never sleep)."""
    from rich.live import Live
    from rich.text import Text

    from music_classifier.text_safety import safe_console

    console = safe_console(stderr=True)  # the message may quote the server
    end = time.monotonic() + seconds
    with Live(console=console, transient=True, refresh_per_second=4) as live:
        while (left := end - time.monotonic()) > 0:
            live.update(Text(f"{message}: retrying in {left:4.0f} s"))  # server text: no markup
            time.sleep(min(0.25, left))


def compute_extractions(
    engine: Engine, settings: Settings, spec: ExtractionSpec, *, selection: str = "missing", processes: int = 1,
    show_progress: bool = False, wait: Callable[[float, str], None] = countdown,
) -> ComputeReport:
    """Compute the selected extractions in this machine's processes; returns counts and first errors."""
    from music_classifier.errors import InputError

    if processes < 1:
        raise InputError(f"--processes must be at least 1, got {processes}")
    started = time.perf_counter()
    with engine.begin() as conn:
        track_ids = select_track_ids(conn, extractor=spec.extractor, version=spec.version,
                                     params_hash=spec.params_hash, selection=selection)
        if spec.extractor == "spotify":
            from music_classifier.jobs.spotify_preflight import check_spotify_can_run

            check_spotify_can_run(conn, settings, track_ids)  # before any row is written
        ids_by_track = ensure_extractions(conn, track_ids, extractor=spec.extractor, version=spec.version,
                                          params=spec.params, params_hash=spec.params_hash)
    ids = list(ids_by_track.values())
    report = ComputeReport(spec.extractor, selection, dict(spec.params), tracks=len(ids))
    if ids:
        with _progress(show_progress, len(ids), spec.extractor) as advance:
            if get_extractor(spec.extractor).needs_audio:
                _compute_audio(engine, settings, spec.extractor, ids, processes, advance)
            else:
                _compute_spotify(engine, settings, ids, advance, wait)
    _count(engine, ids, report)
    report.seconds = time.perf_counter() - started
    return report


def _compute_audio(engine: Engine, settings: Settings, extractor: str, ids: list[int], processes: int,
                   advance) -> None:  # noqa: ANN001
    if extractor == "librosa":
        # Compile/load the numba kernels here, under the cache's lock, before any child starts:
        # children (and workers running meanwhile) then only read the cache (numba issue 10128).
        from music_classifier.features.numba_cache import warm_numba_cache

        warm_numba_cache()
    if processes == 1:
        previous = runtime._configured
        runtime.configure(settings)
        try:
            for extraction_id in ids:
                _guarded(engine, extraction_id, lambda i=extraction_id: _run_audio(extractor, i))
                advance(1)
        finally:
            runtime.configure(previous)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # forkserver: children start clean (no inherited engine connections or numba/BLAS threads).
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=_init_child,
                             initargs=(settings,)) as pool:
        futures = {pool.submit(_run_audio, extractor, i): i for i in ids}
        for future in as_completed(futures):
            _guarded(engine, futures[future], future.result)
            advance(1)


def _guarded(engine: Engine, extraction_id: int, call: Callable[[], object]) -> None:
    """Run a task; an error it raised (transient under RQ, here final) marks its extraction failed."""
    from music_classifier.jobs.tasks import describe_error

    try:
        call()
    except Exception as exc:  # noqa: BLE001 - recorded on the row, the run goes on
        with engine.begin() as conn:
            mark_failed(conn, extraction_id, describe_error(exc))


def _compute_spotify(engine: Engine, settings: Settings, ids: list[int], advance,  # noqa: ANN001
                     wait: Callable[[float, str], None]) -> None:
    from music_classifier.features.spotify_errors import RateLimited
    from music_classifier.jobs.enqueue import SPOTIFY_BATCH_SIZE
    from music_classifier.jobs.tasks import spotify_batch

    previous = runtime._configured
    runtime.configure(settings)
    try:
        for start in range(0, len(ids), SPOTIFY_BATCH_SIZE):
            batch = ids[start:start + SPOTIFY_BATCH_SIZE]
            for attempt in range(MAX_RATE_LIMIT_WAITS + 1):
                try:
                    _guarded_batch(engine, batch, lambda b=batch: spotify_batch(b))
                    break
                except RateLimited as exc:
                    if attempt == MAX_RATE_LIMIT_WAITS:
                        raise
                    wait(exc.retry_after_s, str(exc))
            advance(len(batch))
    finally:
        runtime.configure(previous)


def _guarded_batch(engine: Engine, batch: list[int], call: Callable[[], object]) -> None:
    from music_classifier.features.spotify_errors import AudioFeaturesForbidden, RateLimited

    try:
        call()
    except (RateLimited, AudioFeaturesForbidden):
        raise  # the caller waits / the CLI shows the breaker's message once
    except Exception as exc:  # noqa: BLE001
        from music_classifier.jobs.tasks import describe_error

        with engine.begin() as conn:
            for extraction_id in batch:
                mark_failed(conn, extraction_id, describe_error(exc), only_if={"status": "running"})


def _count(engine: Engine, ids: list[int], report: ComputeReport) -> None:
    from music_classifier.jobs.persist import _chunks

    with engine.connect() as conn:
        for chunk in _chunks(ids):
            for status, n in conn.execute(select(extractions.c.status, func.count()).where(
                    extractions.c.id.in_(chunk)).group_by(extractions.c.status)):
                if status == "done":
                    report.done += n
                elif status == "failed":
                    report.failed += n
            if len(report.errors) < 10:
                report.errors += [(eid, error) for eid, error in conn.execute(
                    select(extractions.c.id, extractions.c.error).where(
                        extractions.c.id.in_(chunk), extractions.c.status == "failed")
                    .order_by(extractions.c.id).limit(10 - len(report.errors)))]


class _progress:
    """A rich progress bar (or nothing); the context value advances it."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label
        self._bar = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda _n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn(self.label, markup=False), BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
