"""Benchmark of the musicnn extractor against the librosa extractor and musicnn's own TensorFlow code, one run.

Measures, per track on one core (BLAS/OpenMP pools pinned to one thread before numpy loads, and again with
threadpoolctl): seconds and real-time factor of our numpy MSD_musicnn (resample + mel + network) and of the
librosa extractor on the same decoded clips, in the same process; the same for musicnn's original TensorFlow
graph (``benchmarks/musicnn_reference.py --time`` run in its scratch virtualenv, when it exists); peak RSS
of a fresh worker process analysing a generated 10-minute track (ours, librosa's, TensorFlow's); and the disk
size the musicnn weights package and our new dependency add to the environment, next to TensorFlow's.

Usage (from the repository root; writes the ``## musicnn extractor`` section of BENCHMARKS.md):

    NUMBA_CACHE_DIR=.numba-cache python benchmarks/bench_musicnn.py --clips 10 --long-minutes 10 \\
        --tf-python TFREF/bin/python --write

(``TFREF`` is the scratch virtualenv of ``benchmarks/musicnn_reference.py``, e.g. ``../tfref``; without it the
TensorFlow rows say so.)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from one_thread import one_thread_pools  # the script's folder is on sys.path

REPO = Path(__file__).resolve().parents[1]
THREAD_VARS = one_thread_pools("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")

import numpy  # noqa: E402, F401 - loaded after the thread variables are set
from bench_extractor import _proc_status_bytes, timed, write_long_track  # noqa: E402
from benchmarks_md import write_section  # noqa: E402 - the script's folder is on sys.path
from gtzan_clips import GTZAN_DIR, add_clip_arguments, pick_clips, require_clips  # noqa: E402

from music_classifier.features.musicnn.extractor import PATCH_BATCH  # noqa: E402

SECTION = "## musicnn extractor"
TARGET_RTF = 40
TARGET_RSS_MB = 700
TARGET_INSTALL_MB = 150
#: musicnn's TensorFlow graph's CPU time per audio second over ours (decoding included), at least.
TARGET_TF_RATIO = 1.5
#: The previous run's figures (im2col convolutions), for the record: what the network's stages cost then.
BEFORE = ("with im2col convolutions: run 2026-11-26 (load average 11-14), 0.165 s CPU per track, TF / ours = "
          "0.95x, peak RSS 450 MiB on the 10-minute track; that code profiled 2026-12-05 (pop clip, 4 patches a "
          "call): timbral 21 ms per patch, temporal 6.9 ms, mid-end 1.4 ms, back-end 0.05 ms")
#: Back-to-back record of the same change (not re-measured by this script), and how TensorFlow's cost moves.
BACK_TO_BACK = ("Back to back on 2026-12-05 (10 clips, decoding included, load average 6-8): the im2col code "
                "0.179-0.201 s CPU per track, this code 0.113-0.122 s (1.6x less). TensorFlow's graph took "
                "0.225-0.240 s per track that day against 0.152 s on 2026-11-26, so TF / ours moves more with the "
                "run than ours does: against the 2026-11-26 TF figure this code would be 1.1-1.3x")
STAGES = ("timbral", "temporal", "mid-end", "back-end")


def per_track(clips: list[Path]) -> list[dict]:
    from music_classifier.features.audio_io import load_audio
    from music_classifier.features.librosa_extractor import extract_librosa_features
    from music_classifier.features.musicnn import extractor

    rows = []
    for path in clips:
        decode, _, (y, sr) = timed(load_audio, path=path)
        wall, cpu, _ = timed(extractor.extract_musicnn_features, y=y, sr=sr)
        # where our time goes: the input (resample + mel) against the network
        front_wall, _, y16 = timed(extractor.to_16k, y=y, sr=sr)
        mel_wall, _, mel = timed(extractor.log_mel, y16=y16)
        net_wall, _, _ = timed(extractor.run_patches, batch=extractor.patches(mel))
        stages, n_patches = network_stages(extractor.patches(mel))
        lib_wall, lib_cpu, _ = timed(extract_librosa_features, y=y, sr=sr)
        rows.append(dict(clip=path.name, audio_s=len(y) / sr, decode=decode, wall=wall, cpu=cpu,
                         input_wall=front_wall + mel_wall, net_wall=net_wall, lib_wall=lib_wall, lib_cpu=lib_cpu,
                         stages=stages, patches=n_patches))
        print(f"  {path.name}: {len(y) / sr:5.1f} s  musicnn {wall:.3f} s (cpu {cpu:.3f})  "
              f"librosa {lib_wall:.3f} s (cpu {lib_cpu:.3f})", flush=True)
    return rows


def network_stages(patches) -> tuple[dict[str, float], int]:
    """CPU seconds of each stage of the network over a clip's patches (one call), and the patch count."""
    import numpy as np

    from music_classifier.features.musicnn import extractor

    net = extractor.network()
    x = net.normalise(np.ascontiguousarray(patches))
    _, timbral_cpu, timbral = timed(net.timbral_branches, x=x)
    _, temporal_cpu, temporal = timed(net.temporal_branches, x=x)
    _, mid_cpu, features = timed(net.midend, front=np.concatenate(timbral + temporal, axis=2))
    _, back_cpu, _ = timed(net.backend, features=features)
    return dict(zip(STAGES, (timbral_cpu, temporal_cpu, mid_cpu, back_cpu), strict=True)), len(patches)


def _peak_child(path: str, which: str, queue) -> None:
    from threadpoolctl import threadpool_limits

    from music_classifier.features.audio_io import load_audio

    threadpool_limits(1)
    if which == "musicnn":
        from music_classifier.features.musicnn.extractor import extract_musicnn_features as fn
        from music_classifier.features.musicnn.extractor import network

        network()  # weights loaded: part of a worker's resident set before its first job
    else:
        from bench_extractor import _worker_init

        from music_classifier.features.librosa_extractor import extract_librosa_features as fn

        _worker_init()
    import librosa  # noqa: F401 - both paths use it; counted in the base

    base = _proc_status_bytes("VmRSS")
    y, sr = load_audio(path)
    t = time.perf_counter()
    fn(y=y, sr=sr)
    queue.put((base, _proc_status_bytes("VmHWM"), len(y) / sr, time.perf_counter() - t))


def peak_rss(path: Path, which: str) -> tuple[int, int, float, float]:
    """(RSS after imports + weights, peak RSS (VmHWM), analysed s, seconds) of a fresh spawned process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(str(path), which, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except Exception:  # queue.Empty
            if not proc.is_alive():
                raise RuntimeError(f"memory child exited with code {proc.exitcode}") from None
    proc.join()
    return result


def tensorflow_run(tf_python: Path | None, files: list[Path]) -> dict | str:
    """Timings of musicnn's TensorFlow graph on ``files`` (one thread), or why there are none."""
    if tf_python is None or not tf_python.exists():
        return f"not run: no TensorFlow virtualenv at {tf_python} (see benchmarks/musicnn_reference.py)"
    proc = subprocess.run(
        [str(tf_python), str(REPO / "benchmarks" / "musicnn_reference.py"), "--time", *map(str, files)],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    if proc.returncode != 0:
        return "failed: " + (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def install_sizes(tf_python: Path | None) -> dict[str, int]:
    """Bytes on disk: the musicnn package, google-crc32c (our one new dependency), TensorFlow's site-packages."""
    import importlib.metadata as md

    sizes = {}
    for dist in ("musicnn", "google-crc32c"):
        files = md.distribution(dist).files or []
        sizes[dist] = sum(f.locate().stat().st_size for f in files if f.locate().is_file())
    if tf_python is not None and tf_python.exists():
        site = subprocess.run([str(tf_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        sizes["tensorflow venv site-packages"] = dir_bytes(Path(site))
    return sizes


def mb(n: float) -> str:
    return f"{n / 2**20:.1f} MiB" if n < 10 * 2**20 else f"{n / 2**20:.0f} MiB"


def render(args, rows, tf_clips, long_rows, tf_long, sizes, started, load) -> str:
    audio = sum(r["audio_s"] for r in rows)
    wall, cpu = sum(r["wall"] for r in rows), sum(r["cpu"] for r in rows)
    lib_wall, lib_cpu = sum(r["lib_wall"] for r in rows), sum(r["lib_cpu"] for r in rows)
    decode = sum(r["decode"] for r in rows)
    inp, net = sum(r["input_wall"] for r in rows), sum(r["net_wall"] for r in rows)
    n = len(rows)
    patches = sum(r["patches"] for r in rows)
    stage = {name: sum(r["stages"][name] for r in rows) for name in STAGES}
    staged = sum(stage.values())
    # the scratch virtualenv lives outside the repository; its location is the reader's own
    tf_cmd = " --tf-python TFREF/bin/python" if args.tf_python else ""
    lines = [
        SECTION,
        "",
        f"Command (repository root): `NUMBA_CACHE_DIR=.numba-cache python benchmarks/bench_musicnn.py "
        f"--clips {args.clips} --long-minutes {args.long_minutes:g}{tf_cmd} --write`"
        + (" (TFREF: the TensorFlow 2.15 scratch virtualenv whose commands head `benchmarks/musicnn_reference.py`)"
           if tf_cmd else ""),
        "",
        f"Run {started} on {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other "
        f"work (load average {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end), Python "
        f"{platform.python_version()}, every thread pool pinned to one thread (OPENBLAS/OMP/MKL/TF threads = 1, "
        f"threadpoolctl). {n} GTZAN clips ({audio:.0f} s of audio, one per genre in turn) from "
        f"`../shared/data/{GTZAN_DIR}`, decoded once by `load_audio` (22,050 Hz mono) and given to both "
        "extractors; ours resamples to 16 kHz, builds the log-mel patches and runs the network. Real-time factor "
        "= seconds of audio per second of one core's CPU time (wall clock in brackets: it includes waiting for a "
        "core on this shared machine).",
        "",
        "### Per track, one core",
        "",
        "| clip | audio s | musicnn s | musicnn CPU s | musicnn x real time (CPU) | librosa s | librosa CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['clip']} | {r['audio_s']:.1f} | {r['wall']:.3f} | {r['cpu']:.3f} | "
                     f"{r['audio_s'] / r['cpu']:.0f}x | {r['lib_wall']:.3f} | {r['lib_cpu']:.3f} |")
    lines += [
        f"| **total** | {audio:.1f} | {wall:.3f} | {cpu:.3f} | **{audio / cpu:.0f}x** | {lib_wall:.3f} | "
        f"{lib_cpu:.3f} |",
        "",
        f"- **musicnn (ours): {cpu / n:.3f} s CPU per track, {audio / cpu:.0f}x real time per core** "
        f"({audio / wall:.0f}x by wall clock). Target >= {TARGET_RTF}x: "
        f"{'met' if audio / cpu >= TARGET_RTF else 'NOT met'}.",
        f"- librosa extractor on the same clips: {lib_cpu / n:.3f} s CPU per track, {audio / lib_cpu:.0f}x real "
        f"time per core; musicnn costs {cpu / lib_cpu:.2f}x the librosa extractor's CPU time.",
        f"- Where musicnn's wall time goes: resample + log-mel {100 * inp / (inp + net):.0f}%, network "
        f"{100 * net / (inp + net):.0f}%. Decoding (shared by every extractor, not counted above): "
        f"{decode / n:.3f} s per track.",
        "- Where the network's CPU time goes (each clip's patches in one call, summed over the clips): "
        + ", ".join(f"{name} {1000 * stage[name] / patches:.1f} ms per patch ({100 * stage[name] / staged:.0f}%)"
                    for name in STAGES)
        + ". Timbral: the 7 x 38 and 7 x 67 convolutions through the band axis's DFT; temporal: block-Toeplitz "
        "products (`music_classifier/features/musicnn/convolutions.py`).",
        f"- Before, {BEFORE}.",
        f"- {BACK_TO_BACK}.",
    ]
    if isinstance(tf_clips, dict):
        tf_audio = tf_clips["audio_s"]
        ratio = (tf_clips["cpu_s"] / tf_audio) / ((cpu + decode) / audio)
        lines.append(
            f"- **musicnn's TensorFlow graph** (TF {args.tf_version}, same clips, one intra/inter-op thread, "
            f"`librosa.load` + mel + network; graph build and checkpoint restore, {tf_clips['build_s']:.1f} s, "
            f"not counted): {tf_clips['cpu_s'] / n:.3f} s CPU per track, {tf_audio / tf_clips['cpu_s']:.0f}x real "
            f"time per core ({tf_audio / tf_clips['wall_s']:.0f}x wall). Ours including decoding: "
            f"{(cpu + decode) / n:.3f} s per track, {audio / (cpu + decode):.0f}x; TF / ours = "
            f"{ratio:.2f}x (target >= {TARGET_TF_RATIO}x: {'met' if ratio >= TARGET_TF_RATIO else 'NOT met'}). "
            "(TF's audio seconds count only whole patches.)"
        )
    else:
        lines.append(f"- musicnn's TensorFlow graph: {tf_clips}.")
    lines += [
        "",
        f"### Peak memory, generated {args.long_minutes:g}-minute track (44.1 kHz stereo WAV), fresh worker process",
        "",
        "| extractor | RSS after imports (+ weights) | peak RSS (VmHWM) | analysed | time |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, (base, peak, secs, elapsed) in long_rows:
        bold = "**" if label.startswith("musicnn") else ""
        lines.append(f"| {label} | {mb(base)} | {bold}{mb(peak)}{bold} | {secs:.0f} s | {elapsed:.1f} s |")
    if isinstance(tf_long, dict):
        lines.append(f"| musicnn, TensorFlow graph | | {mb(tf_long['peak_rss_mb'] * 2**20)} | "
                     f"{tf_long['audio_s']:.0f} s | {tf_long['wall_s']:.1f} s |")
    else:
        lines.append(f"| musicnn, TensorFlow graph | {tf_long} | | | |")
    musicnn_peak = dict(long_rows)["musicnn (ours)"][1]
    lines += [
        "",
        f"Target <= {TARGET_RSS_MB} MB per worker for the musicnn extractor: "
        f"{'met' if musicnn_peak <= TARGET_RSS_MB * 1e6 else 'NOT met'} ({musicnn_peak / 1e6:.0f} MB). Patches go "
        f"through the network {PATCH_BATCH} at a time, so memory does not grow with the track beyond its spectrogram.",
        "",
        "### Install size",
        "",
        "| what | on disk |",
        "|---|---:|",
    ]
    for name, size in sizes.items():
        lines.append(f"| {name} | {mb(size)} |")
    added = sizes["musicnn"] + sizes["google-crc32c"]
    lines += [
        "",
        f"Added to the environment by the musicnn extractor: **{mb(added)}** (the `musicnn` wheel, all four of its "
        f"checkpoints, installed with `--no-deps`, plus `google-crc32c`); target <= {TARGET_INSTALL_MB} MB: "
        f"{'met' if added <= TARGET_INSTALL_MB * 1e6 else 'NOT met'}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_clip_arguments(parser, clips=10)
    parser.add_argument("--long-minutes", type=float, default=10.0, help="length of the memory test track")
    parser.add_argument("--tf-python", type=Path, default=None, help="python of the TensorFlow scratch venv")
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args()
    require_clips(args.data)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()
    args.tf_version = "?"
    if args.tf_python and args.tf_python.exists():
        args.tf_version = subprocess.run(
            [str(args.tf_python), "-c", "import importlib.metadata as m; print(m.version('tensorflow-cpu'))"],
            capture_output=True, text=True).stdout.strip() or "?"
    clips = pick_clips(args.data, args.clips)
    per_track(clips[:1])  # warm-up: imports, weights, librosa's lazy filters, numba cache
    print("per track:", flush=True)
    rows = per_track(clips)
    print("TensorFlow reference ...", flush=True)
    tf_clips = tensorflow_run(args.tf_python, clips)
    print("memory ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        long_path = Path(tmp) / "long.wav"
        write_long_track(long_path, args.long_minutes)
        long_rows = [("musicnn (ours)", peak_rss(long_path, "musicnn")),
                     ("librosa extractor", peak_rss(long_path, "librosa"))]
        tf_long = tensorflow_run(args.tf_python, [long_path])
    sizes = install_sizes(args.tf_python)
    text = render(args, rows, tf_clips, long_rows, tf_long, sizes, started, load)
    print(text)
    if args.write:
        write_section(SECTION, text)
        print(f"wrote {SECTION!r} to {REPO / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
