"""The one best-of timer the benchmark scripts share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple


def best(fn: Callable[[], Any], repeat: int) -> float:
    """The shortest of ``repeat`` wall-clock runs of ``fn()``, in seconds (the least disturbed by other work)."""
    return best_of(fn, repeat).wall


class Timing(NamedTuple):
    wall: float  # seconds, perf_counter
    cpu: float  # seconds of this process's CPU time (process_time): what one core spent


def best_of(fn: Callable[[], Any], repeat: int) -> Timing:
    """The shortest wall-clock time and the shortest CPU time of ``repeat`` runs of ``fn()``.

    On a shared machine wall clock includes waiting for a core; CPU time does not, so both are kept.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return Timing(min(walls), min(cpus))


def best_of_interleaved(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, Timing]:
    """:func:`best_of` for several functions run in turn, ``repeat`` rounds: each sees the same spells of load
    from other work on a shared machine, so their ratio is fair in wall clock too."""
    walls: dict[str, list[float]] = {name: [] for name in fns}
    cpus: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            cpus[name].append(time.process_time() - cpu)
            walls[name].append(time.perf_counter() - wall)
    return {name: Timing(min(walls[name]), min(cpus[name])) for name in fns}
