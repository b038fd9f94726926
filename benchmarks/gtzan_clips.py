"""The real GTZAN clips the extractor benchmarks run on, picked the same way by each of them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GTZAN_DIR = "audio/gtzan_subset_zenny126"


def pick_clips(data: Path, count: int) -> list[Path]:
    """Clip 00000, 00001, ... of each genre in turn: ``count`` clips spread over all genres."""
    genres = sorted(p for p in (data / GTZAN_DIR).iterdir() if p.is_dir())
    per_genre = [sorted(g.glob("*.wav")) for g in genres]
    clips: list[Path] = []
    for i in range(max(len(c) for c in per_genre)):
        for files in per_genre:
            if i < len(files) and len(clips) < count:
                clips.append(files[i])
    return clips


def add_clip_arguments(parser: argparse.ArgumentParser, clips: int) -> None:
    """``--data`` (the shared data directory) and ``--clips`` (how many clips to pick, default ``clips``)."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data directory")
    parser.add_argument("--clips", type=int, default=clips, help="number of GTZAN clips")


def require_clips(data: Path) -> None:
    """Exit with a hint to pass ``--data`` when ``data`` holds no GTZAN clips."""
    if not (data / GTZAN_DIR).is_dir():
        sys.exit(f"no GTZAN clips under {data / GTZAN_DIR}; pass --data")
