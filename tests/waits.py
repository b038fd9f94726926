"""Waiting in tests: for the event itself, with a ceiling that only catches hangs.

A loaded machine (CI, a shared class server, ``python tests/load.py``) can make anything take several times
longer than on an idle one, so no test asserts on elapsed time: it waits for what it expects and gives up
only after :data:`HANG_S`, far beyond any honest run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

HANG_S = 300.0  # seconds; a subprocess or an event that takes longer is stuck, not slow


def wait_until(condition: Callable[[], T], what: str, ceiling_s: float = HANG_S, poll_s: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy and return that; fail naming ``what`` after
    ``ceiling_s``."""
    end = time.monotonic() + ceiling_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"{what}: not seen within {ceiling_s:.0f} s (hung?)")
        time.sleep(poll_s)
