"""Plots and the HTML report: PNGs decode, figures come from the stored run, everything is escaped."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import insert, select
from typer.testing import CliRunner

from music_classifier.db.feature_columns import GTZAN_V1
from music_classifier.db.tables import extractions, models, track_genres, tracks, wide_values
from music_classifier.db.values import replace_values
from music_classifier.errors import InputError
from music_classifier.ingest.genres import resolve_genres
from music_classifier.models import plots
from music_classifier.models.datasets import DatasetDefinition, create_dataset, drop_dataset, member_snapshot
from music_classifier.models.metrics import classification_metrics
from music_classifier.models.report import build_report, misclassified

GENRES = ["Rock", "Drum & Bass", "Hip-Hop", "Jazz"]
SCRIPT_TITLE = "<script>alert(1)</script>"
SECTIONS = ["composition", "metrics", "per-genre-section", "confusion", "tsne", "importances", "misclassified", "audit",
             "students",
            "versions"]


def _assert_png(path: Path) -> tuple[int, int]:
    assert path.is_file(), path
    with Image.open(path) as im:
        im.verify()  # raises on a truncated or corrupt file
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def separable_matrix(n_per_genre: int = 15, n_features: int = 12, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(6.0 * i, 1.0, (n_per_genre, n_features)) for i in range(len(GENRES))])
    return X, [g for g in GENRES for _ in range(n_per_genre)]


def seed_model(conn, *, per_genre: int = 8, dataset: str = "mix", with_importances: bool = True) -> int:
    """A gtzan_csv dataset of generated, genre-separable features and a registry row trained on it.

    The row is written directly, as train would: metrics from the project's one metrics function on
    chosen predictions (one confident mistake is the track titled <script>…), so the test knows every
    figure the report must show.
    """
    ids = resolve_genres(conn, GENRES).ids
    rng = np.random.default_rng(1)
    track_rows = []
    for gi, genre in enumerate(GENRES):
        for k in range(per_genre):
            title = SCRIPT_TITLE if (gi, k) == (0, 0) else f"{genre} song {k}"
            artist = "Tom & Jerry <b>" if (gi, k) == (0, 0) else f"Artist {gi}-{k}"
            track_id = conn.execute(insert(tracks).values(
                source="csv", track_key=f"gen{gi}_{k}", artist=artist, title=title, song=f"{artist} - {title}",
            ).returning(tracks.c.id)).scalar_one()
            conn.execute(insert(track_genres).values(track_id=track_id, rank=0, genre_id=ids[genre]))
            ext_id = conn.execute(insert(extractions).values(
                track_id=track_id, extractor="gtzan_csv", version="1", params_hash="test", status="done",
            ).returning(extractions.c.id)).scalar_one()
            values = rng.normal(5.0 * gi, 1.0, len(GTZAN_V1))
            replace_values(conn, "gtzan_csv", ext_id, dict(zip(GTZAN_V1, values.tolist(), strict=True)), None)
            track_rows.append((track_id, artist, title, genre))
    summary = create_dataset(conn, dataset, DatasetDefinition(features="gtzan_csv", top=4, min_per_genre=3))

    # "Test set": every second track. The <script> track is predicted as Hip-Hop with confidence 0.93.
    test = track_rows[::2]
    preds = []
    for track_id, artist, title, genre in test:
        wrong = title == SCRIPT_TITLE
        preds.append({"track_id": track_id, "artist": artist, "title": title, "true": genre,
                      "pred": "Hip-Hop" if wrong else genre, "confidence": 0.93 if wrong else 0.8})
    # A second, less confident mistake, so the ordering is tested.
    preds[-1] = {**preds[-1], "pred": "Rock", "confidence": 0.41}
    tm = classification_metrics(y_true=[p["true"] for p in preds], y_pred=[p["pred"] for p in preds],
                                labels=list(summary.genre_counts))
    tm["predictions"] = preds
    model_id = conn.execute(insert(models).values(
        dataset_id=summary.id, dataset_name=dataset,
        dataset_snapshot={"definition": summary.definition, "members": member_snapshot(conn, summary.id)},
        kind="rf", params={"cv": 5, "test_size": 0.5, "seed": 0, "grid": "default"},
        best_params={"clf__n_estimators": 300, "clf__max_depth": None}, cv_score=0.8771,
        test_metrics=tm, feature_names=list(GTZAN_V1),
        feature_importances={"method": "impurity", "names": list(GTZAN_V1),
                             "values": list(rng.random(len(GTZAN_V1)))} if with_importances else None,
        versions={"sklearn": "9.9.9-test", "numpy": "1.0"},
    ).returning(models.c.id)).scalar_one()
    return int(model_id)


class _Collector(HTMLParser):
    """Elements by id and class, the text of each, every img src, every external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.genre_rows: list[list[str]] = []
        self.img_srcs: list[str] = []
        self.external: list[str] = []
        self.text_by_id: dict[str, str] = {}
        self._row: list[str] | None = None
        self._cell = False
        self._capture: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
            if a["id"].startswith("metric-"):
                self._capture = a["id"]
                self.text_by_id[a["id"]] = ""
        if tag == "tr" and "genre-row" in (a.get("class") or "").split():
            self._row = []
        if tag == "td" and self._row is not None:
            self._row.append("")
            self._cell = True
        if tag == "img":
            self.img_srcs.append(a.get("src") or "")
        for key in ("src", "href"):
            val = a.get(key) or ""
            if val and not val.startswith(("data:", "#")):
                self.external.append(val)
        if tag == "link":
            self.external.append(str(a))

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.genre_rows.append(self._row)
            self._row = None
        if tag == "td":
            self._cell = False
        if tag == "div":
            self._capture = None

    def handle_data(self, data):
        if self._cell and self._row is not None:
            self._row[-1] += data
        if self._capture:
            self.text_by_id[self._capture] += data.strip()


# --- plots ------------------------------------------------------------------------------------------

def test_tsne_perplexity_rule():
    assert plots.tsne_perplexity(10) == 3.0
    assert plots.tsne_perplexity(91) == 30.0
    assert plots.tsne_perplexity(1000) == 30.0


def test_tsne_embedding_keeps_separable_genres_apart_and_is_reproducible():
    X, y = separable_matrix()
    emb = plots.tsne_embedding(X, seed=3)
    assert emb.shape == (len(y), 2)
    # 1-nearest-neighbour in the 2-D map recovers the genre of (nearly) every point.
    d = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    labels = np.asarray(y)
    assert (labels[d.argmin(axis=1)] == labels).mean() >= 0.95
    np.testing.assert_allclose(plots.tsne_embedding(X, seed=3), emb)


def test_plots_write_decodable_pngs_and_close_their_figures(tmp_path):
    import matplotlib.pyplot as plt

    X, y = separable_matrix()
    before = len(plt.get_fignums())
    outs = [
        plots.plot_tsne(X, y, out=tmp_path / "a" / "tsne.png", seed=0),
        plots.plot_confusion([[5, 1, 0, 0], [0, 4, 2, 0], [0, 0, 6, 0], [1, 0, 0, 5]], GENRES,
                             out=tmp_path / "confusion.png"),
        plots.plot_importances([f"f{i}" for i in range(40)], np.linspace(0, 1, 40), out=tmp_path / "imp.png",
                               top=10),
        plots.plot_genre_counts({"Rock": 20, "Drum & Bass": 7}, out=tmp_path / "counts.png"),
    ]
    for out in outs:
        w, h = _assert_png(out)
        assert w > 300 and h > 200
    assert len(plt.get_fignums()) == before  # every figure closed


@pytest.mark.parametrize("call", [
    lambda out: plots.plot_confusion([[1, 2], [3, 4]], ["a", "b", "c"], out=out),
    lambda out: plots.plot_importances(["a", "b"], [0.1], out=out),
    lambda out: plots.plot_tsne(np.ones((3, 2)), ["a", "b", "c"], out=out),
    lambda out: plots.plot_tsne(np.array([[0.0, 1], [np.nan, 2], [3, 4], [5, 6], [7, 8]]), list("aabbb"), out=out),
])
def test_bad_plot_input_is_an_input_error_and_writes_nothing(tmp_path, call):
    out = tmp_path / "x.png"
    with pytest.raises(InputError):
        call(out)
    assert not out.exists()


def test_misclassified_keeps_only_mistakes_most_confident_first():
    preds = [{"track_id": 1, "true": "a", "pred": "a", "confidence": 0.99},
             {"track_id": 2, "true": "a", "pred": "b", "confidence": 0.5},
             {"track_id": 3, "true": "b", "pred": "a", "confidence": 0.9}]
    assert [p["track_id"] for p in misclassified(preds)] == [3, 2]


# --- report -----------------------------------------------------------------------------------------

def test_report_shows_every_section_from_the_stored_run_escaped(engine, tmp_path):
    with engine.begin() as conn:
        model_id = seed_model(conn)
    with engine.connect() as conn:
        row = conn.execute(select(models).where(models.c.id == model_id)).mappings().one()
        index = build_report(conn, model_id, out_dir=tmp_path / "report", settings=None)
    html = index.read_text(encoding="utf-8")
    doc = _Collector()
    doc.feed(html)

    assert index == tmp_path / "report" / "index.html"
    assert set(SECTIONS) <= doc.ids
    assert {"genre-counts", "per-genre", "misclassified-tracks", "library-versions", "best-params"} <= doc.ids

    # Self-contained: three embedded PNGs that decode, the map's scripts inline, nothing fetched from elsewhere.
    assert doc.external == []
    assert len(doc.img_srcs) == 3
    for src in doc.img_srcs:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            im.verify()
    for name in ("genre_counts.png", "confusion.png", "importances.png"):
        _assert_png(tmp_path / "report" / name)
    assert 'id="track-map"' in html  # the interactive map (plotly.js inline: no <script src>)

    # Escaped as text, never markup (inside the map's data too: JSON-escaped).
    assert SCRIPT_TITLE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Tom &amp; Jerry &lt;b&gt;" in html
    assert "Drum & Bass" not in html and "Drum &amp; Bass" in html

    # Figures are the stored ones.
    tm = row["test_metrics"]
    assert doc.text_by_id["metric-accuracy"] == f"{tm['accuracy']:.3f}"
    assert doc.text_by_id["metric-balanced-accuracy"] == f"{tm['balanced_accuracy']:.3f}"
    assert doc.text_by_id["metric-macro-f1"] == f"{tm['macro_f1']:.3f}"
    assert doc.text_by_id["metric-cv-score"] == "0.877"
    assert "clf__n_estimators" in html and "300" in html and "9.9.9-test" in html

    # One per-genre row per genre, with the stored precision/recall/F1/support.
    assert len(doc.genre_rows) == len(GENRES)
    by_genre = {r[0]: r[1:] for r in doc.genre_rows}
    assert set(by_genre) == set(GENRES)
    for genre, cells in by_genre.items():
        g = tm["per_genre"][genre]
        assert cells == [f"{g['precision']:.3f}", f"{g['recall']:.3f}", f"{g['f1']:.3f}", str(g["support"])]

    # The most confident mistake is listed first.
    mistakes = html.split('id="misclassified-tracks"', 1)[1]
    assert mistakes.index("&lt;script&gt;") < mistakes.index("0.41")
    assert re.search(r"8 tracks in 4 genres|32 tracks in 4 genres", html)


def test_report_of_a_model_whose_dataset_was_dropped_still_builds(sqlite_engine, tmp_path):
    with sqlite_engine.begin() as conn:
        model_id = seed_model(conn, with_importances=False)
        drop_dataset(conn, "mix")
    with sqlite_engine.connect() as conn:
        index = build_report(conn, model_id, out_dir=tmp_path / "r", settings=None)
    html = index.read_text(encoding="utf-8")
    assert "no longer stored" in html and "model stores no feature importances" in html
    assert html.count('class="genre-row"') == len(GENRES)  # from the snapshot, not the dropped rows
    assert "32 tracks in 4 genres" in html
    assert html.count("data:image/png;base64,") == 2  # genre counts + confusion


def test_report_of_an_unknown_model_is_an_input_error(sqlite_engine, tmp_path):
    with sqlite_engine.connect() as conn, pytest.raises(InputError, match="model 99 not found"):
        build_report(conn, 99, out_dir=tmp_path / "r", settings=None)
    assert not (tmp_path / "r" / "index.html").exists()


# --- CLI --------------------------------------------------------------------------------------------

def test_plot_and_report_commands(sqlite_engine, tmp_path):
    from music_classifier.cli import app

    with sqlite_engine.begin() as conn:
        model_id = seed_model(conn)
    db = ["--db", str(sqlite_engine.url)]
    runner = CliRunner()
    for args, out in [
        (["plot", "tsne", "mix", "--out", str(tmp_path / "t.png")], tmp_path / "t.png"),
        (["plot", "confusion", str(model_id), "--out", str(tmp_path / "c.png")], tmp_path / "c.png"),
        (["plot", "importances", str(model_id), "--out", str(tmp_path / "i.png"), "--top", "5"], tmp_path / "i.png"),
        (["report", str(model_id), "--out", str(tmp_path / "rep")], tmp_path / "rep" / "index.html"),
    ]:
        result = runner.invoke(app, [*db, *args])
        assert result.exit_code == 0, result.output
        assert out.is_file()
        if out.suffix == ".png":
            _assert_png(out)


@pytest.mark.parametrize("args, message", [
    (["plot", "confusion", "99", "--out", "x.png"], "model 99 not found"),
    (["report", "99", "--out", "rep"], "model 99 not found"),
    (["plot", "tsne", "nosuch", "--out", "x.png"], "dataset 'nosuch' not found"),
    (["plot", "confusion", "1", "--out", "x.jpg"], "must end in .png"),
])
def test_plot_commands_fail_with_one_line(sqlite_engine, tmp_path, monkeypatch, args, message):
    from music_classifier.cli import app

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(app, ["--db", str(sqlite_engine.url), *args])
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert list(work.iterdir()) == []  # nothing written


def test_report_of_a_really_trained_model(sqlite_engine, tmp_path):
    """Through the training code's own registry row (not a hand-written one)."""
    import json

    from music_classifier.models.train import TrainOptions, train_model

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"n_estimators": [20], "max_depth": [None, 3]}))
    with sqlite_engine.begin() as conn:
        seed_model(conn)  # the dataset "mix" (the hand-written row is model 1)
        result = train_model(conn, "mix", TrainOptions(kind="rf", grid=str(grid), cv=2, test_size=0.5, seed=0),
                             models_path=tmp_path / "models")
    with sqlite_engine.connect() as conn:
        index = build_report(conn, result.model_id, out_dir=tmp_path / "r", settings=None)
    html = index.read_text(encoding="utf-8")
    doc = _Collector()
    doc.feed(html)
    assert doc.text_by_id["metric-accuracy"] == f"{result.test_metrics['accuracy']:.3f}"
    # the headline is the (repeated) CV estimate; the single held-out split follows, with its n
    est = result.extra["estimate"]
    assert doc.text_by_id["metric-estimate"] == f"{est.mean:.3f} ± {est.sd:.3f}"
    assert doc.text_by_id["metric-interval"] == f"{est.low:.3f}–{est.high:.3f}"
    assert html.index('id="metric-estimate"') < html.index('id="metric-accuracy"')
    assert f"single held-out split, n={result.test_metrics['n']}" in html
    assert len(doc.genre_rows) == len(GENRES)
    assert html.count('class="candidate-row"') == 2  # both grid candidates, with their CV means
    assert len(doc.img_srcs) == 3 and doc.external == []
    assert "test_track_ids</th><td>16 values" in html  # long lists summarised, not dumped
    assert 'id="track-map"' in html and 'id="label-issues"' in html


def test_importances_of_reads_the_training_dict_and_a_bare_list():
    from music_classifier.models.report import importances_of

    row = {"feature_names": ["a", "b"], "feature_importances": {"method": "permutation", "names": ["b", "a"],
                                                                 "values": [0.2, 0.1]}}
    assert importances_of(row) == (["b", "a"], [0.2, 0.1], "permutation")
    assert importances_of({"feature_names": ["a", "b"], "feature_importances": [0.3, 0.4]}) == (["a", "b"],
                                                                                              [0.3, 0.4], "")
    assert importances_of({"feature_names": ["a"], "feature_importances": None}) is None


def test_plot_importances_of_a_model_without_them_fails_with_one_line(sqlite_engine, tmp_path):
    from music_classifier.cli import app

    with sqlite_engine.begin() as conn:
        model_id = seed_model(conn, with_importances=False)
    out = tmp_path / "i.png"
    result = CliRunner().invoke(app, ["--db", str(sqlite_engine.url), "plot", "importances", str(model_id),
                                      "--out", str(out)])
    assert result.exit_code == 1
    assert f"model {model_id} (rf) stores no feature importances" in result.output
    assert not out.exists()


def test_report_without_feature_rows_still_builds_with_a_note(sqlite_engine, tmp_path):
    from sqlalchemy import delete

    with sqlite_engine.begin() as conn:
        model_id = seed_model(conn)
        conn.execute(delete(wide_values["gtzan_csv"][0]))  # the view now has no rows; the stored run is untouched
    with sqlite_engine.connect() as conn:
        html = build_report(conn, model_id, out_dir=tmp_path / "r", settings=None).read_text(encoding="utf-8")
    assert "No map: dataset &#39;mix&#39; has no rows with features" in html
    assert "No label audit" in html and 'id="track-map"' not in html
    assert html.count('class="genre-row"') == len(GENRES)
