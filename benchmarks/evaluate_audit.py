"""Audit order on real clips: three of the 70 GTZAN excerpts filed under a wrong genre folder, where does
`music-classifier audit --csv` rank them?

The three clips are chosen by a fixed rule, not by looking at results: the first clip (``00000``) of the
first three genres in alphabetical order, each filed under the next genre in that order (blues.00000 ->
classical, classical.00000 -> country, country.00000 -> disco). It was not changed after any run. Labels
come from the folders (``audio scan DIR --add-unmatched --genre FOLDER``), as in the other excerpt
sections; RandomForest, 5 x 5-fold out-of-fold probabilities, seed 0; librosa features alone, then
librosa + musicnn. Used by ``python benchmarks/evaluate.py --audit`` (writes the EVALUATION.md section)
and by tests/test_audit_gtzan.py (the same run on SQLite and PostgreSQL).
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEADING = "## Audit order: three GTZAN excerpts filed under a wrong genre"
# (clip, its GTZAN genre folder, the folder it is filed under here)
MISFILED = (("blues.00000", "blues", "classical"), ("classical.00000", "classical", "country"),
            ("country.00000", "country", "disco"))
FEATURE_SETS = (("misfiled_librosa", "librosa"), ("misfiled_both", "librosa,musicnn"))
REPEATS = 5
SEED = 0
TOP = 10


def misfile_tree(clips: Path, dest: Path) -> list[str]:
    """Copy the excerpts to ``dest`` (one folder per genre) with the :data:`MISFILED` clips moved to
    their wrong folder; returns the equivalent shell commands (for the written section)."""
    shutil.copytree(clips, dest)
    commands = [f"cp -r {clips} {dest}"]
    for clip, genre, wrong in MISFILED:
        (dest / genre / f"{clip}.wav").rename(dest / wrong / f"{clip}.wav")
        commands.append(f"mv {dest}/{genre}/{clip}.wav {dest}/{wrong}/")
    return commands


def compute_features(cli: Any, processes: int) -> None:
    """The features the audits need, computed by the CLI (``cli``: an evaluate.CliPath)."""
    for extractor in ("librosa", "musicnn"):
        cli.run("features", "compute", "--extractor", extractor, "--missing", "--no-segments",
                "--processes", str(processes))


def csv_rows(output: str) -> list[dict[str, str]]:
    """The data rows of `audit --csv` output (the runner's output also holds the one stderr summary line)."""
    return [r for r in csv.DictReader(io.StringIO(output[output.index("rank,"):])) if r["rank"].isdigit()]


def load_tree(cli: Any, tree: Path, features: Callable[[Any], None]) -> None:
    """Scan ``tree`` (made by :func:`misfile_tree`) into ``cli``'s fresh database (label = folder), add
    features with ``features(cli)`` and create one dataset per feature set."""
    cli.library = tree
    for genre_dir in sorted(p for p in tree.iterdir() if p.is_dir()):
        cli.run("audio", "scan", genre_dir, "--add-unmatched", "--genre", genre_dir.name)
    features(cli)
    for name, feature_set in FEATURE_SETS:
        cli.run("dataset", "create", name, "--features", feature_set, "--top", "10", "--min-per-genre", "5",
                "--source", "file")


def run_audit_order(cli: Any, tree: Path, features: Callable[[Any], None]) -> dict[str, Any]:
    """:func:`load_tree`, then `audit --csv` of each dataset; the ranked CSV rows per feature set."""
    load_tree(cli, tree, features)
    res: dict[str, Any] = {"runs": {}, "misfiled": [list(m) for m in MISFILED]}
    for name, feature_set in FEATURE_SETS:
        rows = csv_rows(cli.run("audit", name, "--model", "rf", "--repeats", str(REPEATS), "--seed", str(SEED),
                                "--csv"))
        res["runs"][name] = {"features": feature_set, "rows": rows, "ranks": misfiled_ranks(rows),
                             **other_orders(cli, name)}
    res["commands"] = list(cli.commands)
    return res


def other_orders(cli: Any, dataset: str) -> dict[str, dict[str, int]]:
    """Where the misfiled clips would rank, over the newest stored audit of ``dataset``, by self-confidence
    alone (ascending P(folder genre)) and in the order before issue 18.1 (flagged first, then ascending
    P(folder genre)); ties by the stored rank."""
    from music_classifier.models.audit import latest_audit

    engine = cli.engine()
    try:
        with engine.connect() as conn:
            result = latest_audit(conn, dataset)
    finally:
        engine.dispose()

    def ranks(key: Callable[[Any], Any]) -> dict[str, int]:
        rows = sorted(result.rows, key=key)
        return misfiled_ranks([{"title": r.title, "rank": str(i)} for i, r in enumerate(rows, start=1)])

    return {"self_confidence": ranks(lambda r: (r.sheet_probability, r.rank)),
            "flagged_first": ranks(lambda r: (not r.flagged, r.sheet_probability, r.rank))}


def misfiled_ranks(rows: list[dict[str, str]]) -> dict[str, int]:
    """Clip -> its rank in the audit's CSV, for the misfiled clips."""
    wanted = {clip for clip, _, _ in MISFILED}
    return {r["title"]: int(r["rank"]) for r in rows if r["title"] in wanted}


def section_lines(res: dict[str, Any]) -> list[str]:
    moved = ", ".join(f"{clip} ({genre} -> filed under {wrong})" for clip, genre, wrong in res["misfiled"])
    lines = [HEADING, "",
             "Does the audit put real mislabels first? The 70 excerpts of `../shared/data/audio/gtzan_subset_zenny126` "
             f"with three clips moved to a wrong genre folder: {moved}. The rule, fixed before any run: the first clip "
             "of the first three genres (alphabetical), each filed under the next genre; it was not changed after "
             "any run (the two other rules below served only to choose the score). "
             f"`music-classifier audit --csv` ranks every track by one score, (1 - P(folder genre) + P(strongest "
             f"other genre)) / 2 (1 - the normalized margin) from RandomForest out-of-fold probabilities ({REPEATS} x "
             f"5-fold, seed {SEED}), highest first; confident learning's flag is a column, not the sort key. For "
             "comparison, the ranks the same out-of-fold probabilities give by self-confidence alone (1 - P(folder "
             "genre), read from `label_issues.sheet_probability`) and in the order before issue 18.1 (flagged "
             "first, then by self-confidence). Produced by `python benchmarks/evaluate.py` (this section "
             "alone: `--audit`; commands below); tests/test_audit_gtzan.py runs the same on SQLite and PostgreSQL.", "",
             "| features | ranks of the misfiled clips (audit order) | by self-confidence alone | flagged first "
             "(before) | flagged of 70 |", "|---|---|---|---|---|"]

    def ranks(of: dict[str, int]) -> str:
        return ", ".join(f"{clip} #{rank}" for clip, rank in sorted(of.items(), key=lambda kv: kv[1]))

    for run in res["runs"].values():
        lines.append(f"| {run['features']} | {ranks(run['ranks'])} | {ranks(run['self_confidence'])} | "
                     f"{ranks(run['flagged_first'])} | {sum(r['flagged'] == '1' for r in run['rows'])} |")
    for run in res["runs"].values():
        lines += ["", f"Top {TOP}, features {run['features']}:", "",
                  "| rank | clip | folder genre | heard | score | flagged |", "|---:|---|---|---|---:|---|"]
        misfiled = set(run["ranks"])
        for r in run["rows"][:TOP]:
            clip = f"**{r['title']}** (misfiled)" if r["title"] in misfiled else r["title"]
            lines.append(f"| {r['rank']} | {clip} | {r['sheet_genre']} | {r['heard_genre']} | {r['score']} | "
                         f"{'yes' if r['flagged'] == '1' else ''} |")
    lines += ["", "Before issue 18.1, flagged tracks came before every unflagged one, so a misfiled clip that no "
              "other genre's threshold claimed ranked below every flagged clip, whatever their scores.", "",
              "How the score was chosen (a scratch experiment, not run by this script): self-confidence, normalized "
              "margin and confidence-weighted entropy on the same out-of-fold probabilities, librosa features, three "
              "rules of this kind (clip 00000 of blues, classical, country; clip 00001 of disco, hiphop, jazz; clip "
              "00002 of metal, pop, reggae; each relabelled to the next genre in place) under seeds 0, 1, 2. Worst "
              "misfiled rank over the 9 runs: normalized margin 3-6 (mean 3.7), self-confidence 3-8 (mean 4.8), "
              "confidence-weighted entropy (ordered by P(folder genre) / entropy) 3-9. The rule of this section is "
              "the first of the three, so the choice was partly made on these clips.", "",
              "Commands (`$WORK` a scratch folder, `$DB` its SQLite database):", "", "```sh", *res["commands"], "```"]
    return lines
