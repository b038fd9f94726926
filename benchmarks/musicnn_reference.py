"""Reference outputs of MSD_musicnn computed with musicnn's ORIGINAL TensorFlow code, for the forward-pass test.

Runs in a scratch virtualenv OUTSIDE the repository (TensorFlow is never a dependency of the project):

    python3 -m venv ../tfref
    ../tfref/bin/pip install tensorflow-cpu==2.15.1 librosa==0.11.0 soundfile soxr
    ../tfref/bin/pip install --no-deps musicnn==0.1.0
    ../tfref/bin/python benchmarks/musicnn_reference.py --data ../shared/data --write

(TensorFlow 2.15 is the last release whose ``tf.compat.v1.layers`` still builds musicnn's graph; 2.16 moved to
Keras 3.) It writes ``tests/fixtures/musicnn_reference.npz``: for each clip, the mean taggram and the mean and
population std of the penultimate layer over its 3-second patches, plus the per-patch taggram and penultimate
of the first clip. ``tests/test_musicnn_reference.py`` checks our numpy forward pass against it.

The graph is musicnn's own: ``musicnn.models.define_model(x, is_training, "MSD_musicnn", 50)``, restored from the
package's ``MSD_musicnn`` checkpoint with ``tf.compat.v1.train.Saver``, run with ``is_training=False`` on every
patch at once. The input is musicnn's ``extractor.batch_data`` (``librosa.load(sr=16000)``, the 96-band
``librosa.feature.melspectrogram`` with ``n_fft=512, hop_length=256``, ``log10(10000 x + 1)``, non-overlapping
187-frame patches) minus its float16 cast, which overflows to inf on loud audio; the spectrogram stays float32.

``--time`` instead prints a JSON line of timings for the benchmark (``benchmarks/bench_musicnn.py`` calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "musicnn_reference.npz"
GTZAN_DIR = "audio/gtzan_subset_zenny126"
#: A quiet, a busy and a loud genre (metal overflows musicnn's float16 spectrogram), and one more.
CLIPS = [f"{GTZAN_DIR}/{genre}/{genre}.00000.wav" for genre in ("classical", "hiphop", "metal", "reggae")]
SR, N_FFT, HOP, N_MELS, PATCH_FRAMES = 16000, 512, 256, 96, 187


def log_mel_patches(path: Path) -> np.ndarray:
    """musicnn's ``batch_data`` in float32: (n_patches, 187, 96)."""
    import librosa

    audio, sr = librosa.load(path, sr=SR)
    mel = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS).T
    mel = np.log10(10000 * mel.astype(np.float32) + 1)
    n_patches = mel.shape[0] // PATCH_FRAMES
    return mel[: n_patches * PATCH_FRAMES].reshape(n_patches, PATCH_FRAMES, N_MELS)


class TensorflowMusicnn:
    """musicnn's graph and checkpoint, in a TF1 session."""

    def __init__(self) -> None:
        import tensorflow as tf

        tf.compat.v1.disable_eager_execution()
        import musicnn
        from musicnn import models

        self.tf = tf
        tf.compat.v1.reset_default_graph()
        with tf.name_scope("model"):
            self.x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, N_MELS])
            self.is_training = tf.compat.v1.placeholder(tf.bool)
            outputs = models.define_model(self.x, self.is_training, "MSD_musicnn", 50)
            self.taggram = tf.nn.sigmoid(outputs[0])
            self.penultimate = outputs[-1]
        self.session = tf.compat.v1.Session()
        self.session.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver().restore(self.session, os.path.dirname(musicnn.__file__) + "/MSD_musicnn/")

    def run(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Patches fed ``configuration.BATCH_SIZE`` (1) at a time, as musicnn's extractor feeds them."""
        from musicnn import configuration

        tags, embeddings = [], []
        for start in range(0, len(patches), configuration.BATCH_SIZE):
            taggram, penultimate = self.session.run(
                [self.taggram, self.penultimate],
                feed_dict={self.x: patches[start : start + configuration.BATCH_SIZE], self.is_training: False},
            )
            tags.append(taggram)
            embeddings.append(penultimate)
        return np.concatenate(tags), np.concatenate(embeddings)


def write_fixture(data: Path, out: Path) -> None:
    net = TensorflowMusicnn()
    arrays: dict[str, np.ndarray] = {"clips": np.array(CLIPS)}
    for i, clip in enumerate(CLIPS):
        taggram, penultimate = net.run(log_mel_patches(data / clip))
        arrays[f"taggram_mean_{i}"] = taggram.mean(axis=0)
        arrays[f"penultimate_mean_{i}"] = penultimate.mean(axis=0)
        arrays[f"penultimate_std_{i}"] = penultimate.std(axis=0)
        if i == 0:
            arrays["taggram_patches_0"] = taggram
            arrays["penultimate_patches_0"] = penultimate
        print(f"{clip}: {len(taggram)} patches, top tag index {int(np.argmax(taggram.mean(axis=0)))}")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def time_files(paths: list[Path]) -> dict[str, float]:
    """Seconds (wall and process CPU) to load, build the input of and run the network on each file, one thread."""
    build_start = time.perf_counter()
    net = TensorflowMusicnn()
    build_s = time.perf_counter() - build_start
    net.run(log_mel_patches(paths[0])[:1])  # warm-up: librosa's first calls (numba compiles) are not timed
    wall = cpu = audio_s = 0.0
    for path in paths:
        t0, c0 = time.perf_counter(), time.process_time()
        patches = log_mel_patches(path)
        net.run(patches)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        audio_s += len(patches) * PATCH_FRAMES * HOP / SR
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path("/proc/self/status").read_text().splitlines():  # this process's own high-water mark
        if line.startswith("VmHWM:"):
            peak_mb = int(line.split()[1]) / 1024
    return {"build_s": build_s, "wall_s": wall, "cpu_s": cpu, "audio_s": audio_s, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=FIXTURE)
    parser.add_argument("--write", action="store_true", help="write the fixture")
    parser.add_argument("--time", nargs="+", type=Path, metavar="FILE", help="time these files instead")
    args = parser.parse_args()
    if args.time:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        print(json.dumps(time_files(args.time)))
    elif args.write:
        write_fixture(args.data, args.out)
    else:
        parser.error("give --write or --time FILE...")


if __name__ == "__main__":
    main()
