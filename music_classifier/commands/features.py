"""`music-classifier features …`: compute audio features, through RQ workers or in-process.

Other modules attach their own commands to :data:`features_app` (e.g. ``features import-csv``).
"""

from __future__ import annotations

import os

import typer

from music_classifier.commands.common import bold, console, handle_errors, is_tty, state, styled

features_app = typer.Typer(
    help="Compute features (librosa and musicnn from audio, Spotify audio features) into the features tables.\n\n"
    "Example: music-classifier features enqueue --extractor librosa --missing",
    no_args_is_help=True,
)

EXTRACTOR_HELP = ("librosa (hand-made features from the audio files), musicnn (pretrained network: embeddings and "
                  "MSD tags from the audio files) or spotify (audio features by Spotify id).")

# Options shared by `features enqueue` and `features compute`: both choose the same work.
EXTRACTOR_OPTION = typer.Option(..., "--extractor", metavar="librosa|musicnn|spotify", help=EXTRACTOR_HELP)
MISSING_OPTION = typer.Option(False, "--missing", help="Tracks without this extraction (default).")
FAILED_OPTION = typer.Option(False, "--failed", help="Extractions that failed.")
STALE_OPTION = typer.Option(False, "--stale", help="Extractions whose audio file changed.")
ALL_OPTION = typer.Option(False, "--all", help="Every track (recompute), except work already queued.")
EXCERPT_OPTION = typer.Option(None, "--excerpt", metavar="SECONDS",
                              help="librosa/musicnn: analyse this many seconds from the middle (default: whole).")
SEGMENTS_OPTION = typer.Option(True, "--segments/--no-segments", help="librosa/musicnn: also 3 s segment features.")


def _selection(missing: bool, failed: bool, stale: bool, all_: bool) -> str:
    from music_classifier.errors import ConfigError

    chosen = [name for name, flag in (("missing", missing), ("failed", failed), ("stale", stale), ("all", all_))
              if flag]
    if len(chosen) > 1:
        given = ", ".join("--" + c for c in chosen)
        raise ConfigError(f"choose one of --missing, --failed, --stale, --all (got {given})")
    return chosen[0] if chosen else "missing"


def _spec(ctx: typer.Context, extractor: str, excerpt: float | None, segments: bool):  # noqa: ANN202
    from music_classifier.jobs.enqueue import spec_for

    return spec_for(extractor, excerpt_s=excerpt, segments=segments,
                    provider=state(ctx).settings.audio_features_provider)


@features_app.command("enqueue")
@handle_errors
def enqueue(
    ctx: typer.Context,
    extractor: str = EXTRACTOR_OPTION,
    missing: bool = MISSING_OPTION,
    failed: bool = FAILED_OPTION,
    stale: bool = STALE_OPTION,
    all_: bool = ALL_OPTION,
    excerpt: float | None = EXCERPT_OPTION,
    segments: bool = SEGMENTS_OPTION,
    queue: str | None = typer.Option(None, "--queue", metavar="NAME",
                                     help="RQ queue (default: MUSIC_CLASSIFIER_QUEUE)."),
) -> None:
    """Queue one RQ job per track (Spotify: per 100 tracks) on Redis (REDIS_URL); workers compute them.

    Example: music-classifier features enqueue --extractor librosa --missing --excerpt 30
    """
    from music_classifier.jobs.enqueue import enqueue_extractions
    from music_classifier.jobs.runtime import queue_from_settings

    st = state(ctx)
    selection = _selection(missing, failed, stale, all_)
    spec = _spec(ctx, extractor, excerpt, segments)
    rq_queue = queue_from_settings(st.settings, queue)
    with st.engine.begin() as conn:
        if extractor == "spotify":
            from music_classifier.jobs.persist import select_track_ids
            from music_classifier.jobs.spotify_preflight import check_spotify_can_run

            check_spotify_can_run(conn, st.settings, select_track_ids(
                conn, extractor=extractor, version=spec.version, params_hash=spec.params_hash, selection=selection))
        report = enqueue_extractions(conn, rq_queue, extractor=extractor, selection=selection, spec=spec)
    console.print(styled(f"{report.tracks} {extractor} extraction(s) queued as {report.jobs} job(s) on queue ",
                         bold(report.queue), f" ({selection}); run `music-classifier worker` to process them"))


@features_app.command("compute")
@handle_errors
def compute(
    ctx: typer.Context,
    extractor: str = EXTRACTOR_OPTION,
    missing: bool = MISSING_OPTION,
    failed: bool = FAILED_OPTION,
    stale: bool = STALE_OPTION,
    all_: bool = ALL_OPTION,
    excerpt: float | None = EXCERPT_OPTION,
    segments: bool = SEGMENTS_OPTION,
    processes: int = typer.Option(os.cpu_count() or 1, "--processes", "-p", metavar="N",
                                  help="librosa/musicnn: worker processes (default: CPU count)."),
) -> None:
    """Compute features in this process (N worker processes), no Redis needed; shows a progress bar.

    Example: music-classifier features compute --extractor musicnn --missing --processes 2
    """
    from music_classifier.errors import PartialSuccess
    from music_classifier.jobs.compute import compute_extractions

    st = state(ctx)
    selection = _selection(missing, failed, stale, all_)
    spec = _spec(ctx, extractor, excerpt, segments)
    report = compute_extractions(st.engine, st.settings, spec, selection=selection, processes=processes,
                                 show_progress=is_tty())
    console.print(f"{extractor}: {report.done} done, {report.failed} failed of {report.tracks} "
                  f"({selection}) in {report.seconds:.1f} s")
    for extraction_id, error in report.errors:
        console.print(f"  failed extraction {extraction_id}: {error}", markup=False, highlight=False, soft_wrap=True)
    if report.failed:
        raise PartialSuccess(f"{report.failed} of {report.tracks} extraction(s) failed; the rest are stored "
                             "(see `music-classifier jobs`)")


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
