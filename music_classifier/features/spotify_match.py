"""How a (artist, title) pair is matched to a Spotify track: one rule for search and for datasets.

Both sides go through the ingest key normalisation (case, accents, "feat." credits, "The ",
"(Remastered 2011)" and "- Remastered" suffixes, punctuation; case-folded text for other scripts,
which that normalisation empties), then rapidfuzz's normalised Indel similarity
(``fuzz.ratio`` / 100) compares them.

The score of a candidate is the *weaker* of its title and artist similarities: a perfect artist
must not carry a wrong title (same artist, other song), nor a perfect title a wrong artist (a
cover). A candidate credited to several artists ("A, B" from search results, "A;B" in datasets)
matches on its whole credit or on any one of them, so "Queen" finds "Queen, David Bowie".

Pure: no database, no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

from rapidfuzz import fuzz

from music_classifier.ingest.keys import fold, normalise_artist, normalise_title

# Why 0.85: one wrong letter in a 7-letter name ("Nirvanna") scores 0.93 and a trailing " Live"
# on a title 0.90, so honest spelling variants pass; the same artist's other song ("Hey Jude" vs
# "Hey Bulldog", 0.63) and a cover by someone else ("Leonard Cohen" vs "Jeff Buckley", 0.32) fail
# by a wide margin. tests/test_spotify.py pins each of these cases.
MATCH_THRESHOLD = 0.85

_CREDIT_SPLIT = re.compile(r"\s*[,;]\s*")
T = TypeVar("T")


def _folded(text: str) -> str:
    return " ".join(fold(text).split())


def norm_artist(artist: str) -> str:
    """The ingest key normalisation; for names in other scripts (which it reduces to nothing, keeping
    only a-z and digits) the case-folded text, so "オメガトライブ" still matches itself."""
    return normalise_artist(artist) or _folded(artist)


def norm_title(title: str) -> str:
    return normalise_title(title) or _folded(title)


def artist_variants(credit: str) -> list[str]:
    """The normalised spellings a candidate's artist credit may match: whole credit, then each artist."""
    variants = [norm_artist(credit)]
    parts = _CREDIT_SPLIT.split(credit)
    if len(parts) > 1:
        variants.extend(norm_artist(p) for p in parts)
    return [v for v in dict.fromkeys(variants) if v]


def similarity(a: str, b: str) -> float:
    """0..1 similarity of two already-normalised strings; empty strings match nothing."""
    if not a or not b:
        return 0.0
    return fuzz.ratio(a, b) / 100.0


def artist_similarity(artist: str, cand_artist: str) -> float:
    norm = norm_artist(artist)
    return max((similarity(norm, v) for v in artist_variants(cand_artist)), default=0.0)


def title_similarity(title: str, cand_title: str) -> float:
    return similarity(norm_title(title), norm_title(cand_title))


def match_score(artist: str, title: str, cand_artist: str, cand_title: str) -> float:
    """How well a candidate (artist credit, title) matches ours, 0..1: the weaker of the two similarities."""
    return min(title_similarity(title, cand_title), artist_similarity(artist, cand_artist))


def best_candidate(artist: str, title: str, candidates: Iterable[tuple[T, str, str]]) -> tuple[T, float] | None:
    """The best (key, score) among (key, cand_artist, cand_title) candidates, or None when there are none.

    The score may be below :data:`MATCH_THRESHOLD`: the caller decides, and can report how close the
    best one came. Ties keep the first candidate (search results come in Spotify's relevance order).
    """
    best: tuple[T, float] | None = None
    for key, cand_artist, cand_title in candidates:
        score = match_score(artist, title, cand_artist, cand_title)
        if best is None or score > best[1]:
            best = (key, score)
    return best
