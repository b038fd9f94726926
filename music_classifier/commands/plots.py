"""`music-classifier plot …` and `music-classifier report`: figures and the HTML report of a model."""

from __future__ import annotations

from pathlib import Path

import typer

from music_classifier.commands.common import console, handle_errors, state

plot_app = typer.Typer(
    help="Draw a PNG figure of a dataset or a registered model.\n\n"
    "Example: music-classifier plot confusion 3 --out confusion.png",
    no_args_is_help=True,
)

OUT_PNG = typer.Option(..., "--out", metavar="FILE.png", help="PNG file to write (folders are created).")


def _check_png(out: Path) -> Path:
    from music_classifier.output_paths import check_output_file

    return check_output_file(out, suffixes=(".png",))


@plot_app.command("tsne")
@handle_errors
def tsne(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset name (see `music-classifier dataset list`)."),
    out: Path = OUT_PNG,
    seed: int = typer.Option(0, "--seed", help="t-SNE random state (the map is reproducible for a seed)."),
) -> None:
    """t-SNE map of a dataset's standardised features, one colour per genre.

    Perplexity is min(30, (n-1)/3); datasets above 2,000 rows are subsampled with the seed.

    Example: music-classifier plot tsne librosa_top10 --out tsne.png
    """
    from music_classifier.models.report import plot_dataset_tsne

    with state(ctx).engine.connect() as conn:
        path = plot_dataset_tsne(conn, dataset, out=_check_png(out), seed=seed)
    console.print(f"wrote {path}")


@plot_app.command("map")
@handle_errors
def track_map(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset name (see `music-classifier dataset list`)."),
    out: Path = typer.Option(..., "--out", metavar="FILE.html", help="HTML file to write (folders are created)."),
    seed: int = typer.Option(0, "--seed", help="Random state of the t-SNE map, the subsample and the folds."),
    model: str = typer.Option("rf", "--model", help="Model kind for out-of-fold predictions when no audit is stored."),
) -> None:
    """Interactive t-SNE map of a dataset's tracks as one offline HTML file (hover, legend toggles, search).

    Hover shows artist, title, student, sheet genre and the out-of-fold predicted genre with its
    confidence (from the dataset's newest stored audit, else computed). Above 3,000 tracks a seeded
    subsample is drawn and the page says so.

    Example: music-classifier plot map gtzan70 --out map.html
    """
    from music_classifier.models.track_map import plot_dataset_map
    from music_classifier.output_paths import check_output_file

    check_output_file(out, suffixes=(".html", ".htm"))
    with state(ctx).engine.connect() as conn:
        path = plot_dataset_map(conn, dataset, out=out, seed=seed, kind=model)
    console.print(f"wrote {path}", highlight=False, markup=False)


@plot_app.command("confusion")
@handle_errors
def confusion(
    ctx: typer.Context,
    model: int = typer.Argument(..., help="Model id in the registry (see `music-classifier models list`)."),
    out: Path = OUT_PNG,
) -> None:
    """Confusion matrix of a model's held-out test set, as stored in the registry.

    Example: music-classifier plot confusion 3 --out confusion.png
    """
    from music_classifier.models.report import plot_model_confusion

    with state(ctx).engine.connect() as conn:
        path = plot_model_confusion(conn, model, out=_check_png(out))
    console.print(f"wrote {path}")


@plot_app.command("importances")
@handle_errors
def importances(
    ctx: typer.Context,
    model: int = typer.Argument(..., help="Model id in the registry (see `music-classifier models list`)."),
    out: Path = OUT_PNG,
    top: int = typer.Option(20, "--top", min=1, help="How many of the largest importances to show."),
) -> None:
    """The largest feature importances a model stored (tree models only).

    Example: music-classifier plot importances 3 --out importances.png --top 15
    """
    from music_classifier.models.report import plot_model_importances

    with state(ctx).engine.connect() as conn:
        path = plot_model_importances(conn, model, out=_check_png(out), top=top)
    console.print(f"wrote {path}")


@handle_errors
def report(
    ctx: typer.Context,
    model: int = typer.Argument(..., help="Model id in the registry (see `music-classifier models list`)."),
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Folder for index.html and its PNGs (created)."),
    seed: int = typer.Option(0, "--seed", help="Random state of the map and of an audit computed for the report."),
) -> None:
    """Write a self-contained HTML report of a registered model to DIR/index.html.

    Dataset composition, metrics, per-genre table, confusion matrix, feature importances, the most
    confidently misclassified tracks (with their nearest tracks) and library versions, all read from
    the stored run; an interactive map of the tracks, the label audit (the dataset's newest stored
    one, else computed) and a per-student table, from the dataset's current features. Images and
    plotly.js are embedded, so the one file (~5 MB) can be mailed or opened offline.

    Example: music-classifier report 3 --out reports/model-3
    """
    from music_classifier.models.report import build_report
    from music_classifier.output_paths import check_output_dir

    check_output_dir(out)
    st = state(ctx)
    with st.engine.connect() as conn:
        path = build_report(conn, model, out_dir=out, settings=st.settings, seed=seed)
    console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(plot_app, name="plot")
    app.command("report")(report)
