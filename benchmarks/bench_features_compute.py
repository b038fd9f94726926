"""`features compute --extractor librosa --processes 1` as a user runs it, against the naive script.

One process, back to back on the same GTZAN clips (copied into a temporary library): the CLI path
(whole track + 3 s segments, read from and stored into a SQLite database; start-up excluded: the
first run, on one clip of another database, pays the imports), the naive script (``librosa.load``
+ the usual whole-clip features, one librosa call each: :func:`~music_classifier.features.reference.
reference_librosa_features`, whole clips only) and the floor (decode + one STFT). Per-track CPU time
(``process_time``) and wall clock, best of ``--repeat`` runs each (benchmarks/timing.py), real-time
factors, and a cProfile of the CLI path. BLAS/OpenMP pools are limited to one thread.

Usage (repository root; writes the ``## features compute (CLI path)`` section of BENCHMARKS.md):

    NUMBA_CACHE_DIR=.numba-cache python benchmarks/bench_features_compute.py --clips 20 --repeat 3 \
        --before before.txt --write

``before.txt``: this script's output (without ``--write``) on the previous code, e.g.
``PYTHONPATH=<checkout of that commit> python benchmarks/bench_features_compute.py --clips 20 > before.txt``
(``PYTHONPATH`` puts that checkout's package ahead of the installed one). ``--profile-only`` prints
the profile table alone.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from one_thread import one_thread_pools  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
THREAD_VARS = one_thread_pools()

from benchmarks_md import write_section  # noqa: E402
from gtzan_clips import GTZAN_DIR, add_clip_arguments, pick_clips, require_clips  # noqa: E402
from timing import best_of_interleaved  # noqa: E402

SECTION = "## features compute (CLI path)"
COMPUTE = ("features", "compute", "--extractor", "librosa", "--all", "--processes", "1")


class Cli:
    """``music-classifier --db URL --library DIR ...`` in this process (Typer's CliRunner)."""

    def __init__(self, db: Path, library: Path) -> None:
        self.db, self.library = db, library

    def run(self, *args: str) -> str:
        from typer.testing import CliRunner

        from music_classifier.cli import app

        result = CliRunner().invoke(app, ["--db", f"sqlite:///{self.db}", "--library", str(self.library), *args])
        if result.exit_code != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.exit_code}): {result.output}")
        return result.output


def make_library(clips: list[Path], root: Path) -> Cli:
    """The clips copied under ``root/lib/<genre>/``, scanned into a new database (one track per clip)."""
    lib = root / "lib"
    for clip in clips:
        (lib / clip.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, lib / clip.parent.name / clip.name)
    cli = Cli(root / "bench.db", lib)
    cli.run("db", "upgrade")
    for genre in sorted(lib.iterdir()):
        cli.run("audio", "scan", str(genre), "--add-unmatched", "--genre", genre.name)
    return cli


def naive_script(clips: list[Path]) -> None:
    """What a user would write: librosa.load, then one librosa call per feature, whole clips."""
    import librosa

    from music_classifier.features.reference import reference_librosa_features

    for clip in clips:
        y, sr = librosa.load(clip, sr=22050)
        reference_librosa_features(y=y, sr=sr)


def floor(clips: list[Path]) -> None:
    """Decode (the project's load_audio) + one STFT: the least any STFT-based extractor does."""
    import librosa

    from music_classifier.features.audio_io import load_audio

    for clip in clips:
        y, _ = load_audio(clip)
        librosa.stft(y, n_fft=2048, hop_length=512)


def audio_seconds(clips: list[Path]) -> float:
    import soundfile as sf

    return sum(sf.info(str(c)).duration for c in clips)


def profile_table(cli: Cli, top: int = 15) -> tuple[float, list[str]]:
    """cProfile of one CLI run: the top entries by cumulative time (ours and librosa's)."""
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.enable()
    cli.run(*COMPUTE)
    prof.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(prof).stats
    rows = sorted(((ct, tt, nc, key) for key, (_, nc, tt, ct, _) in stats.items()
                   if ("music_classifier" in key[0] or "librosa" in key[0]) and "/commands/" not in key[0]
                   and "/jobs/" not in key[0]), reverse=True)[:top]
    lines = ["| function | calls | cumulative s | own s |", "|---|---:|---:|---:|"]
    for ct, tt, nc, (file, line, name) in rows:
        where = file.split("site-packages/")[-1].split("music_classifier/")[-1]
        lines.append(f"| `{where}:{line}({name})` | {nc} | {ct:.2f} | {tt:.2f} |")
    return total, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_clip_arguments(parser, clips=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile-only", action="store_true")
    parser.add_argument("--before", type=Path, help="this script's output on the previous code, shown as 'before'")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    require_clips(args.data)
    import music_classifier
    from music_classifier.features.librosa_extractor import EXTRACTOR_VERSION

    print(f"code: {Path(music_classifier.__file__).parent} (librosa extractor v{EXTRACTOR_VERSION})", flush=True)
    clips = pick_clips(args.data, args.clips)
    started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-compute-") as tmp:
        warm = make_library(clips[:1], Path(tmp) / "warm")
        warm.run(*COMPUTE)  # start-up: imports, numba cache check and kernel loads, lazy librosa state
        cli = make_library(clips, Path(tmp) / "main")
        if args.profile_only:
            total, lines = profile_table(cli)
            print(f"cProfile of one CLI run over {len(clips)} clips: {total:.2f} s wall incl. profiler\n")
            print("\n".join(lines))
            return
        naive_script(clips[:1])
        floor(clips[:1])
        print(f"CLI path, naive script, floor in turn, {args.repeat} rounds ...", flush=True)
        timings = best_of_interleaved({"ours": lambda: cli.run(*COMPUTE), "naive": lambda: naive_script(clips),
                                       "floor": lambda: floor(clips)}, args.repeat)
        ours, naive, low = timings["ours"], timings["naive"], timings["floor"]
        print(f"  {timings}\nprofile ...", flush=True)
        prof_total, prof_lines = profile_table(cli)
    audio = audio_seconds(clips)
    n = len(clips)
    end_load = os.getloadavg()
    rows = [("`features compute` CLI path (whole + 3 s segments, SQLite)", ours),
            ("naive script (librosa.load + one librosa call per feature, whole clips only)", naive),
            ("floor: decode + one STFT", low)]
    lines = [
        SECTION, "",
        f"Command (repository root): `NUMBA_CACHE_DIR=.numba-cache python benchmarks/bench_features_compute.py "
        f"--clips {n} --repeat {args.repeat}{' --before ' + args.before.name if args.before else ''} --write`", "",
        f"Run {started} on {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other "
        f"work (load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at start, {end_load[0]:.2f} at end), "
        f"Python {platform.python_version()}, librosa extractor version {EXTRACTOR_VERSION}, "
        f"{', '.join(f'{v}={os.environ[v]}' for v in THREAD_VARS)}. {n} GTZAN clips ({audio:.0f} s of audio, "
        f"`{GTZAN_DIR}`, clip 00000, 00001, ... of each genre in turn), all three measured back to back in one "
        f"process, in turn, {args.repeat} rounds; best of the rounds for each (wall and CPU minimum taken "
        "separately). The CLI run is "
        f"`music-classifier features compute --extractor librosa --all --processes 1` in-process (Typer's "
        "runner), start-up excluded: a first run on one clip of another database pays the imports.", "",
        "| what | per track CPU s | per track wall s | real time / CPU | real time / wall | naive / this (CPU) "
        "| naive / this (wall) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, t in rows:
        lines.append(f"| {label} | {t.cpu / n:.3f} | {t.wall / n:.3f} | {audio / t.cpu:.0f}x | {audio / t.wall:.0f}x "
                     f"| {naive.cpu / t.cpu:.2f}x | {naive.wall / t.wall:.2f}x |")
    lines += [
        "",
        f"- **CLI path vs naive whole-clip script: {naive.cpu / ours.cpu:.2f}x less CPU time, "
        f"{naive.wall / ours.wall:.2f}x less wall clock** (target 3x), while also computing "
        "every 3 s segment and storing it all. CPU time is the fairer figure on this shared machine.",
        f"- CLI path / floor: {ours.cpu / low.cpu:.1f}x (CPU).",
        "",
        f"### Profile of the CLI path, after (cProfile, one run over the {n} clips, {prof_total:.2f} s wall "
        "incl. profiler; our and librosa's functions, by cumulative time)",
        "",
        *prof_lines,
        "",
    ]
    if args.before:
        # The same script's output on the previous code: its results table and profile, as they were printed.
        before = args.before.read_text(encoding="utf-8").splitlines()
        first = next(i for i, line in enumerate(before) if line.startswith("Run "))
        lines += ["### Before: extractor v1 (every segment analysed from scratch), same clips, same session", "",
                  "Made just before this run with `PYTHONPATH=<checkout of the previous commit> "
                  f"NUMBA_CACHE_DIR=.numba-cache python benchmarks/bench_features_compute.py --clips {n} "
                  f"--repeat {args.repeat} > {args.before.name}` (this script, that code):", "",
                  *[line.replace("### ", "#### ").replace(", after (", " (") for line in before[first:]], ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(SECTION, text)
        print(f"wrote {SECTION!r} to BENCHMARKS.md")


if __name__ == "__main__":
    main()
