"""Evaluation on the real tables in ../shared/data, through the CLI path a user takes; writes EVALUATION.md.

For each table (the GTZAN 30 s feature table, the TidyTuesday Spotify songs table):

1. a fresh SQLite database; ``db upgrade``; the table imported with the project's own command
   (``features import-csv --layout gtzan`` / ``spotify import-csv``: first row per track id);
2. ``dataset create`` (all genres), then ``compare --models rf --grid <one fixed RF>``: our Pipeline
   (imputer, scaler, RandomForest) on 5 StratifiedKFold(shuffle=True, random_state=0) folds;
3. the same RandomForest in plain scikit-learn on the same table read with pandas (the 57 GTZAN
   columns / the 12 Spotify audio-feature columns, first row per track id) and the same folds. The
   folds are checked to be the same tracks (by Spotify id / GTZAN filename), not assumed;
4. ``compare`` of every model kind (nested CV, default grids) — on Spotify also grouped by artist and
   by playlist — and ``train`` with a track split and with a playlist split (the seed's cross-dataset
   question asked offline: train on some playlists, test on others). Figures are read from the
   compare ``--json`` files and from the registry rows, never retyped.

And on the 70 GTZAN excerpts: whole clips vs 3 s segments (one 5-fold CV per seed and compare's repeated CV);
the label audit (``--audit-only`` runs that section alone); repeated CV of every model and how far one held-out
split swings (``--small-data-only``); librosa vs musicnn vs both, whole clips and segments, repeated CV, and
final models on GTZAN clips outside the 70 (:mod:`evaluate_musicnn`; ``--only-musicnn``); where the audit ranks
three excerpts filed under a wrong genre (:mod:`evaluate_audit`; ``--audit``).

Run:  python benchmarks/evaluate.py --cache $WORK/cache --processes 2
                                  (every section, the whole file; full tables; all-model comparison on a
                                   --compare-sample of the Spotify table; with --cache, a section whose
                                   figures are cached is only written again)
      python benchmarks/evaluate.py --sample 5000       (a stratified sample of the Spotify table)
      python benchmarks/evaluate.py --small-data-only   (one section of the excerpts, rewritten in place)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# One thread per process: the machine's 2 cores are shared, and oversubscribed OpenMP (HistGradientBoosting)
# slows everything down. Set before scikit-learn is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "benchmarks") not in sys.path:  # imported by path from the tests: its sibling modules too
    sys.path.insert(0, str(ROOT / "benchmarks"))
import evaluate_audit  # noqa: E402
from evaluate_musicnn import HEADING, run_musicnn, section_lines  # noqa: E402

TABLES = ROOT.parent / "shared" / "data" / "tables"
GTZAN_CSV = TABLES / "gtzan_features_30_sec.csv"
SPOTIFY_CSV = TABLES / "spotify_songs.csv"
CLIPS = ROOT.parent / "shared" / "data" / "audio" / "gtzan_subset_zenny126"
CLIP_SEEDS = (0, 1, 2, 3, 4)
RF_FIXED = {"n_estimators": 100}  # everything else: scikit-learn defaults, random_state=0
SEED = 0
N_FOLDS = 5
ALL_MODELS = "rf,logreg,svm,hgb,knn"
# Grids for the all-model comparison: a two-candidate search per model (the machine is 2 shared cores;
# the default grids of `music-classifier compare` are larger). Written into EVALUATION.md verbatim.
COMPARE_GRIDS = {
    "rf": {"n_estimators": [100], "min_samples_leaf": [1, 3]},
    "logreg": {"C": [0.1, 1.0]},
    "svm": {"estimator__C": [1.0, 10.0]},
    "hgb": {"learning_rate": [0.1], "max_iter": [50, 100]},
    "knn": {"n_neighbors": [5, 15], "weights": ["distance"]},
}


@dataclass
class CliPath:
    """Runs ``music-classifier`` commands in-process (Typer's CliRunner) against one database."""

    db_url: str
    models_dir: Path
    commands: list[str] = field(default_factory=list)
    echo: bool = True
    library: Path | None = None

    def run(self, *args: str) -> str:
        from typer.testing import CliRunner

        from music_classifier.cli import app

        lib = ["--library", str(self.library)] if self.library else []
        self.commands.append("music-classifier --db $DB " + " ".join(shlex.quote(str(a)) for a in [*lib, *args]))
        started = time.perf_counter()
        result = CliRunner().invoke(app, ["--db", self.db_url, *lib, *map(str, args)],
                                    env={"MUSIC_CLASSIFIER_MODELS_DIR": str(self.models_dir)})
        if self.echo:
            print(f"$ {self.commands[-1]}   [{time.perf_counter() - started:.1f} s]", flush=True)
        if result.exit_code not in (0, 3):  # 3 = some rows skipped (reported), the rest imported
            raise RuntimeError(f"{self.commands[-1]} failed ({result.exit_code}): {result.output}")
        return result.output

    def engine(self):  # noqa: ANN201
        from music_classifier.db.engine import make_engine

        return make_engine(self.db_url)


def new_cli(workdir: Path, name: str, echo: bool = True) -> CliPath:
    db = workdir / f"{name}.db"
    db.unlink(missing_ok=True)
    cli = CliPath(f"sqlite:///{db}", workdir / f"models_{name}", echo=echo)
    cli.run("db", "upgrade")
    return cli


def spotify_first_rows(csv: Path) -> pd.DataFrame:
    """The Spotify songs table as the protocol reads it: the first row per track id, file order."""
    return pd.read_csv(csv).drop_duplicates("track_id", keep="first")


def stratified_sample(csv: Path, n: int, out: Path, seed: int = SEED) -> Path:
    """``n`` tracks of the Spotify table (first row per id), stratified by genre, in file order."""
    from sklearn.model_selection import train_test_split

    df = spotify_first_rows(csv)
    if n < len(df):
        df, _ = train_test_split(df, train_size=n, stratify=df["playlist_genre"], random_state=seed)
        df = df.sort_index()
    df.to_csv(out, index=False)
    return out


def plain_rf_cv(X: np.ndarray, y: np.ndarray, keys: np.ndarray) -> dict[str, Any]:
    """A plain scikit-learn RandomForest on 5 StratifiedKFold(shuffle=True, random_state=0) folds."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold

    scores, folds = [], []
    for train, test in StratifiedKFold(N_FOLDS, shuffle=True, random_state=SEED).split(X, y):
        rf = RandomForestClassifier(**RF_FIXED, random_state=SEED).fit(X[train], y[train])
        scores.append(float(np.mean(rf.predict(X[test]) == y[test])))
        folds.append(set(keys[test].tolist()))
    return {"fold_accuracy": scores, "mean": float(np.mean(scores)), "sd": float(np.std(scores, ddof=1)),
            "fold_keys": folds}


def plain_gtzan(csv: Path) -> dict[str, Any]:
    from music_classifier.db.feature_columns import GTZAN_V1

    df = pd.read_csv(csv)
    return plain_rf_cv(df[GTZAN_V1].to_numpy(float), df["label"].to_numpy(), ("gtzan:" + df["filename"]).to_numpy())


def plain_spotify(csv: Path) -> dict[str, Any]:
    from music_classifier.db.feature_columns import SPOTIFY_V1

    df = spotify_first_rows(csv)
    return plain_rf_cv(df[SPOTIFY_V1].to_numpy(float), df["playlist_genre"].to_numpy(), df["track_id"].to_numpy())


def fold_keys(cli: CliPath, fold_track_ids: list[list[int]]) -> list[set[str]]:
    from sqlalchemy import select

    from music_classifier.db.tables import tracks

    engine = cli.engine()
    with engine.connect() as conn:
        key_of = dict(conn.execute(select(tracks.c.id, tracks.c.track_key)).all())
    engine.dispose()
    return [{key_of[t] for t in fold} for fold in fold_track_ids]


def compare_all(cli: CliPath, workdir: Path, dataset: str, *args: str) -> dict[str, Any]:
    grids = workdir / "compare_grids.json"
    grids.write_text(json.dumps(COMPARE_GRIDS))
    return compare_json(cli, workdir, dataset, "--models", ALL_MODELS, "--grid", str(grids), *args)


def compare_json(cli: CliPath, workdir: Path, dataset: str, *args: str) -> dict[str, Any]:
    out = workdir / f"compare_{dataset}_{len(cli.commands)}.json"
    cli.run("compare", dataset, *args, "--seed", str(SEED), "--json", str(out))
    return json.loads(out.read_text())


def rf_check(cli: CliPath, workdir: Path, dataset: str, plain: dict[str, Any]) -> dict[str, Any]:
    grid = workdir / "rf_fixed.json"
    grid.write_text(json.dumps({"rf": {k: [v] for k, v in RF_FIXED.items()}}))
    ours = compare_json(cli, workdir, dataset, "--models", "rf", "--grid", str(grid), "--cv", str(N_FOLDS))
    rf = ours["scores"][0]
    same_folds = fold_keys(cli, ours["fold_test_track_ids"]) == plain["fold_keys"]
    return {"ours_mean": rf["mean"], "ours_sd": rf["sd"], "ours_folds": rf["fold_accuracy"],
            "plain_mean": plain["mean"], "plain_sd": plain["sd"], "plain_folds": plain["fold_accuracy"],
            "difference": rf["mean"] - plain["mean"], "same_folds": same_folds, "n_tracks": ours["n_tracks"],
            "splitter": ours["splitter"]}


def registry_row(cli: CliPath, model_id: int) -> dict[str, Any]:
    from music_classifier.models.registry import get_model_row

    engine = cli.engine()
    with engine.connect() as conn:
        row = get_model_row(conn, model_id)
    engine.dispose()
    return row


def train_and_read(cli: CliPath, dataset: str, *args: str) -> dict[str, Any]:
    import re

    out = cli.run("train", dataset, *args, "--seed", str(SEED))
    model_id = int(re.search(r"model (\d+) \(", out).group(1))
    row = registry_row(cli, model_id)
    tm = row["test_metrics"]
    return {"model_id": model_id, "cv_score": row["cv_score"], "accuracy": tm["accuracy"],
            "balanced_accuracy": tm["balanced_accuracy"], "macro_f1": tm["macro_f1"],
            "n_train": row["params"]["n_train_tracks"], "n_test": row["params"]["n_test_tracks"],
            "group_by": row["params"]["group_by"], "best_params": row["best_params"],
            "per_genre_f1": {g: m["f1"] for g, m in tm["per_genre"].items()}}


def run_gtzan(workdir: Path) -> dict[str, Any]:
    cli = new_cli(workdir, "gtzan")
    cli.run("features", "import-csv", GTZAN_CSV, "--layout", "gtzan")
    cli.run("dataset", "create", "gtzan", "--features", "gtzan_csv", "--top", "10", "--min-per-genre", "10")
    res: dict[str, Any] = {"rf_check": rf_check(cli, workdir, "gtzan", plain_gtzan(GTZAN_CSV))}
    res["compare"] = compare_all(cli, workdir, "gtzan")
    res["commands"] = cli.commands
    return res


def run_spotify(workdir: Path, sample: int | None, compare_sample: int) -> dict[str, Any]:
    csv = SPOTIFY_CSV if sample is None else stratified_sample(SPOTIFY_CSV, sample, workdir / "spotify_sample.csv")
    cli = new_cli(workdir, "spotify")
    cli.run("spotify", "import-csv", csv)
    cli.run("dataset", "create", "songs", "--features", "spotify", "--top", "6", "--min-per-genre", "10")
    res: dict[str, Any] = {"csv": str(csv), "rf_check": rf_check(cli, workdir, "songs", plain_spotify(csv))}
    grid = workdir / "rf_fixed.json"
    res["train_track"] = train_and_read(cli, "songs", "--grid", str(grid), "--cv", "3")
    res["train_playlist"] = train_and_read(cli, "songs", "--grid", str(grid), "--cv", "3", "--group-by", "playlist")
    res["commands"] = cli.commands
    # Every model, nested CV, on a stratified sample (SVM and nested grids on 28k tracks would take hours here).
    n = min(compare_sample, sample or compare_sample)
    small_csv = stratified_sample(SPOTIFY_CSV, n, workdir / "spotify_compare_sample.csv")
    cmp_cli = new_cli(workdir, "spotify_compare")
    cmp_cli.run("spotify", "import-csv", small_csv)
    cmp_cli.run("dataset", "create", "songs", "--features", "spotify", "--top", "6", "--min-per-genre", "10")
    res["compare_n"] = n
    res["compare"] = {g: compare_all(cmp_cli, workdir, "songs", "--group-by", g)
                      for g in ("track", "artist", "playlist")}
    res["compare_commands"] = cmp_cli.commands
    return res


# The two protocols of the whole-vs-segments section, per seed: one 5-fold CV (the protocol of this section's
# figures before `compare` defaulted to repeated CV on small data), and `compare`'s own default on a set this
# small (5 x 5-fold repeated CV, the repeats' shuffles drawn from --seed).
CLIP_PROTOCOLS = (("single", ("--repeats", "1")), ("repeated", ()))


def run_clips(workdir: Path, processes: int) -> dict[str, Any]:
    """The 70 GTZAN excerpts: whole-clip librosa features vs 3 s segments + soft voting, track-grouped CV,
    under each of :data:`CLIP_PROTOCOLS` for every seed of :data:`CLIP_SEEDS`."""
    cli = new_cli(workdir, "clips")
    cli.library = CLIPS
    for genre_dir in sorted(p for p in CLIPS.iterdir() if p.is_dir()):
        cli.run("audio", "scan", genre_dir, "--add-unmatched", "--genre", genre_dir.name)
    cli.run("features", "compute", "--extractor", "librosa", "--missing", "--processes", str(processes))
    cli.run("dataset", "create", "clips", "--features", "librosa", "--top", "10", "--min-per-genre", "5",
            "--source", "file")
    cli.run("dataset", "create", "clips_seg", "--features", "librosa", "--segments", "--top", "10",
            "--min-per-genre", "5", "--source", "file")
    grid = workdir / "rf_fixed.json"
    grid.write_text(json.dumps({"rf": {k: [v] for k, v in RF_FIXED.items()}}))
    res: dict[str, Any] = {protocol: {"whole": [], "segments": []} for protocol, _ in CLIP_PROTOCOLS}
    for protocol, extra in CLIP_PROTOCOLS:
        for seed in CLIP_SEEDS:
            for name, key in (("clips", "whole"), ("clips_seg", "segments")):
                out = workdir / f"clips_{name}_{protocol}_{seed}.json"
                cli.run("compare", name, "--models", "rf", "--grid", grid, "--cv", str(N_FOLDS), *extra,
                        "--seed", str(seed), "--json", out)
                res[protocol][key].append(json.loads(out.read_text()))
    res["commands"] = cli.commands
    return res


def _protocol_label(run: dict[str, Any]) -> str:
    """The outer CV as `compare` ran it: "StratifiedKFold(5)" or "5 x StratifiedGroupKFold(5), repeated"."""
    folds = len(run["scores"][0]["fold_accuracy"])
    repeats = int(run.get("n_repeats") or 1)
    kfold = f"{run['splitter']}({folds // repeats})"
    return kfold if repeats == 1 else f"{repeats} x {kfold}, repeated"


# This section's figures as first written (commit 900286a, 2026-11-24), when `compare --cv 5` ran one 5-fold CV
# per seed on any dataset: per seed 0-4, accuracy to 3 decimals.
FIRST_CLIP_FIGURES = {"commit": "900286a", "whole": (0.786, 0.757, 0.757, 0.771, 0.714),
                      "segments": (0.843, 0.804, 0.784, 0.829, 0.773)}


def _protocol_note(clips: dict[str, Any], means: dict[tuple[str, str], float]) -> list[str]:
    """Why the section shows two protocols, and how its one-5-fold figures compare with the first ones."""
    first = FIRST_CLIP_FIGURES

    def then_and_now(key: str) -> str:
        now = tuple(round(r["scores"][0]["mean"], 3) for r in clips["single"][key])
        then = f"{np.mean(first[key]):.3f} then"
        if now == first[key]:
            return f"{then}, the same per-seed figures to the last digit now"
        return f"{then} ({' '.join(f'{a:.3f}' for a in first[key])}), {means['single', key]:.3f} now"

    return [
        f"Why two protocols: this section first ran `compare --cv 5` (commit {first['commit']}) when that meant one "
        f"5-fold CV per seed: whole clips {then_and_now('whole')} with `--repeats 1`; segments "
        f"{then_and_now('segments')}. Since `compare` estimates by repeated CV when the smallest genre has "
        "fewer than 30 tracks, the same command averages 25 folds per seed, five 5-fold shuffles whose seeds are "
        f"drawn from `--seed`: whole clips {means['repeated', 'whole']:.3f}, segments "
        f"{means['repeated', 'segments']:.3f}. The whole-clip dataset did not change since that commit: its rows, "
        "their order, genres, split groups, column names and order and every value were read with the code of "
        f"commit {first['commit']} and with this code and compared, and are identical. The segment dataset, compared "
        "the same way, has the same rows, order, genres, groups and columns (so the same folds), but other values: "
        "librosa extractor v2 takes the segments from one analysis of the whole track (docs/features.md measures "
        "how far its values are from v1's); that alone moved the one-5-fold segment figure. "
        "So the whole-clip figure moved with the protocol, i.e. with "
        "which folds are averaged, not with the data: one 5-fold split of 70 clips (14 test clips a fold) moves "
        "the accuracy by several points from seed to seed, and the repeated CV's figure is the steadier one."]


def _clips_lines(clips: dict[str, Any]) -> list[str]:
    lines = ["| features | rows | protocol | outer CV per seed | accuracy per seed (mean of its folds) | "
             "mean over seeds | macro F1 mean |", "|---|---|---|---|---|---|---|"]
    means: dict[tuple[str, str], float] = {}
    for protocol, flag in (("single", "`--repeats 1`"), ("repeated", "`compare`'s default here")):
        for key, label in (("whole", "whole clip"), ("segments", "3 s segments, soft vote per clip")):
            runs = clips[protocol][key]
            accs = [r["scores"][0]["mean"] for r in runs]
            f1s = [r["scores"][0]["macro_f1_mean"] for r in runs]
            means[protocol, key] = float(np.mean(accs))
            lines.append(f"| {label} | {runs[0]['n_rows']} ({runs[0]['n_tracks']} clips) | {flag} | "
                         f"{_protocol_label(runs[0])} | " + " ".join(f"{a:.3f}" for a in accs)
                         + f" | {np.mean(accs):.3f} | {np.mean(f1s):.3f} |")
    seeds = ", ".join(map(str, CLIP_SEEDS))
    single, repeated = (means[p, "segments"] - means[p, "whole"] for p in ("single", "repeated"))
    lines += ["", f"Segments + soft voting minus whole clips (mean over seeds {seeds}): {single:+.3f} accuracy with "
              f"one 5-fold CV per seed, {repeated:+.3f} with the repeated CV. Test folds never hold a segment of a "
              "training clip (grouped by track); scores are per clip.", "", *_protocol_note(clips, means)]
    return lines


def _scores_table(cmp: dict[str, Any]) -> list[str]:
    lines = ["| model | accuracy mean ± SD | macro F1 mean | per fold |", "|---|---|---|---|"]
    for s in cmp["scores"]:
        lines.append(f"| {s['kind']} | {s['mean']:.3f} ± {s['sd']:.3f} | {s['macro_f1_mean']:.3f} | "
                     + " ".join(f"{a:.3f}" for a in s["fold_accuracy"]) + " |")
    lines.append("")
    lines.append(f"Winner: **{cmp['winner']}** ({cmp['reason']})." if cmp["winner"] else f"{cmp['reason']}.")
    return lines


def _rf_lines(name: str, chk: dict[str, Any]) -> list[str]:
    ok = abs(chk["difference"]) <= 0.02 and chk["same_folds"]
    return [
        f"| {name} | {chk['n_tracks']:,} | {chk['ours_mean']:.3f} ± {chk['ours_sd']:.3f} | "
        f"{chk['plain_mean']:.3f} ± {chk['plain_sd']:.3f} | {chk['difference']:+.4f} | "
        f"{'yes' if chk['same_folds'] else 'NO'} | {'yes' if ok else 'NO'} |"]


def write_markdown(path: Path, gtzan: dict[str, Any], spotify: dict[str, Any], clips: dict[str, Any] | None,
                   argv: list[str], seconds: float) -> None:
    import sklearn

    sp_label = "Spotify songs" + (f" (stratified sample, {spotify['rf_check']['n_tracks']:,} tracks)"
                                  if "sample" in spotify["csv"] else "")
    lines = [
        "# EVALUATION",
        "",
        "Produced by `benchmarks/evaluate.py` (do not edit by hand). Command:",
        "",
        f"    python benchmarks/evaluate.py {' '.join(argv)}".rstrip(),
        "",
        f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, {os.cpu_count()} cores (shared); "
        f"sections took {seconds / 60:.1f} min in all. Data: `../shared/data/tables/` (see its SOURCES.md).",
        "",
        "Protocol, the same on both sides: 5 folds of `StratifiedKFold(n_splits=5, shuffle=True, random_state=0)` "
        "over the tracks in file order; the Spotify songs table reduced to its 12 audio-feature columns and the "
        "first row per track id (the import keeps exactly that row); the GTZAN table's 57 feature columns. "
        "Ours goes through the CLI (import, `dataset create`, `compare`) and the Pipeline (median imputer, "
        "StandardScaler, classifier); plain is `RandomForestClassifier(n_estimators=100, random_state=0)` on the "
        "CSV read with pandas. \"Same folds\" compares the test tracks of each fold by Spotify id / GTZAN filename.",
        "",
        "## Our RandomForest vs plain scikit-learn (accuracy, 5 folds)",
        "",
        "| table | tracks | ours mean ± SD | plain mean ± SD | difference | same folds | within 0.02 |",
        "|---|---|---|---|---|---|---|",
        *_rf_lines("GTZAN 30 s features", gtzan["rf_check"]),
        *_rf_lines(sp_label, spotify["rf_check"]),
        "",
        "## Every model, nested cross-validation (outer 5 folds as above, inner 3-fold grid search)",
        "",
        f"Grids (`--grid` file): `{json.dumps(COMPARE_GRIDS)}`.",
        "",
        "A winner is named only where the best mean leads the runner-up by more than 2 SD (the larger of the two "
        "models' sample SDs over the outer folds).",
        "",
        f"### GTZAN 30 s features ({gtzan['compare']['n_tracks']:,} tracks, grouped by track)",
        "",
        *_scores_table(gtzan["compare"]),
        "",
        "The GTZAN table has no artist or playlist column, so no grouped figures.",
        "",
    ]
    for g, cmp in spotify["compare"].items():
        lines += [f"### Spotify songs, stratified sample of {spotify['compare_n']:,} tracks, grouped by {g} "
                  f"({cmp['splitter']})", "", *_scores_table(cmp), ""]
    tt, tp = spotify["train_track"], spotify["train_playlist"]
    lines += [
        "## Train on some playlists, test on others (the seed's cross-dataset question, offline)",
        "",
        f"`train` on {sp_label} with the fixed RandomForest, 25 % held out. Figures from the registry rows.",
        "",
        "| split | train tracks | held-out tracks | CV accuracy | held-out accuracy | balanced accuracy | macro F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, t in (("by track (random tracks)", tt), ("by playlist (unseen playlists)", tp)):
        lines.append(f"| {label} | {t['n_train']:,} | {t['n_test']:,} | {t['cv_score']:.3f} | {t['accuracy']:.3f} | "
                     f"{t['balanced_accuracy']:.3f} | {t['macro_f1']:.3f} |")
    lines += ["", "Per-genre F1 on unseen playlists: "
              + ", ".join(f"{g} {f:.2f}" for g, f in sorted(tp["per_genre_f1"].items(), key=lambda p: -p[1])) + ".",
              "",
              "One held-out split is one draw of playlists (some playlists are much easier than others), so "
              "its accuracy moves by a few points from seed to seed; the CV accuracy on the training part (grouped "
              "the same way) and the playlist-grouped comparison above are the steadier figures.",
              "",
              "For reference, the seed's published figures: Spotify features, playlist tracks split 80/20: accuracy "
              "0.66, macro F1 0.66 (6 genres); trained on playlist tracks and tested on the class's own 200 tracks: "
              "accuracy 0.48, macro F1 0.43. (Different data: the class's tracks are not in ../shared/data.)",
              "",
              ]
    if clips:
        lines += ["## GTZAN excerpts: whole clips vs 3 s segments + soft voting", "",
                  f"The {clips['single']['whole'][0]['n_tracks']} GTZAN excerpts in "
                  "`../shared/data/audio/gtzan_subset_zenny126` (15-20 s each), scanned and extracted through the "
                  "CLI (librosa features, whole clip and 3 s segments), the fixed RandomForest, track-grouped CV "
                  "for several seeds under two protocols (70 clips: one seed's folds are noisy).", "",
                  *_clips_lines(clips), ""]
    lines += ["## Exact commands", "",
              "`$WORK/rf_fixed.json` is `" + json.dumps({"rf": {k: [v] for k, v in RF_FIXED.items()}})
              + "`; `$WORK/compare_grids.json` holds the grids quoted above.", "",
              "GTZAN (`$DB` = a fresh SQLite file):", "", "```", *gtzan["commands"], "```", "",
              "Spotify songs:", "", "```", *spotify["commands"], "```", "",
              f"Spotify songs, model comparison on the {spotify['compare_n']:,}-track sample "
              "(written by the script: first row per id, `train_test_split(stratify=playlist_genre, random_state=0)`, "
              "file order kept):", "", "```", *spotify["compare_commands"], "```", ""]
    if clips:
        lines += ["GTZAN excerpts:", "", "```", *clips["commands"], "```", ""]
    path.write_text("\n".join(lines))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, set):
        return sorted(obj)
    raise TypeError(type(obj))


AUDIT_HEADING = "## Label audit of the 70 GTZAN excerpts"
AUDIT_TOP = 10
NONE_FLAGGED = ("None flagged: no clip's probability of another genre reaches that genre's own threshold (the mean "
                "confidence of the model on the clips labelled with it, high when the features separate the genres "
                "well). The ranking by score still orders the clips to listen to first.")


def run_audit_clips(workdir: Path, processes: int) -> dict[str, Any]:
    """`music-classifier audit` on the 70 excerpts (labels = folder names), with librosa features and with
    librosa + musicnn, 5 x 5-fold RandomForest out-of-fold probabilities; the ranked lists read from --csv."""
    import csv
    import io

    cli = new_cli(workdir, "audit")
    cli.library = CLIPS
    for genre_dir in sorted(p for p in CLIPS.iterdir() if p.is_dir()):
        cli.run("audio", "scan", genre_dir, "--add-unmatched", "--genre", genre_dir.name)
    res: dict[str, Any] = {"runs": {}}
    for extractor in ("librosa", "musicnn"):
        cli.run("features", "compute", "--extractor", extractor, "--missing", "--no-segments",
                "--processes", str(processes))
    for name, features in (("clips_librosa", "librosa"), ("clips_both", "librosa,musicnn")):
        cli.run("dataset", "create", name, "--features", features, "--top", "10", "--min-per-genre", "5",
                "--source", "file")
        cli.run("audit", name, "--model", "rf", "--repeats", "5", "--seed", str(SEED))  # the table a user reads
        out = cli.run("audit", name, "--model", "rf", "--repeats", "5", "--seed", str(SEED), "--csv")
        # The runner's output also holds the one stderr summary line: keep the CSV's data rows only.
        rows = [r for r in csv.DictReader(io.StringIO(out[out.index("rank,"):])) if r["rank"].isdigit()]
        res["runs"][name] = {"features": features, "rows": rows}
    res["commands"] = cli.commands
    return res


def run_audit_order(workdir: Path, processes: int) -> dict[str, Any]:
    """The excerpts with three clips misfiled (:mod:`evaluate_audit`): where `audit --csv` ranks them."""
    tree = workdir / "misfiled"
    copy_commands = evaluate_audit.misfile_tree(CLIPS, tree)
    res = evaluate_audit.run_audit_order(new_cli(workdir, "misfiled"), tree,
                                         lambda cli: evaluate_audit.compute_features(cli, processes))
    res["commands"] = [*copy_commands, *res["commands"]]
    return res


def audit_markdown(audit: dict[str, Any]) -> str:
    runs = audit["runs"]
    lines = [AUDIT_HEADING, "",
             "Which folder labels does the audio dispute? `music-classifier audit` (issue 12) on the 70 excerpts of "
             "`../shared/data/audio/gtzan_subset_zenny126` (7 per genre, label = folder): RandomForest out-of-fold "
             "probabilities from 5 x 5-fold repeated stratified CV, confident learning flags a clip that is "
             "confidently another genre (heard: the out-of-fold prediction, for a flagged clip the genre it is "
             "confidently); ranked by one score, (1 - P(folder genre) + P(strongest other genre)) / 2 (1 - the "
             "normalized margin), highest first; the flag is a column, not the "
             "sort key. Produced by `python benchmarks/evaluate.py` (this section alone: `--audit-only`; the "
             "commands are below).", ""]
    flagged_sets = {}
    for name, run in runs.items():
        rows = run["rows"]
        flagged = [r for r in rows if r["flagged"] == "1"]
        flagged_sets[name] = {r["title"] for r in flagged}
        agree = sum(r["sheet_genre"] == r["heard_genre"] for r in rows)
        lines += [f"### Features: {run['features']} ({len(flagged)} of {len(rows)} clips flagged; the audio agrees "
                  f"with the folder for {agree} of {len(rows)})", "",
                  "| rank | clip | folder genre | heard | score | flagged |", "|---:|---|---|---|---:|---|"]
        for r in rows[:AUDIT_TOP]:
            lines.append(f"| {r['rank']} | {r['title']} | {r['sheet_genre']} | {r['heard_genre']} | {r['score']} | "
                         f"{'yes' if r['flagged'] == '1' else ''} |")
        lines.append("")
        if not flagged:
            lines += [NONE_FLAGGED, ""]
    if len(flagged_sets) == 2:
        a, b = flagged_sets.values()
        both = sorted(a & b)
        lines += [f"Flagged with both feature sets: {', '.join(both) if both else 'none'}. A flag asks a person to "
                  "listen again; on GTZAN several excerpts are known to be ambiguous or mislabelled (Sturm 2013), but "
                  "these 7-per-genre excerpts were not checked by ear here.", ""]
    lines += ["Commands (`$WORK` a scratch folder, `$DB` its SQLite database):", "", "```sh",
              *audit["commands"], "```"]
    return "\n".join(lines) + "\n"


SMALL_DATA_HEADING = "## Small data: repeated cross-validation on the 70 GTZAN excerpts"
SMALL_DATA_SEEDS = (0, 1, 2, 3, 4)


def run_small_data(workdir: Path, processes: int) -> dict[str, Any]:
    """A class-sized set (10 genres x 7 excerpts, librosa features on whole clips): every model by the
    repeated CV that `compare` uses on small data, and the single held-out split of `train` under five
    seeds, to show how far one split of a small set swings."""
    import re

    cli = new_cli(workdir, "small")
    cli.library = CLIPS
    cli.run("audio", "scan", CLIPS, "--genre-from-folder")
    cli.run("features", "compute", "--extractor", "librosa", "--missing", "--no-segments",
            "--processes", str(processes))
    cli.run("dataset", "create", "excerpts", "--features", "librosa", "--top", "10", "--min-per-genre", "5")
    res: dict[str, Any] = {"compare": compare_all(cli, workdir, "excerpts")}
    grid = workdir / "rf_fixed.json"
    grid.write_text(json.dumps({"rf": {k: [v] for k, v in RF_FIXED.items()}}))
    res["splits"] = []
    for seed in SMALL_DATA_SEEDS:
        out = cli.run("train", "excerpts", "--model", "rf", "--grid", grid, "--seed", str(seed))
        row = registry_row(cli, int(re.search(r"model (\d+) \(", out).group(1)))
        res["splits"].append({"seed": seed, "accuracy": row["test_metrics"]["accuracy"],
                              "n_test": row["params"]["n_test_tracks"], "estimate": row["params"]["estimate"]})
    res["commands"] = cli.commands
    return res


def _lower_bound(est: dict[str, Any]) -> str:
    """"0.612 (n=70, corrected t)": a score's or estimate's 95% lower bound (:class:`cv.CvSummary`); a
    dash for figures stored before the lower bound existed."""
    if est.get("lower_bound") is None:
        return "-"
    n = f"n={est['n']}, " if est.get("n") else ""
    return f"{est['lower_bound']:.3f} ({n}{est.get('lower_bound_method', 'corrected t')})"


def small_data_markdown(small: dict[str, Any]) -> str:
    cmp = small["compare"]
    first = next(s for s in cmp["scores"] if s.get("n_folds"))
    lines = [SMALL_DATA_HEADING, "",
             f"A class's shape: {cmp['n_tracks']} excerpts of `../shared/data/audio/gtzan_subset_zenny126`, 7 per "
             "genre, librosa features of whole clips. With fewer than 30 tracks in the smallest genre, `compare` "
             f"and `train` estimate accuracy by repeated stratified K-fold ({first['n_repeats']} x "
             f"{first['n_folds']}-fold here, folds sized to the smallest genre) and give mean ± SD over the folds "
             "and a 95% interval for the expected accuracy (corrected resampled t, Nadeau & Bengio 2003, since "
             "folds share training tracks). Grids as in the comparisons above (`COMPARE_GRIDS`). Chance: 0.100. "
             "Produced by `python benchmarks/evaluate.py` (this section alone: `--small-data-only`).", "",
             "The 95% lower bound is the figure to quote with n: the smaller of the interval's lower end and the "
             "Wilson lower bound of the pooled out-of-fold accuracy on the n tracks (which of the two is named).",
             "",
             "| model | accuracy mean ± SD | 95% interval | 95% lower bound (n) | macro F1 mean | folds |",
             "|---|---|---|---|---|---|"]
    for s in cmp["scores"]:
        if s.get("skipped"):
            lines.append(f"| {s['kind']} | skipped: {s['skipped']} | | | | |")
            continue
        lines.append(f"| {s['kind']} | {s['mean']:.3f} ± {s['sd']:.3f} | {s['low']:.3f}-{s['high']:.3f} | "
                     f"{_lower_bound(s)} | {s['macro_f1_mean']:.3f} | {len(s['fold_accuracy'])} |")
    lines += ["", f"{cmp['reason']}." if not cmp.get("winner") else f"Winner: **{cmp['winner']}** ({cmp['reason']}).",
              "", "One held-out split is noise on a set this small: `train --model rf` (RandomForest, "
              f"{json.dumps(RF_FIXED)}) under five seeds, each scored on its own held-out tracks:", "",
              "| seed | held-out tracks | held-out accuracy | repeated-CV estimate, training part (95% interval) | "
              "95% lower bound (n) |", "|---|---|---|---|---|"]
    for sp in small["splits"]:
        est = sp["estimate"]
        lines.append(f"| {sp['seed']} | {sp['n_test']} | {sp['accuracy']:.3f} | {est['mean']:.3f} ± {est['sd']:.3f} "
                     f"({est['low']:.3f}-{est['high']:.3f}) | {_lower_bound(est)} |")
    accs = [sp["accuracy"] for sp in small["splits"]]
    lines += ["", f"The held-out accuracy ranges {min(accs):.3f}-{max(accs):.3f} across seeds; the report's headline "
              "is therefore the repeated-CV estimate, with the held-out split shown as such beside its n.", "",
              "Commands (`$WORK` a scratch folder, `$DB` its SQLite database):", "", "```sh", *small["commands"],
              "```"]
    return "\n".join(lines) + "\n"


def write_clips_section(heading: str, run: Any, markdown: Any, processes: int, out: Path) -> None:
    """Compute one section on the GTZAN excerpts in a scratch folder and (re)write only that section."""
    from benchmarks_md import write_section

    if not CLIPS.is_dir():
        sys.exit(f"GTZAN excerpts not found at {CLIPS}")
    with tempfile.TemporaryDirectory(prefix="mc_eval_") as tmp:
        res = run(Path(tmp), processes)
        res["commands"] = [portable(c, Path(tmp)) for c in res["commands"]]
    write_section(heading, markdown(res), out)
    print(f"wrote the section {heading!r} of {out}")


# The sections on the 70 excerpts after the tables' sections, in the order a full run writes them; each can also
# be (re)written alone with its flag.
SECTION_FLAGS = {"audit": "audit_only", "small_data": "small_data_only", "musicnn": "only_musicnn",
                 "audit_order": "audit"}


def excerpt_sections() -> dict[str, tuple[str, Any, Any]]:
    """name -> (heading, run(workdir, processes) -> figures, markdown(figures) -> the section's text)."""
    return {
        "audit": (AUDIT_HEADING, run_audit_clips, audit_markdown),
        "small_data": (SMALL_DATA_HEADING, run_small_data, small_data_markdown),
        "musicnn": (HEADING, lambda work, processes: run_musicnn(new_cli(work, "musicnn"), work, processes),
                    lambda res: "\n".join(section_lines(res)) + "\n"),
        "audit_order": (evaluate_audit.HEADING, run_audit_order,
                        lambda res: "\n".join(evaluate_audit.section_lines(res)) + "\n"),
    }


def portable(text: str, work: Path | None = None) -> str:
    """A command or argument as EVALUATION.md writes it: the scratch folder as ``$WORK``, the shared data as
    ``../shared``, this checkout's files relative to it, any other absolute path as ``$WORK/<its name>``
    (never a path of this machine)."""
    shared = str(ROOT.parent / "shared")
    if work is not None:
        text = text.replace(str(work), "$WORK")
    text = text.replace(shared, "../shared")
    if text.startswith("/"):
        path = Path(text)
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else f"$WORK/{path.name}"
    return text


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=None, help="Stratified sample of N Spotify tracks (default: all).")
    ap.add_argument("--compare-sample", type=int, default=2000,
                    help="Spotify tracks for the all-model nested comparison (default 2000).")
    ap.add_argument("--no-clips", action="store_true", help="Skip the GTZAN excerpts (feature extraction).")
    ap.add_argument("--processes", type=int, default=2, help="Feature-extraction processes for the excerpts.")
    ap.add_argument("--cache", type=Path, default=None,
                    help="Keep each section's figures as JSON here and reuse them on the next run.")
    ap.add_argument("--out", type=Path, default=ROOT / "EVALUATION.md")
    ap.add_argument("--audit-only", action="store_true",
                    help="Only (re)write the label-audit section of the 70 GTZAN excerpts.")
    ap.add_argument("--audit", action="store_true",
                    help="Only (re)write the audit-order section: three excerpts filed under a wrong genre.")
    ap.add_argument("--only-musicnn", action="store_true",
                    help="Only (re)write the librosa/musicnn section of the 70 GTZAN excerpts.")
    ap.add_argument("--small-data-only", action="store_true",
                    help="Only (re)write the small-data (repeated CV) section of the 70 GTZAN excerpts.")
    args = ap.parse_args(argv)
    for name, (heading, run, markdown) in excerpt_sections().items():
        if getattr(args, SECTION_FLAGS[name]):
            write_clips_section(heading, run, markdown, args.processes, args.out)
            return
    if not TABLES.is_dir():
        sys.exit(f"real tables not found at {TABLES}")
    with tempfile.TemporaryDirectory(prefix="mc_eval_") as tmp:
        work = Path(tmp)

        def section(name: str, compute: Any) -> dict[str, Any]:
            cached = args.cache / f"{name}.json" if args.cache else None
            if cached and cached.is_file():
                return json.loads(cached.read_text())
            t0 = time.perf_counter()
            res = compute()
            res["seconds"] = time.perf_counter() - t0
            for key in ("commands", "compare_commands"):  # temporary paths -> $WORK in the written commands
                if key in res:
                    res[key] = [portable(c, work) for c in res[key]]
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_text(json.dumps(res, default=_jsonable))
            return res

        gtzan = section("gtzan", lambda: run_gtzan(work))
        spotify = section(f"spotify_{args.sample}_{args.compare_sample}",
                          lambda: run_spotify(work, args.sample, args.compare_sample))
        excerpts: dict[str, dict[str, Any]] = {}
        if not args.no_clips and CLIPS.is_dir():
            # Every section on the 70 excerpts, each in its own database (as its single-section flag runs it).
            excerpts["clips"] = section("clips_protocols", lambda: run_clips(work, args.processes))
            for name, (_, run, _) in excerpt_sections().items():
                excerpts[name] = section(name, lambda run=run: run(work, args.processes))
    seconds = sum(r.get("seconds", 0.0) for r in (gtzan, spotify, *excerpts.values()))
    write_markdown(args.out, gtzan, spotify, excerpts.get("clips"), [portable(a) for a in argv], seconds)
    from benchmarks_md import write_section

    for name, (heading, _, markdown) in excerpt_sections().items():  # appended in this order
        if name in excerpts:
            write_section(heading, markdown(excerpts[name]), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
