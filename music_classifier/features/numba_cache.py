"""numba's on-disk cache: in the project's directory, and written by one process at a time.

The fast extractor's kernels (:mod:`.median`) and several librosa functions are numba functions with
``cache=True``. Processes that compile the same function for the first time at the same moment all
write its ``.nbi``/``.nbc`` files, and numba's guvectorize caching has a race there (numba issue
10128): once, every later process calling librosa's ``chroma_stft`` died with SIGSEGV until the
files were deleted. So:

- :func:`ensure_cache_dir` points ``NUMBA_CACHE_DIR`` at a project directory when it is unset (the
  package's ``__init__`` calls it, before anything imports numba), so librosa's cache is ours too,
  not files inside the virtualenv;
- :func:`warm_numba_cache` checks a marker for these library versions and sources first; only
  when it is missing does it run the extractor once in the calling process while holding an
  exclusive lock on that directory, then leave the marker. ``features compute`` calls it before
  its process pool starts and ``worker`` before it takes jobs, so their children only ever *read*
  the cache. With the marker present it costs milliseconds (no import of numba or librosa).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_ENV = "NUMBA_CACHE_DIR"
LOCK_NAME = ".music-classifier.lock"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "music-classifier" / "numba"


def ensure_cache_dir() -> Path:
    """``NUMBA_CACHE_DIR``, set to :func:`default_cache_dir` when unset. Cheap: imports nothing."""
    current = os.environ.get(CACHE_ENV)
    if not current:
        current = str(default_cache_dir())
        os.environ[CACHE_ENV] = current
        numba = sys.modules.get("numba")
        if numba is not None:  # imported before us: numba reads the directory from its config
            numba.config.CACHE_DIR = current
    return Path(current)


#: The modules whose code decides which numba functions the extractor compiles (ours and librosa's).
_EXTRACTOR_SOURCES = ("median.py", "librosa_extractor.py", "librosa_segments.py", "contrast.py", "filter_cache.py")


def _warm_key() -> str:
    """Changes whenever a cached kernel could change: library versions or our kernels' sources.

    Read from package metadata and source files, without importing numba or librosa: with a warm
    cache, checking the marker is all :func:`warm_numba_cache` does (milliseconds).
    """
    from importlib.metadata import version

    libraries = "|".join(version(name) for name in ("numba", "librosa", "numpy", "llvmlite"))
    h = hashlib.sha256(f"{sys.version}|{libraries}".encode())
    here = Path(__file__).resolve().parent
    for name in _EXTRACTOR_SOURCES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def _run_extractor() -> None:
    import numpy as np

    from music_classifier.features.librosa_extractor import extract_librosa_features, extract_segment_features

    sr = 22050
    t = np.arange(sr * 4, dtype=np.float32) / sr
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 660 * t)).astype(np.float32)
    extract_librosa_features(y=tone, sr=sr)
    extract_segment_features(y=tone, sr=sr, segment_s=3.0)


class _Lock:
    """An exclusive ``flock`` on a file (released when the process dies, so never stale)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> _Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # Windows: no flock; one process per machine there anyway
            return self
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def warm_numba_cache() -> bool:
    """Make sure every numba function the librosa extractor uses is in the on-disk cache.

    A marker for these library versions and sources is checked first: when present, nothing is
    imported or compiled (milliseconds). Otherwise the first process compiles, by running the
    extractor while holding the cache directory's lock, and leaves the marker; others wait for it
    and return. Returns True when this process wrote the cache, False when it was warm.
    """
    cache = ensure_cache_dir()
    marker = cache / f".warm-{_warm_key()}"
    if marker.exists():
        # Warm: nothing to do here. Whoever runs the extractor loads its kernels from the cache on
        # first use, and reading needs no lock.
        return False
    with _Lock(cache / LOCK_NAME):
        if marker.exists():  # another process warmed it while we waited
            return False
        log.info("compiling the extractor's numba kernels into %s (once per version)", cache)
        _run_extractor()
        marker.write_text(f"pid {os.getpid()}\n", encoding="ascii")
        return True
