"""Find the genre keys within one or two edits of a key without comparing it to every key.

A sheet may bring tens of thousands of distinct genre spellings (a research CSV, or an attack); comparing
each new spelling with every other is quadratic (60,000 spellings took six minutes). This index uses
deletion neighbourhoods (the idea behind SymSpell): two strings ``d`` optimal-string-alignment edits apart
(substitutions, insertions, deletions, swaps of neighbours) can each be turned into one same string by at
most ``d`` deletions, and so can their first ``PREFIX`` characters (an edit that moves the end of the prefix
costs the other side the deletion the first side saved). Every key is filed under the strings that up to
:data:`MAX_EDITS` deletions make of its prefix (at most 37); a probe looks up the strings its own prefix
gives and verifies only the keys filed there, so the work per probe does not grow with the number of keys
unless the keys really are that close to each other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

MAX_EDITS = 2
PREFIX = 8  # long enough that random genres rarely share a neighbourhood, short enough to stay cheap


def deletions(text: str, depth: int) -> set[str]:
    """``text`` and every string up to ``depth`` deletions away from it."""
    found = {text}
    for _ in range(depth):
        found |= {t[:i] + t[i + 1:] for t in found for i in range(len(t))}
    return found


class NearKeyIndex:
    """An index over ``keys`` answering "which keys are within ``d`` edits of this one" (``d <= 2``).

    Parameters
    ----------
    keys : sequence of str
        Normalised genre keys; positions in this sequence are the answers.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self.verified = 0  # candidate comparisons made so far: the measure of work that tests bound
        self._filed: dict[int, list[int]] = defaultdict(list)  # hash of a prefix variant -> key positions
        for position, key in enumerate(self.keys):
            for variant in deletions(key[:PREFIX], MAX_EDITS):
                self._filed[hash(variant)].append(position)

    def within(self, key: str, edits: int) -> list[tuple[int, int]]:
        """(position, distance) of every indexed key within ``edits`` OSA edits of ``key``, itself included.

        Parameters
        ----------
        key : str
            The probe.
        edits : int
            The largest distance wanted, 0 to :data:`MAX_EDITS`.

        Returns
        -------
        list of (int, int)
            Positions in ``keys`` and their distances, in no particular order.
        """
        from rapidfuzz.distance import OSA

        if not 0 <= edits <= MAX_EDITS:
            raise ValueError(f"edits must be 0-{MAX_EDITS}, got {edits}")
        candidates: set[int] = set()
        for variant in deletions(key[:PREFIX], edits):
            candidates.update(self._filed.get(hash(variant), ()))
        found = []
        for position in candidates:
            self.verified += 1
            distance = OSA.distance(key, self.keys[position], score_cutoff=edits)
            if distance <= edits:
                found.append((position, int(distance)))
        return found
