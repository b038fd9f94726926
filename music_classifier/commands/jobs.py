"""`music-classifier worker` and `music-classifier jobs …`: run, inspect and repair feature jobs."""

from __future__ import annotations

import typer

from music_classifier.commands.common import bold, console, handle_errors, state, styled

jobs_app = typer.Typer(
    help="Feature jobs: counts by status, recent failures, retry and reconciliation.\n\n"
    "Example: music-classifier jobs",
    invoke_without_command=True,
)


def worker(
    ctx: typer.Context,
    burst: bool = typer.Option(False, "--burst", help="Quit when the queue is empty."),
    queue: str | None = typer.Option(None, "--queue", metavar="NAME",
                                     help="RQ queue (default: MUSIC_CLASSIFIER_QUEUE)."),
    preload: bool = typer.Option(True, "--preload/--no-preload",
                                 help="Import librosa and compile the kernels once before forking jobs."),
) -> None:
    """Run an RQ worker (with RQ's scheduler) that only executes music_classifier tasks.

    Reads REDIS_URL, DATABASE_URL and MUSIC_CLASSIFIER_LIBRARY (this machine's mount of the audio).

    Example: music-classifier worker --burst
    """
    from music_classifier.jobs.worker import run_worker

    run_worker(state(ctx).settings, queue_name=queue, burst=burst, preload=preload)


@jobs_app.callback()
@handle_errors
def jobs(ctx: typer.Context) -> None:
    """Extractions by status per extractor, and the most recent failures with their errors.

    Example: music-classifier jobs
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from music_classifier.db.tables import EXTRACTION_STATUSES
    from music_classifier.jobs.status import jobs_status

    with state(ctx).engine.connect() as conn:
        status = jobs_status(conn)
    table = Table("extractor", *EXTRACTION_STATUSES)
    for extractor, counts in status.counts.items():
        table.add_row(extractor, *(str(counts[s]) for s in EXTRACTION_STATUSES))
    if status.counts:
        console.print(table)
    else:
        console.print("no extractions yet: run `music-classifier features enqueue` or `features compute`")
    if status.failures:
        console.print("recent failures:")
    for f in status.failures:
        console.print(f"  {f.extractor} extraction {f.extraction_id} (track {f.track_id}, {f.song}): {f.error}",
                      markup=False, highlight=False, soft_wrap=True)


@jobs_app.command("retry")
@handle_errors
def retry(
    ctx: typer.Context,
    failed: bool = typer.Option(False, "--failed", help="Enqueue every failed extraction again (required)."),
    extractor: str | None = typer.Option(None, "--extractor", metavar="librosa|spotify", help="Only this extractor."),
) -> None:
    """Enqueue failed extractions again (new job ids).

    Example: music-classifier jobs retry --failed
    """
    from music_classifier.errors import ConfigError
    from music_classifier.jobs.reconcile import retry_failed
    from music_classifier.jobs.runtime import queue_from_settings

    if not failed:
        raise ConfigError("say what to retry: `music-classifier jobs retry --failed`")
    st = state(ctx)
    queue = queue_from_settings(st.settings)
    with st.engine.begin() as conn:
        n = retry_failed(conn, queue, extractor=extractor)
    console.print(styled(f"{n} failed extraction(s) queued again on ", bold(queue.name)))


@jobs_app.command("reconcile")
@handle_errors
def reconcile_cmd(ctx: typer.Context) -> None:
    """Make Redis agree with the database: dead workers' rows -> failed, lost queued jobs -> enqueued again.

    Without REDIS_URL only rows of dead local processes are fixed.

    Example: music-classifier jobs reconcile
    """
    from music_classifier.jobs.reconcile import reconcile
    from music_classifier.jobs.runtime import queue_from_settings

    st = state(ctx)
    queue = queue_from_settings(st.settings) if st.settings.redis_url else None
    with st.engine.begin() as conn:
        report = reconcile(conn, queue)
    console.print(f"{len(report.dead)} running extraction(s) of dead workers marked failed, "
                  f"{report.back_to_queued} back to queued (retry pending), "
                  f"{report.requeued} lost queued extraction(s) enqueued again")
    for extraction_id, error in report.dead[:10]:
        console.print(f"  extraction {extraction_id}: {error}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("worker")(handle_errors(worker))
    app.add_typer(jobs_app, name="jobs")
