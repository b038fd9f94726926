"""One core per track for the extractor benchmarks; call :func:`one_thread_pools` before numpy loads."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_thread_pools(*extra: str) -> tuple[str, ...]:
    """Limit the BLAS/OpenMP pools (and the ``extra`` variables' pools) to one thread, and point numba at the
    repository's on-disk cache, unless the environment already says otherwise; returns the thread variables.

    On a shared, loaded machine idle pool threads spin and inflate what is measured, ours and the reference
    alike; the pools read these variables once, when numpy (or TensorFlow) loads, hence before.
    """
    os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba-cache"))
    names = (*THREAD_VARS, *extra)
    for name in names:
        os.environ.setdefault(name, "1")
    return names
