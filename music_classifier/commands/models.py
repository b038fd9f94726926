"""`music-classifier dataset …`, `train`, `models …`, `evaluate`, `compare`, `predict`: genre classifiers.

Each command parses options and calls one library function in music_classifier.models; heavy imports
(scikit-learn, pandas) happen inside the commands.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from music_classifier.commands.common import bold, console, err_console, handle_errors, state, styled

dataset_app = typer.Typer(help="Balanced genre subsets stored as SQL views (dataset_<name>).\n\n"
                               "Example: music-classifier dataset create top6 --features spotify --top 6 "
                               "--min-per-genre 100", no_args_is_help=True)
models_app = typer.Typer(help="The model registry.\n\nExample: music-classifier models list", no_args_is_help=True)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@contextmanager
def _progress_bar(description: str):
    """A rich progress bar on stderr; yields a (done, total) callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _print_metrics(metrics: dict[str, Any], title: str) -> None:
    from rich.table import Table

    console.print(f"{title}: accuracy {metrics['accuracy']:.3f}, balanced accuracy "
                  f"{metrics['balanced_accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f} (n={metrics['n']})",
                  highlight=False)
    table = Table("genre", "precision", "recall", "F1", "support")
    for genre, m in metrics["per_genre"].items():
        table.add_row(genre, _fmt(m["precision"]), _fmt(m["recall"]), _fmt(m["f1"]), str(m["support"]))
    console.print(table)
    labels = metrics["confusion"]["labels"]
    cm = Table("true \\ predicted", *labels, title="confusion matrix (rows: true genre)")
    for genre, row in zip(labels, metrics["confusion"]["matrix"], strict=True):
        cm.add_row(genre, *map(str, row))
    console.print(cm)


@dataset_app.command("create")
@handle_errors
def dataset_create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name: [a-z][a-z0-9_]{0,40}; the view is dataset_<name>."),
    features: str = typer.Option(..., "--features", help="librosa | musicnn | spotify | gtzan_csv, or a comma "
                                 "list (librosa,musicnn: names prefixed by feature set); both = librosa,spotify."),
    segments: bool = typer.Option(False, "--segments", help="One row per 3 s segment (librosa, musicnn)."),
    top: int = typer.Option(..., "--top", help="Keep the N coarse genres with the most tracks."),
    min_per_genre: int = typer.Option(..., "--min-per-genre", help="A genre needs at least K tracks."),
    max_per_genre: int | None = typer.Option(None, "--max-per-genre", help="Cap each genre at M tracks."),
    source: str | None = typer.Option(None, "--source", help="Comma list of sheet,file,spotify_playlist,csv."),
    seed: int = typer.Option(0, "--seed", help="Which capped sample (0..2^32-1)."),
    allow_fewer: bool = typer.Option(False, "--allow-fewer", help="Create it even if fewer than --top genres "
                                                                  "qualify."),
) -> None:
    """Choose tracks (top-N coarse genres with >= K tracks having the features, capped at M each) and create the view.

    Example: music-classifier dataset create class --features librosa,musicnn --top 8 --min-per-genre 5
    """
    from music_classifier.db.tables import TRACK_SOURCES
    from music_classifier.models.datasets import DatasetDefinition, create_dataset

    definition = DatasetDefinition(features=features, segments=segments, top=top, min_per_genre=min_per_genre,
                                   max_per_genre=max_per_genre, sources=_csv(source) or list(TRACK_SOURCES),
                                   seed=seed)
    with state(ctx).engine.begin() as conn:
        summary = create_dataset(conn, name, definition, allow_fewer=allow_fewer)
    counts = ", ".join(f"{g} {n}" for g, n in summary.genre_counts.items())
    console.print(styled("dataset ", bold(summary.name), f" (id {summary.id}, view {summary.view}): "
                         f"{summary.n_tracks} tracks in {len(summary.genre_counts)} genres: {counts}"))
    for genre, n, why in summary.left_out:
        console.print(f"left out: {genre} ({n} tracks): {why}", highlight=False, markup=False, soft_wrap=True)
    if summary.decided:
        relabelled = sum(m.action == "set" for m in summary.decided)
        console.print(f"{len(summary.decided)} member(s) took a decided genre ({relabelled} relabelled, "
                      f"{len(summary.decided) - relabelled} kept; see: music-classifier dataset show {summary.name})",
                      highlight=False, markup=False, soft_wrap=True)


@dataset_app.command("list")
@handle_errors
def dataset_list(ctx: typer.Context) -> None:
    """List datasets with their size and definition.

    Example: music-classifier dataset list
    """
    from rich.table import Table

    from music_classifier.models.datasets import list_datasets, summary_drift

    with state(ctx).engine.connect() as conn:
        rows = list_datasets(conn, check_stale=True)
    table = Table("id", "name", "features", "tracks stored", "tracks live", "genres", "definition")
    for d in rows:
        df = d.definition
        table.add_row(str(d.id), d.name, df["features"] + (" (segments)" if df.get("segments") else ""),
                      str(d.n_tracks), str(d.n_live), str(len(d.genre_counts)),
                      f"top {df['top']}, min {df['min_per_genre']}, max {df.get('max_per_genre')}, "
                      f"sources {','.join(df['sources'])}, seed {df['seed']}")
    console.print(table if rows else "no datasets (create one: music-classifier dataset create …)")
    for d, drift in ((d, summary_drift(d)) for d in rows):
        if drift.lost:
            console.print(f"warning: dataset {drift.name} lost {drift.lost} member(s) since it was created "
                          f"({drift.by_genre_text()})", highlight=False, markup=False, soft_wrap=True)
        _print_stale(d)


@dataset_app.command("show")
@handle_errors
def dataset_show(ctx: typer.Context, name: str = typer.Argument(..., help="Dataset name.")) -> None:
    """Show a dataset's definition and genre counts: members stored at creation vs still live.

    Example: music-classifier dataset show gtzan
    """
    from music_classifier.models.datasets import get_dataset

    with state(ctx).engine.connect() as conn:
        d = get_dataset(conn, name, check_stale=True)
    console.print(styled("dataset ", bold(d.name), f" (id {d.id}, view {d.view}, created {d.created_at})"))
    console.print(f"definition: {json.dumps(d.definition)}", highlight=False, markup=False)
    console.print("members by genre: stored / live", highlight=False)
    for genre, n in d.genre_counts.items():
        live = d.live_counts.get(genre, 0)
        console.print(f"  {genre}: {n} / {live}" + (f"  ({n - live} lost)" if live != n else ""),
                      highlight=False, markup=False)
    console.print(f"  total: {d.n_tracks} / {d.n_live}", highlight=False)
    if d.n_live != d.n_tracks:
        console.print(f"warning: {d.n_tracks - d.n_live} member(s) removed or without features since the dataset "
                      "was created", highlight=False)
    _print_stale(d)
    if d.decided:
        console.print(f"members that took a decided genre: {len(d.decided)}", highlight=False)
        for m in d.decided:
            console.print(f"  track {m.track_id} ({m.song}): sheet {m.sheet_genre or '-'} -> {m.genre} "
                          f"({m.action}, decision {m.decision_id})", highlight=False, markup=False, soft_wrap=True)


@dataset_app.command("refresh")
@handle_errors
def dataset_refresh(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would change."),
) -> None:
    """Move a dataset's members to their effective genres (label decisions taken since it was created).

    A member relabelled to another of the dataset's genres moves to it; one relabelled to a genre outside
    the dataset leaves it; a genre above --max-per-genre is capped again in the creation's sample order.
    Refused (nothing changed) when a genre would fall below the dataset's --min-per-genre.

    Example: music-classifier dataset refresh class --dry-run
    """
    from music_classifier.models.dataset_refresh import refresh_dataset

    with state(ctx).engine.begin() as conn:
        result = refresh_dataset(conn, name, dry_run=dry_run)
    console.print(result.text() + (f" ({result.counts_text()})" if result.counts_text() else ""),
                  highlight=False, markup=False, soft_wrap=True)
    verb = ("moved", "left") if result.applied else ("would move", "would leave")
    for change in result.moved:
        console.print(f"{verb[0]}: {change.text()}", highlight=False, markup=False, soft_wrap=True)
    for change in result.left:
        console.print(f"{verb[1]}: {change.text()}", highlight=False, markup=False, soft_wrap=True)


@dataset_app.command("drop")
@handle_errors
def dataset_drop(ctx: typer.Context, name: str = typer.Argument(..., help="Dataset name.")) -> None:
    """Drop a dataset's view and rows (models trained on it keep their snapshot).

    Example: music-classifier dataset drop gtzan
    """
    from music_classifier.models.datasets import drop_dataset

    with state(ctx).engine.begin() as conn:
        d = drop_dataset(conn, name)
    console.print(f"dropped dataset {d.name} ({d.n_tracks} tracks) and view {d.view}", highlight=False)


def train(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset name."),
    model: str = typer.Option("rf", "--model", help="rf | logreg | svm | hgb | knn."),
    grid: str = typer.Option("default", "--grid", help="'default' or a JSON grid file."),
    cv: int = typer.Option(5, "--cv", help="Cross-validation folds of the grid search (lowered to the smallest "
                                           "genre on small data)."),
    repeats: int = typer.Option(5, "--repeats", help="Repeats of the K-fold when the smallest genre has < 30 "
                                                     "tracks (1: a single K-fold)."),
    test_size: float = typer.Option(0.25, "--test-size", help="Held-out share (split by group)."),
    final: bool = typer.Option(False, "--final", help="Fit on every track after the CV estimate (no held-out "
                                                      "part); registered as a final model."),
    class_weight: str | None = typer.Option(None, "--class-weight", help="'balanced' to reweight genres."),
    group_by: str | None = typer.Option(None, "--group-by", help="track (default) | artist | playlist."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the split, folds and model."),
    jobs: int | None = typer.Option(None, "--jobs", "-j",
                                    help="Worker processes (default: all cores, or MUSIC_CLASSIFIER_JOBS; -1 = all)."),
) -> None:
    """Grid-search a Pipeline with (repeated) CV; evaluate on a held-out part, or fit on every track (--final).

    Example: music-classifier train gtzan --model rf --final --seed 0
    """
    from music_classifier.models.parallel import resolve_jobs
    from music_classifier.models.train import TrainOptions, train_model

    st = state(ctx)
    opts = TrainOptions(kind=model, grid=grid, cv=cv, repeats=repeats, test_size=test_size, final=final,
                        class_weight=class_weight, group_by=group_by, seed=seed,
                        n_jobs=resolve_jobs(jobs, st.settings.jobs))
    with _progress_bar(f"grid search ({model})") as progress, st.engine.begin() as conn:
        result = train_model(conn, dataset, opts, models_path=st.settings.models_path, progress=progress,
                             on_drift=_print_drift)
    extra = result.extra
    for note in extra["adaptations"]:
        console.print(f"adapted: {note}", highlight=False, markup=False, soft_wrap=True)
    what = (f"final model fitted on all {result.n_train_tracks} tracks" if final else
            f"held-out-split model: {result.n_train_tracks} training / {result.n_test_tracks} held-out tracks")
    console.print(styled("model ", bold(result.model_id), f" ({result.kind} on {result.dataset}), {what}; "
                         f"best params {json.dumps(result.best_params)}"))
    console.print(f"estimate: accuracy {extra['estimate'].text()} on {result.n_train_tracks} tracks "
                  f"[{extra['protocol']}]", highlight=False, markup=False, soft_wrap=True)
    if result.test_metrics:
        _print_metrics(result.test_metrics, "single held-out split")


def _print_stale(d: Any, then: str = " (apply them: ") -> None:
    """The warning that a dataset (a summary or drift with ``pending``) has members whose effective genre changed."""
    if d.pending is None:
        return
    console.print(f"warning: dataset {d.name} is stale: its members' effective genres (label decisions) changed "
                  f"since it was created: {len(d.pending.moved)} would move, {len(d.pending.left)} would leave"
                  f"{then}music-classifier dataset refresh {d.name})", highlight=False, markup=False, soft_wrap=True)


def _print_drift(drift: Any) -> None:
    """Say, before any fit, that a dataset lost members since it was created, or that label decisions
    taken since would change its members' genres (it trains on the genres stored at creation)."""
    if drift is None:
        return
    _print_stale(drift, "; it trains on the genres it stored (refresh it first: ")
    if not drift.lost:
        return
    console.print(f"warning: dataset {drift.name} lost {drift.lost} of its {drift.stored} members since it was "
                  f"created ({drift.by_genre_text()})", highlight=False, markup=False, soft_wrap=True)
    if drift.below_min:
        console.print(f"warning: genre(s) now below --min-per-genre {drift.min_per_genre}: "
                      f"{', '.join(f'{g} ({n})' for g, n in drift.below_min.items())}", highlight=False, markup=False,
                      soft_wrap=True)


@models_app.command("list")
@handle_errors
def models_list(ctx: typer.Context) -> None:
    """List registered models.

    Example: music-classifier models list
    """
    from rich.table import Table

    from music_classifier.models.registry import list_models

    with state(ctx).engine.connect() as conn:
        rows = list_models(conn)
    table = Table("id", "dataset", "kind", "fitted on", "CV acc", "test acc", "test macro F1", "genres", "created")
    for r in rows:
        table.add_row(str(r["id"]), r["dataset_name"], r["kind"], r["basis"], _fmt(r["cv_score"]),
                      _fmt(r["test_accuracy"]), _fmt(r["test_macro_f1"]), str(len(r["genres"])),
                      str(r["created_at"])[:19])
    console.print(table if rows else "no models (train one: music-classifier train DATASET)")


@models_app.command("show")
@handle_errors
def models_show(
    ctx: typer.Context,
    model_id: int = typer.Argument(..., metavar="ID", help="Registry id (see models list)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole registry row as JSON."),
) -> None:
    """Show a registered model: dataset, parameters, scores, metrics, versions, file.

    Example: music-classifier models show 1
    """
    from music_classifier.models.registry import describe_basis, get_model_row

    with state(ctx).engine.connect() as conn:
        row = get_model_row(conn, model_id)
    if as_json:
        row = {**row, "created_at": str(row["created_at"])}
        typer.echo(json.dumps(row, indent=1))
        return
    params = row["params"]
    console.print(styled("model ", bold(row["id"]), f": {row['kind']} on dataset {row['dataset_name']} "
                         f"({len(row['dataset_snapshot']['members'])} tracks at training time), created "
                         f"{row['created_at']}"))
    console.print(f"options: cv {params.get('cv')}, test size {params.get('test_size')}, group by "
                  f"{params.get('group_by')}, class weight {params.get('class_weight')}, seed {params.get('seed')}",
                  highlight=False)
    console.print(f"best params: {json.dumps(row['best_params'])}; CV accuracy {_fmt(row['cv_score'])}",
                  highlight=False, markup=False)
    console.print(describe_basis(row), highlight=False, markup=False)
    if row["test_metrics"]:
        _print_metrics(row["test_metrics"], "single held-out split")
    imp = row["feature_importances"]
    if imp:
        top = sorted(zip(imp["names"], imp["values"], strict=True), key=lambda p: -p[1])[:10]
        console.print(f"top features ({imp['method']}): " + ", ".join(f"{n} {v:.3f}" for n, v in top),
                      highlight=False)
    console.print(f"versions: {json.dumps(row['versions'])}", highlight=False, markup=False)
    console.print(f"file: {row['file_path']} (sha256 {row['file_sha256']})", highlight=False, markup=False)


def evaluate(
    ctx: typer.Context,
    model_id: int = typer.Argument(..., metavar="MODEL", help="Registry id."),
    on: str = typer.Option(..., "--on", help="Dataset to evaluate on."),
    jobs: int | None = typer.Option(None, "--jobs", "-j",
                                    help="Worker processes (default: all cores, or MUSIC_CLASSIFIER_JOBS; -1 = all)."),
) -> None:
    """Evaluate a registered model on another dataset, over the genres both share (the others are listed).

    Example: music-classifier evaluate 3 --on class_tracks
    """
    from music_classifier.models.evaluate import evaluate_model
    from music_classifier.models.parallel import resolve_jobs

    st = state(ctx)
    n_jobs = resolve_jobs(jobs, st.settings.jobs)
    with st.engine.connect() as conn:
        ev = evaluate_model(conn, model_id, on, settings=st.settings, n_jobs=n_jobs)
    console.print(f"model {ev.model_id} on dataset {ev.dataset}: {ev.n_tracks} tracks in "
                  f"{len(ev.shared_genres)} shared genres ({', '.join(ev.shared_genres)})", highlight=False)
    if ev.n_left_out:
        console.print(f"left out {ev.n_left_out} track(s) of {ev.dataset} the model was trained on; "
                      f"scored only the other {ev.n_tracks}", highlight=False)
    if ev.dropped_model_genres:
        console.print(f"genres dropped (the model's, absent from the dataset): {', '.join(ev.dropped_model_genres)}",
                      highlight=False)
    if ev.dropped_dataset_genres:
        dropped = ", ".join(f"{g} ({n} tracks)" for g, n in ev.dropped_dataset_genres.items())
        console.print(f"genres dropped (the dataset's, unknown to the model): {dropped}", highlight=False)
    _print_metrics(ev.metrics, "evaluation")


def compare(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset name."),
    models: str = typer.Option("rf,logreg,svm,hgb,knn", "--models", help="Comma list of model kinds."),
    grid: str = typer.Option("default", "--grid", help="'default' or a JSON grid file ({kind: grid} or one grid)."),
    cv: int = typer.Option(5, "--cv", help="Outer folds (lowered to the smallest genre on small data)."),
    repeats: int = typer.Option(5, "--repeats", help="Repeats of the outer K-fold when the smallest genre has "
                                                     "< 30 tracks (1: a single K-fold)."),
    inner_cv: int = typer.Option(3, "--inner-cv", help="Inner folds of each grid search."),
    group_by: str | None = typer.Option(None, "--group-by", help="track (default) | artist | playlist."),
    class_weight: str | None = typer.Option(None, "--class-weight", help="'balanced' to reweight genres."),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and models."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the per-fold figures to this file."),
    jobs: int | None = typer.Option(None, "--jobs", "-j",
                                    help="Worker processes (default: all cores, or MUSIC_CLASSIFIER_JOBS; -1 = all)."),
) -> None:
    """Nested cross-validation of several models: mean ± SD accuracy; a winner only if it leads by > 2 SD.

    Example: music-classifier compare gtzan --models rf,logreg,knn --seed 0
    """
    from dataclasses import asdict

    from rich.table import Table

    from music_classifier.models.compare import compare_models
    from music_classifier.models.parallel import resolve_jobs

    st = state(ctx)
    n_jobs = resolve_jobs(jobs, st.settings.jobs)
    with _progress_bar("nested CV") as progress, st.engine.connect() as conn:
        res = compare_models(conn, dataset, kinds=_csv(models), grid=grid, cv=cv, inner_cv=inner_cv,
                             group_by=group_by, seed=seed, class_weight=class_weight, repeats=repeats,
                             n_jobs=n_jobs, progress=progress, on_drift=_print_drift)
    console.print(f"dataset {res.dataset}: {res.n_tracks} tracks ({res.n_rows} rows); outer {res.protocol}, "
                  f"grouped by {res.group_by}; inner {res.inner_cv}-fold grid search", highlight=False)
    table = Table("model", "accuracy mean ± SD", "95% interval", "95% lower bound", "macro F1 mean", "folds")
    for s in res.scores:
        summary = s.summary
        if summary is None:
            table.add_row(s.kind, "skipped", "-", "-", "-", "-")
            continue
        wilson = " (Wilson)" if summary.method == "Wilson" else ""
        table.add_row(s.kind, f"{summary.mean:.3f} ± {summary.sd:.3f}",
                      f"{summary.low:.3f}-{summary.high:.3f}{wilson}",
                      f"{summary.lower_bound:.3f} (n={summary.n}, {summary.lower_bound_method})",
                      f"{s.macro_f1_mean:.3f}", str(len(s.fold_accuracy)))
    console.print(table)
    for s in res.scores:
        if s.skipped:
            console.print(f"skipped {s.kind}: {s.skipped}", highlight=False, markup=False, soft_wrap=True)
        for note in s.adaptations:
            console.print(f"adapted: {note}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"winner: {res.winner}" if res.winner else res.reason, highlight=False)
    if res.winner:
        console.print(res.reason, highlight=False)
    if json_out:
        payload = asdict(res)
        for d, s in zip(payload["scores"], res.scores, strict=True):
            summary = s.summary
            d.update(summary.as_dict() if summary else {}, macro_f1_mean=s.macro_f1_mean if summary else None)
        json_out.write_text(json.dumps(payload, indent=1, default=str))


def predict(
    ctx: typer.Context,
    model_id: int = typer.Argument(..., metavar="MODEL", help="Registry id."),
    files: list[Path] | None = typer.Argument(None, metavar="[FILE]...",
                                             help="Audio files (models on librosa/musicnn features)."),
    track: list[int] | None = typer.Option(None, "--track", help="Stored track id (repeatable)."),
) -> None:
    """Genre probabilities for stored tracks (--track ID) or new audio files; stored in `predictions`.

    Example: music-classifier predict 1 --track 12 --track 13
    """
    from music_classifier.errors import InputError
    from music_classifier.models.predict import predict_files, predict_tracks

    if bool(track) == bool(files):
        raise InputError("give either --track ID … or FILE …, not both and not neither")
    from music_classifier.models.registry import describe_basis, get_model_row

    st = state(ctx)
    with st.engine.begin() as conn:
        if track:
            preds = predict_tracks(conn, model_id, list(track), settings=st.settings)
        else:
            with console.status("extracting features…"):
                preds = predict_files(conn, model_id, list(files or []), settings=st.settings)
        basis = describe_basis(get_model_row(conn, model_id))
    console.print(basis, highlight=False, markup=False, soft_wrap=True)
    for p in preds:
        what = f"track {p.track_id}" if p.track_id is not None else p.file_path
        probs = ", ".join(f"{g} {v:.2f}" for g, v in list(p.probabilities.items())[:5])
        fitted = f"; model {model_id} was fitted on this track, so this is no test of it" if p.in_training else ""
        console.print(styled(f"{what}: ", bold(p.genre), f" ({probs}){fitted}"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
    app.command("train")(handle_errors(train))
    app.add_typer(models_app, name="models")
    app.command("evaluate")(handle_errors(evaluate))
    app.command("compare")(handle_errors(compare))
    app.command("predict")(handle_errors(predict))
