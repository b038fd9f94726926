"""`music-classifier demo`: the whole pipeline on generated music, embedded (SQLite, in-process jobs).

It calls the same library functions as the commands, in the order a class would run them:
generate -> db upgrade -> sheet sync -> audio scan -> supplement the thinnest genre -> features
compute (librosa and musicnn) -> dataset create (both feature sets) -> train -> report. Without the
``musicnn`` package the demo says how to install it and goes on with librosa features alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Portable SQL (run on SQLite and PostgreSQL by tests/test_demo_pipeline.py): PostgreSQL's ROUND(x, n)
# takes a numeric, hence the CASTs.
TRY_NEXT = [
    "SELECT coarse_genre, COUNT(*) AS tracks, ROUND(CAST(AVG(tempo) AS NUMERIC), 1) AS avg_bpm FROM librosa_features "
    "GROUP BY coarse_genre ORDER BY tracks DESC",
    "SELECT s.name AS student, t.artist, t.title FROM proposals p JOIN students s ON s.id = p.student_id "
    "JOIN tracks t ON t.id = p.track_id ORDER BY s.name",
    "SELECT artist, title, coarse_genre, ROUND(spectral_centroid_mean) AS centroid_hz FROM librosa_features "
    "ORDER BY centroid_hz DESC LIMIT 5",
    "SELECT artist, title, coarse_genre, ROUND(CAST(tag_jazz AS NUMERIC), 3) AS jazz FROM musicnn_features "
    "ORDER BY tag_jazz DESC LIMIT 5",
]


@dataclass
class DemoResult:
    out_dir: Path
    database_url: str
    database_path: Path
    report_path: Path | None = None
    audit_id: int | None = None
    mislabelled: tuple[str, ...] = ()  # songs the generated sheet files under the wrong genre on purpose
    model_id: int | None = None
    dataset: str = "demo"
    accuracy: float | None = None
    macro_f1: float | None = None
    chance: float | None = None
    steps: list[tuple[str, str]] = field(default_factory=list)  # (step, summary)

    @property
    def serve_command(self) -> str:
        """The command that opens the class page over this run's database (audit queue, player, retrain);
        the models directory is named, since the page only loads model files from inside it."""
        import shlex

        models = shlex.quote(str(self.out_dir / "models"))
        return f"MUSIC_CLASSIFIER_MODELS_DIR={models} music-classifier --db {shlex.quote(self.database_url)} serve"
    feature_sets: str = "librosa"  # what the dataset was built from: "librosa,musicnn" with musicnn installed


def run_demo(out_dir: Path, *, tracks_per_genre: int = 8, seed: int = 0, processes: int | None = None,
             log: Callable[[str, str], None] | None = None, show_progress: bool = False) -> DemoResult:
    """Generate a library in ``out_dir`` and run every step on it; returns where the outputs are."""
    from music_classifier.db import migrate
    from music_classifier.db.engine import make_engine
    from music_classifier.demo.library import generate_demo_library
    from music_classifier.features.musicnn.errors import MusicnnError
    from music_classifier.ingest.audio_scan import scan_library
    from music_classifier.ingest.sheet_source import read_csv
    from music_classifier.ingest.sheet_sync import parse_rows, sync_sheet
    from music_classifier.jobs.compute import compute_extractions
    from music_classifier.jobs.enqueue import librosa_spec, spec_for
    from music_classifier.settings import get_settings

    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / "demo.db"
    if db_path.exists():  # a demo run starts from scratch; the audio is regenerated deterministically
        db_path.unlink()
    url = f"sqlite:///{db_path}"
    result = DemoResult(out_dir=out_dir, database_url=url, database_path=db_path)

    def step(name: str, summary: str) -> None:
        result.steps.append((name, summary))
        if log:
            log(name, summary)

    lib = generate_demo_library(out_dir, tracks_per_genre=tracks_per_genre, seed=seed, show_progress=show_progress)
    result.mislabelled = lib.mislabelled
    counts = ", ".join(f"{g} {n}" for g, n in lib.counts.items())
    step("generate", f"{len(lib.tracks)} sheet tracks ({counts}) + {len(lib.extra_tracks)} extra "
                     f"{lib.thinnest_genre} files in {lib.root}")

    settings = get_settings(database_url=url, library=out_dir,
                            models_dir=out_dir / "models")
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        step("db upgrade", f"{url} at {migrate.current_revision(engine)}")

        parsed = parse_rows(read_csv(lib.sheet_csv))
        with engine.begin() as conn:
            sync = sync_sheet(conn, parsed)
        step("sheet sync", f"added {sync.added}, skipped {len(sync.skipped_rows)} bad rows "
                           f"({'; '.join(str(b) for b in sync.skipped_rows)}); genre mapping: "
                           + ", ".join(f"{k} -> {v}" for k, v in sorted(sync.genre_mapping_applied.items())))

        with engine.begin() as conn:
            scan = scan_library(conn, root=out_dir, subdir=lib.audio_dir)
        step("audio scan", f"{len(scan.matched)} files matched, {len(scan.unmatched)} unmatched, "
                           f"{len(scan.without_audio)} tracks without audio")

        with engine.begin() as conn:
            extra = scan_library(conn, root=out_dir, subdir=lib.extra_dir, add_unmatched_genre=lib.thinnest_genre)
        step("supplement", f"{len(extra.added)} unmatched files registered as {lib.thinnest_genre} tracks "
                           f"(the thinnest genre)")

        procs = processes or min(2, os.cpu_count() or 1)
        feats = compute_extractions(engine, settings, librosa_spec(), selection="missing", processes=procs,
                                    show_progress=show_progress)
        summary = f"librosa: {feats.done} done, {feats.failed} failed in {feats.seconds:.1f} s"
        try:
            nn_spec = spec_for("musicnn")
        except MusicnnError as exc:  # not installed: say how, and go on with librosa alone
            summary += f"; musicnn skipped ({exc})"
        else:
            nn = compute_extractions(engine, settings, nn_spec, selection="missing", processes=procs,
                                     show_progress=show_progress)
            summary += f"; musicnn: {nn.done} done, {nn.failed} failed in {nn.seconds:.1f} s"
            result.feature_sets = "librosa,musicnn"
        step("features compute", f"{summary} ({procs} processes)")

        _train_and_report(engine, settings, result, lib, seed=seed, step=step)
    finally:
        engine.dispose()
    return result


def _train_and_report(engine, settings, result: DemoResult, lib, *, seed: int, step) -> None:  # noqa: ANN001
    """Balanced dataset of the six styles (librosa and musicnn features), a RandomForest with grid search, and
    the HTML report."""
    from music_classifier.models.datasets import DatasetDefinition, create_dataset
    from music_classifier.models.report import build_report
    from music_classifier.models.train import TrainOptions, train_model

    with engine.begin() as conn:
        summary = create_dataset(conn, result.dataset, DatasetDefinition(
            features=result.feature_sets, top=6, min_per_genre=4, seed=seed), allow_fewer=True)
    genres = ", ".join(f"{g} {n}" for g, n in summary.genre_counts.items())
    step("dataset create", f"view {summary.view} ({result.feature_sets} features): {summary.n_tracks} tracks "
                           f"({genres})")

    # Folds need a few tracks of every genre on the training side: small demos get fewer folds.
    fewest_train = int(min(summary.genre_counts.values()) * 0.75)
    options = TrainOptions(kind="rf", cv=max(2, min(5, fewest_train)), test_size=0.25, seed=seed)
    with engine.begin() as conn:
        trained = train_model(conn, result.dataset, options, models_path=settings.models_path)
    metrics = trained.test_metrics
    result.model_id = trained.model_id
    result.accuracy = float(metrics["accuracy"])
    result.macro_f1 = float(metrics["macro_f1"])
    result.chance = 1.0 / len(summary.genre_counts)
    step("train", f"model {trained.model_id} (RandomForest, best {trained.best_params}): CV {trained.cv_score:.2f}, "
                  f"test accuracy {result.accuracy:.2f}, macro F1 {result.macro_f1:.2f} on "
                  f"{trained.n_test_tracks} held-out tracks (chance {result.chance:.2f})")

    # The label audit: which sheet genres the audio disputes, stored for SQL and read by the report.
    from music_classifier.models.audit import run_audit

    with engine.begin() as conn:
        audit = run_audit(conn, result.dataset, kind="rf", seed=seed)
    result.audit_id = audit.audit_id
    suspects = ", ".join(f"{r.artist} - {r.title} ({r.sheet_genre} -> {r.heard_genre})" for r in audit.flagged[:3])
    planted = [f"{r.artist} - {r.title} ranks #{r.rank}" for r in audit.rows if f"{r.artist} - {r.title}" in
               lib.mislabelled]
    step("audit", f"audit {audit.audit_id}: {len(audit.flagged)} of {len(audit.rows)} sheet genres disputed by the "
                  f"audio{': ' + suspects if suspects else ''} (table label_issues, view student_summary)"
                  + (f"; the sheet's planted mislabel {', '.join(planted)}" if planted else ""))

    with engine.connect() as conn:
        result.report_path = build_report(conn, trained.model_id, out_dir=result.out_dir / "report",
                                          settings=settings, seed=seed)
    step("report", f"{result.report_path} (map, audit and per-student sections included)")
