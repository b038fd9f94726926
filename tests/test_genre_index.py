"""The near-key index gives exactly the keys a full comparison gives, without comparing every pair."""

import random
import string

import numpy as np
import pytest
from rapidfuzz import process
from rapidfuzz.distance import OSA

from music_classifier.ingest.genre_index import NearKeyIndex
from music_classifier.ingest.genres import max_genre_edits, near_misses

ALPHABET = string.ascii_lowercase + string.digits


def _edit(rng: random.Random, key: str) -> str:
    """One random OSA edit: substitution, insertion, deletion or a swap of neighbours."""
    i = rng.randrange(len(key) + 1)
    kind = rng.choice("sidt")
    if kind == "s" and i < len(key):
        return key[:i] + rng.choice(ALPHABET) + key[i + 1:]
    if kind == "d" and i < len(key) and len(key) > 1:
        return key[:i] + key[i + 1:]
    if kind == "t" and i + 1 < len(key):
        return key[:i] + key[i + 1] + key[i] + key[i + 2:]
    return key[:i] + rng.choice(ALPHABET) + key[i:]


def _keys_with_typos(seed: int, n: int) -> list[str]:
    """Random keys of 1-30 characters, half of them one or two edits away from another key."""
    rng = random.Random(seed)
    keys = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30))) for _ in range(n // 2)]
    for _ in range(n - len(keys)):
        key = rng.choice(keys)
        for _ in range(rng.randint(1, 2)):
            key = _edit(rng, key)
        keys.append(key)
    return list(dict.fromkeys(keys))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_index_finds_exactly_the_keys_a_full_comparison_finds(seed):
    keys = _keys_with_typos(seed, 1500)
    index = NearKeyIndex(keys)
    distances = process.cdist(keys, keys, scorer=OSA.distance, score_cutoff=2, dtype=np.int32)
    for edits in (0, 1, 2):
        for row, key in enumerate(keys):
            expected = {(int(col), int(distances[row, col])) for col in np.flatnonzero(distances[row] <= edits)}
            assert set(index.within(key, edits)) == expected, (key, edits)


def test_index_work_grows_linearly_with_the_number_of_distinct_keys():
    # The attack: tens of thousands of distinct genres. A full comparison makes n * n comparisons; the
    # index verifies a bounded number of candidates per key, so doubling n about doubles the work.
    work = {}
    for n in (4000, 16000):
        rng = random.Random(n)
        keys = list({"".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 20))) for _ in range(n)})
        index = NearKeyIndex(keys)
        for key in keys:
            index.within(key, max_genre_edits(key))
        work[n] = index.verified / len(keys)
    assert work[16000] < 2.5 * work[4000]  # per key: constant, not 4x (what a quadratic pass would do)
    assert work[16000] < 0.02 * 16000  # and far from comparing every pair


def test_near_misses_of_many_new_genres_match_a_full_comparison(sqlite_engine):
    # near_misses on 3,000 new spellings (typos among them) gives what the pairwise pass gave.
    from music_classifier.ingest.genres import _SHORT_KEY, DISTINCT_GENRES, display_name

    rng = random.Random(7)
    words = _keys_with_typos(7, 3000)
    counts = {word: rng.randint(1, 5) for word in words}
    with sqlite_engine.connect() as conn:
        found = near_misses(conn, counts)
    keys = list(counts)
    expected = {}
    for key in keys:
        if key in DISTINCT_GENRES:
            continue
        best = None
        for other, distance, _ in process.extract(key, keys, scorer=OSA.distance,
                                                  score_cutoff=max_genre_edits(key), limit=None):
            if other == key or not (counts[other] > counts[key] or other in DISTINCT_GENRES):
                continue
            if min(len(key), len(other)) < _SHORT_KEY and other[:1] != key[:1]:
                continue
            if best is None or (distance, display_name(other)) < best:
                best = (distance, display_name(other))
        if best is not None:
            expected[key] = (best[1], best[0])
    assert {k: (m.existing, m.distance) for k, m in found.items()} == expected
    assert len(expected) > 100  # the batch really has typos to find
