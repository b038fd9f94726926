"""music-classifier: a class's song sheet -> SQL tables -> audio features -> genre classifiers."""

__version__ = "0.1.0"

# Before anything imports numba: its on-disk cache (ours and librosa's kernels) lives in
# NUMBA_CACHE_DIR, defaulting to a project directory (see features/numba_cache.py).
from music_classifier.features.numba_cache import ensure_cache_dir as _ensure_cache_dir  # noqa: E402

_ensure_cache_dir()
