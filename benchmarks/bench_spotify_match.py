"""Benchmark: `spotify match-local`'s matcher on the real tidytuesday `spotify_songs.csv` (~28,000 tracks).

    python benchmarks/bench_spotify_match.py [--targets 400] [--naive 20] [--write]

Targets are sheet-like spellings of dataset songs, made from real rows with a seeded random edit
(exact; lower case with "The " added or dropped; one letter dropped from the title; a "feat." credit
and a "- Remastered" suffix added) plus made-up songs by made-up artists that must match nothing.

- Speed: the artist-blocked index (what match-local runs) against the naive rule, scoring every
  dataset track for every target (:func:`best_candidate` over all), per target, in the same run; the
  naive choice is checked to be the same candidate (or an equal score) on the targets it ran on.
- Quality at MATCH_THRESHOLD: share of real targets matched to a track with the same normalised
  artist and title as their source, wrong matches, and made-up targets that matched anything.

``--write`` replaces the ``## Spotify match-local`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import random
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tables" / "spotify_songs.csv"
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path

SECTION = "## Spotify match-local"


def load_candidates(path: Path):  # noqa: ANN201
    from music_classifier.ingest.spotify_match_local import Candidate

    seen: dict[str, Candidate] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            sid = row["track_id"]
            if sid in seen or not row["track_artist"] or not row["track_name"]:
                continue
            seen[sid] = Candidate(len(seen) + 1, row["track_artist"], row["track_name"], sid, len(seen) + 1)
    return list(seen.values())


def perturb(artist: str, title: str, rng: random.Random) -> tuple[str, str, str]:
    kind = rng.choice(["exact", "case_the", "typo", "feat_remaster"])
    if kind == "case_the":
        artist = artist[4:] if artist.lower().startswith("the ") else "The " + artist
        return artist.lower(), title.lower(), kind
    if kind == "typo":
        main = len(title.split(" - ")[0].split("(")[0])  # a slip in the song's name, not in "Remastered"
        letters = [i for i, c in enumerate(title[:main]) if c.isalpha()]
        if len(letters) >= 8:  # one letter in a short title is a bigger change than a spelling slip
            i = rng.choice(letters[1:])
            title = title[:i] + title[i + 1:]
        return artist, title, kind
    if kind == "feat_remaster":
        return artist, f"{title} (feat. Someone Else) - Remastered 2011", kind
    return artist, title, kind


def made_up(rng: random.Random) -> tuple[str, str]:
    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9))).title()

    return f"{word()} {word()}", f"{word()} {word()} {word()}"


def timed(fn, *args):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=400)
    parser.add_argument("--naive", type=int, default=20, help="targets also run through the naive scan")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"real data not found at {DATA}", file=sys.stderr)
        return 2

    from music_classifier.features.spotify_match import MATCH_THRESHOLD, best_candidate, norm_artist, norm_title
    from music_classifier.ingest.spotify_match_local import ArtistIndex

    rng = random.Random(args.seed)
    candidates, load_s = timed(load_candidates, DATA)
    index, build_s = timed(ArtistIndex, candidates)
    real = rng.sample(candidates, args.targets)
    targets = [(*perturb(c.artist, c.title, rng), c) for c in real]
    fakes = [made_up(rng) for _ in range(args.targets // 4)]

    def same_song(a, b) -> bool:  # noqa: ANN001
        return (norm_artist(a.artist), norm_title(a.title)) == (norm_artist(b.artist), norm_title(b.title))

    start = time.perf_counter()
    results = [index.best(artist, title, MATCH_THRESHOLD) for artist, title, _kind, _src in targets]
    fake_results = [index.best(artist, title, MATCH_THRESHOLD) for artist, title in fakes]
    indexed_s = (time.perf_counter() - start) / (len(targets) + len(fakes))

    start = time.perf_counter()
    naive = [best_candidate(artist, title, ((c, c.artist, c.title) for c in candidates))
             for artist, title, _kind, _src in targets[: args.naive]]
    naive_s = (time.perf_counter() - start) / args.naive
    agree = sum(1 for fast, slow in zip(results, naive, strict=False)
                if (fast is None and slow[1] < MATCH_THRESHOLD)
                or (fast is not None and (fast[0] is slow[0] or abs(fast[1] - slow[1]) < 1e-12)))

    by_kind: dict[str, list[int]] = {}
    wrong = 0
    for (_a, _t, kind, src), res in zip(targets, results, strict=True):
        ok = res is not None and res[1] >= MATCH_THRESHOLD and same_song(res[0], src)
        wrong += res is not None and res[1] >= MATCH_THRESHOLD and not same_song(res[0], src)
        by_kind.setdefault(kind, [0, 0])
        by_kind[kind][0] += ok
        by_kind[kind][1] += 1
    fake_hits = sum(1 for r in fake_results if r is not None and r[1] >= MATCH_THRESHOLD)

    lines = [
        SECTION, "",
        f"Command: `python benchmarks/bench_spotify_match.py --targets {args.targets} --naive {args.naive}` "
        f"(seed {args.seed}), one run, real `spotify_songs.csv` ({len(candidates):,} distinct tracks, "
        f"{len(index.keys):,} distinct normalised artist spellings).",
        "",
        "| what | per target | ratio |",
        "|---|---|---|",
        f"| naive: score every dataset track (`best_candidate` over all) | {naive_s * 1000:.1f} ms | 1.0x |",
        f"| match-local: artist-blocked index (rapidfuzz over artist spellings, then titles) | "
        f"{indexed_s * 1000:.2f} ms | {naive_s / indexed_s:.0f}x faster |",
        "",
        f"Index build: {build_s:.2f} s once per run (CSV read: {load_s:.2f} s). The index returns the naive "
        f"scan's choice on {agree}/{args.naive} targets checked (blocking is exact: a candidate whose artist "
        f"is below the threshold cannot reach it, the score being min(title, artist)).",
        "",
        f"Quality at MATCH_THRESHOLD = {MATCH_THRESHOLD}: real songs found (same normalised artist and title "
        "as the source row), by how the sheet spelled them:",
        "",
        "| spelling | found |",
        "|---|---|",
        *[f"| {k} | {v[0]}/{v[1]} |" for k, v in sorted(by_kind.items())],
        "",
        f"Wrong song accepted: {wrong}/{len(targets)}. Made-up songs that matched anything: "
        f"{fake_hits}/{len(fakes)}.",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section(SECTION, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
