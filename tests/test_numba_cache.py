"""numba's cache: processes starting together on a cold cache compile once, under a lock, and leave a
cache every later process can use (numba issue 10128 corrupted it once: SIGSEGV in every process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from waits import HANG_S

from music_classifier.features.librosa_extractor import extract_librosa_features

N_PROCESSES = 3
SR = 22050

START = """
import sys, time
from music_classifier.features.numba_cache import warm_numba_cache
# start together: every process is past its imports before the first one compiles
while time.time() < float(sys.argv[1]):
    time.sleep(0.01)
print("warmed" if warm_numba_cache() else "reused")
"""

FRESH = """
import json, numpy as np, librosa
from music_classifier.features.librosa_extractor import extract_librosa_features
sr = 22050
t = np.arange(3 * sr) / sr
y = (0.4 * np.sin(2 * np.pi * 330 * t) + 0.2 * np.sin(2 * np.pi * 495 * t)).astype(np.float32)
values = extract_librosa_features(y=y, sr=sr)
values["librosa_chroma_stft_sum"] = float(librosa.feature.chroma_stft(y=y, sr=sr).sum())
print(json.dumps(values))
"""


def _signal() -> np.ndarray:
    t = np.arange(3 * SR) / SR
    return (0.4 * np.sin(2 * np.pi * 330 * t) + 0.2 * np.sin(2 * np.pi * 495 * t)).astype(np.float32)


@pytest.mark.slow
def test_processes_starting_on_a_cold_cache_compile_once_and_leave_a_usable_cache(tmp_path):
    import time

    import librosa

    cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    start_at = str(time.time() + 8)
    procs = [subprocess.Popen([sys.executable, "-c", START, start_at], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(N_PROCESSES)]
    results = [p.communicate(timeout=900) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err[-2000:]
    # exactly one process compiled; the others waited on the lock and loaded its files
    assert sorted(out.strip() for out, _ in results) == ["reused"] * (N_PROCESSES - 1) + ["warmed"]
    cached = {p.parent.name.split("_")[0] for p in cache.rglob("*.nbi")}
    assert {"features", "librosa"} <= cached  # ours and librosa's kernels, in the project's cache dir

    fresh = subprocess.run([sys.executable, "-c", FRESH], env=env, capture_output=True, text=True, timeout=900)
    assert fresh.returncode == 0, f"exit {fresh.returncode} (negative: killed by a signal)\n{fresh.stderr[-2000:]}"
    values = json.loads(fresh.stdout)
    expected = extract_librosa_features(y=_signal(), sr=SR)  # this process: the test run's own cache
    expected["librosa_chroma_stft_sum"] = float(librosa.feature.chroma_stft(y=_signal(), sr=SR).sum())
    assert values.keys() == expected.keys()
    np.testing.assert_allclose([values[k] for k in expected], list(expected.values()), rtol=1e-5, atol=1e-6)


def test_cache_dir_defaults_to_the_project_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", "import music_classifier, numba; print(numba.config.CACHE_DIR)"],
                         env=env, capture_output=True, text=True, timeout=HANG_S)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "music-classifier" / "numba")


WARM_CHECK = """
import sys
from music_classifier.features.numba_cache import _warm_key, ensure_cache_dir, warm_numba_cache
marker = ensure_cache_dir() / f".warm-{_warm_key()}"
if sys.argv[1] == "marked":
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("test")
print(warm_numba_cache(), "numba" in sys.modules, "librosa" in sys.modules)
"""


def test_a_warm_cache_is_only_checked_never_loaded(tmp_path):
    # With the marker for these versions and sources present, warm-up imports neither numba nor librosa
    # (the 2.8 s a warm cache used to cost every `features compute`): it only looks at the marker.
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", WARM_CHECK, "marked"], env=env, capture_output=True, text=True,
                         timeout=HANG_S)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"]
