"""Track map: the size of the offline HTML page (plotly.js inlined) for a class set and a large table.

The page is what `plot map` and the report write: same figure, same search hook. The points are
generated (10 genres, 30 students, realistic artist/title lengths) and their coordinates drawn at
random, since the size depends on the data carried per point, not on where t-SNE puts them; above
``MAX_MAP_TRACKS`` the page holds the seeded subsample `dataset_map_data` would draw.

    python benchmarks/bench_map.py --write
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path

from music_classifier.models.track_map import MAX_MAP_TRACKS, MapData, subsample, write_map_html

SECTION = "## Track map page size"
SIZES = (300, 30_000)
GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def generated(n: int, seed: int = 0, limit: int = MAX_MAP_TRACKS) -> tuple[MapData, str]:
    rng = np.random.default_rng(seed)
    rows, note = subsample(np.arange(n), limit, seed)
    genres = [GENRES[i % len(GENRES)] for i in rows]
    data = MapData(xy=rng.normal(0, 20, (len(rows), 2)), track_ids=rows + 1,
                   artists=[f"Artist name {i:05d}" for i in rows],
                   titles=[f"A song title of usual length {i:05d}" for i in rows],
                   students=[f"Student {i % 30:02d}" for i in rows], genres=genres,
                   predicted=[GENRES[(i * 7) % len(GENRES)] for i in rows],
                   confidence=rng.uniform(0.2, 1.0, len(rows)), notes=[note] if note else [],
                   prediction_source="out-of-fold predictions (generated)")
    return data, note


def measure() -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, limit in [*((n, MAX_MAP_TRACKS) for n in SIZES), (SIZES[-1], SIZES[-1])]:
            data, note = generated(n, limit=limit)
            start = time.perf_counter()
            path = write_map_html(data, Path(tmp) / f"map{n}.html", title=f"{n} tracks")
            seconds = time.perf_counter() - start
            page = path.read_text(encoding="utf-8")
            script = max((len(s) for s in page.split("<script")), default=0)  # plotly.js, the largest block
            out.append({"tracks": n if limit == MAX_MAP_TRACKS else f"{n:,} (no limit, for comparison)",
                        "points": len(data.track_ids), "bytes": path.stat().st_size,
                        "plotly_js_bytes": script, "seconds": seconds, "note": note})
    return out


def markdown(rows: list[dict]) -> str:
    lines = [SECTION, "",
             "`python benchmarks/bench_map.py --write`: the offline HTML of the interactive track map (`plot map`, the "
             "report's map section), plotly.js inlined; generated points with 10 genres and 30 students.", "",
             "| tracks in dataset | points on the page | page size | of which plotly.js | per point | write time |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        per_point = (r["bytes"] - r["plotly_js_bytes"]) / r["points"]
        tracks = f"{r['tracks']:,}" if isinstance(r["tracks"], int) else r["tracks"]
        lines.append(f"| {tracks} | {r['points']:,} | {r['bytes'] / 1e6:.2f} MB | {r['plotly_js_bytes'] / 1e6:.2f} MB "
                     f"| {per_point:.0f} B | {r['seconds']:.2f} s |")
    lines += ["", f"Above {MAX_MAP_TRACKS:,} tracks the page holds a seeded random subsample of {MAX_MAP_TRACKS:,} and "
              "says so above the map, so a page stays under ~6 MB and can be mailed; plotly.js itself is most of it."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    args = parser.parse_args()
    text = markdown(measure())
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
