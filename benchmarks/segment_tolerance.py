"""How far segment features taken from the whole track's frames (extractor v2) are from analysing
each 3 s window on its own (v1), feature by feature, on real GTZAN clips; writes the tolerance table
of docs/features.md, which tests/test_librosa_segments.py checks against a fresh measurement.

Measure: for each feature, ``|v2 - v1| / SD``, where SD is the standard deviation of the v1 values
over all segments measured: the difference in units of how much the feature varies between
segments (a relative difference is meaningless for values near 0, e.g. means of MFCCs or of the
harmonic signal).

Usage (repository root): ``NUMBA_CACHE_DIR=.numba-cache python benchmarks/segment_tolerance.py --clips 20 --write``
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "benchmarks") not in sys.path:  # imported by path from the tests: its sibling modules too
    sys.path.insert(0, str(REPO / "benchmarks"))
from gtzan_clips import GTZAN_DIR, add_clip_arguments, pick_clips  # noqa: E402

DOC = REPO / "docs" / "features.md"
BEGIN, END = "<!-- segment-tolerance:begin -->", "<!-- segment-tolerance:end -->"


def measure(clips: list[Path], segment_s: float = 3.0) -> dict[str, tuple[float, float, float]]:
    """Per feature: (median, 95th percentile, max) of ``|v2 - v1| / SD(v1)`` over all segments."""
    from music_classifier.features.audio_io import load_audio
    from music_classifier.features.librosa_extractor import extract_librosa_features, extract_segment_features
    from music_classifier.features.names import LIBROSA_FEATURE_NAMES

    new, old = [], []
    for path in clips:
        y, sr = load_audio(path)
        for _, start, values in extract_segment_features(y=y, sr=sr, segment_s=segment_s):
            first = int(round(start * sr))
            alone = extract_librosa_features(y=y[first : first + int(round(segment_s * sr))], sr=sr)
            new.append([values[n] for n in LIBROSA_FEATURE_NAMES])
            old.append([alone[n] for n in LIBROSA_FEATURE_NAMES])
    a, b = np.array(new), np.array(old)
    z = np.abs(a - b) / b.std(axis=0)
    return {name: (float(np.median(z[:, j])), float(np.quantile(z[:, j], 0.95)), float(z[:, j].max()))
            for j, name in enumerate(LIBROSA_FEATURE_NAMES)}


def render(table: dict[str, tuple[float, float, float]], clips: list[Path], command: str) -> str:
    lines = [BEGIN, "", f"Measured on {len(clips)} GTZAN clips (`{GTZAN_DIR}`, clip 00000, 00001, ... of each genre "
             f"in turn), command: `{command}`", "",
             "| feature | median | 95th percentile | max |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {p50:.3f} | {p95:.3f} | {top:.3f} |" for name, (p50, p95, top) in table.items()]
    return "\n".join([*lines, "", END])


def read_table(text: str) -> dict[str, tuple[float, float, float]]:
    """The documented table back as numbers (what the test compares with)."""
    section = text[text.index(BEGIN) : text.index(END)]
    rows = re.findall(r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", section, flags=re.M)
    return {name: (float(a), float(b), float(c)) for name, a, b, c in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_clip_arguments(parser, clips=20)
    parser.add_argument("--write", action="store_true", help="write the table into docs/features.md")
    args = parser.parse_args()
    clips = pick_clips(args.data, args.clips)
    command = f"NUMBA_CACHE_DIR=.numba-cache python benchmarks/segment_tolerance.py --clips {args.clips} --write"
    text = render(measure(clips), clips, command)
    print(text)
    if args.write:
        doc = DOC.read_text(encoding="utf-8")
        if BEGIN not in doc:
            sys.exit(f"{DOC} has no {BEGIN} ... {END} section")
        DOC.write_text(doc[: doc.index(BEGIN)] + text + doc[doc.index(END) + len(END) :], encoding="utf-8")
        print(f"wrote the table into {DOC}")


if __name__ == "__main__":
    main()
