"""Scoring how well a file's (artist, title) guesses fit stored tracks, and picking a clear winner.

Fuzzy matching scores artist and title SEPARATELY (rapidfuzz, 0..100) and takes the lower of the
two: artist by token_sort_ratio (word order varies: "Cash, Johnny"), title by plain ratio. Why
separately: on one joined "artist title" string a long shared artist name carries a different song
over the line ("Michael Jackson - Beat It" vs "Michael Jackson - Bad" scores 86 joined, 40 here).

Two rules decide, and both err towards a miss (a miss is reported with its fix; a wrong match
silently mislabels training data):

- ``FUZZY_THRESHOLD`` (85): one-letter typos score above it ("yesterdy"/"yesterday" 94, "bohemian
  rapsody" 97, "elvis presly" 96, "billy jean"/"billie jean" 86); a different song by the same artist
  with a similar title stays below ("let it be"/"let it go" 78, "hello"/"hallo" 80 -- short titles get
  no typo tolerance, on purpose).
- ``FUZZY_MARGIN`` (5): the best track must beat the runner-up (another song) by this many points,
  and no other file may fit that track within the same margin. Two near-equal readings are a guess,
  not a match.

"The", "feat. X", accents and "(Remastered)" are removed by the key normalisation before scoring.
tests/test_audio_scan.py pins these pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from music_classifier.ingest.keys import normalise_artist, normalise_title

FUZZY_THRESHOLD = 85.0
FUZZY_MARGIN = 5.0
# Candidates a report offers for a miss are ranked by a looser closeness (word-set overlap, artist and
# title averaged: "J.S. Bach - Air" is close to "Johann Sebastian Bach - Air on the G String") and shown
# with their strict score; below CANDIDATE_FLOOR closeness they are noise and not shown.
CANDIDATE_FLOOR = 50.0
CANDIDATES_SHOWN = 3
# --add-unmatched / --genre-from-folder do not register a file this close to a stored track (it is
# probably that song under another name: a second track would duplicate it); the report says so.
HOLD_CLOSENESS = 90.0


@dataclass(frozen=True)
class Reading:
    """One normalised (artist, title) reading of a file: from its tags or one file-name shape."""

    how: str  # tags | filename
    artist_norm: str
    title_norm: str


def reading(how: str, artist: str, title: str) -> Reading:
    return Reading(how, normalise_artist(artist), normalise_title(title))


def pair_score(artist_a: str, title_a: str, artist_b: str, title_b: str) -> float:
    """Score of two already normalised songs: the lower of the artist and the title similarity."""
    from rapidfuzz import fuzz

    return float(min(fuzz.ratio(title_a, title_b), fuzz.token_sort_ratio(artist_a, artist_b)))


def fuzzy_score(artist_a: str, title_a: str, artist_b: str, title_b: str) -> float:
    """The score the scan's fuzzy step gives two songs as written (compare with ``FUZZY_THRESHOLD``)."""
    return pair_score(normalise_artist(artist_a), normalise_title(title_a),
                      normalise_artist(artist_b), normalise_title(title_b))


def _best_reading_scores(readings: Sequence[Sequence[Reading]], songs: Sequence[tuple[str, str]], *,
                         title_scorer: Any, artist_scorer: Any, combine: Any) -> list[list[float]]:
    """``[file][song]``: the best, over a file's readings, of ``combine(title scores, artist scores)``;
    0 for a file without any reading. Every reading is scored against every song in one cdist each."""
    import numpy as np
    from rapidfuzz import process

    if not songs:
        return [[] for _ in readings]
    flat = [(i, r) for i, rs in enumerate(readings) for r in rs]
    scores = np.zeros((len(readings), len(songs)), dtype=np.float32)
    if flat:
        titles = process.cdist([r.title_norm for _, r in flat], [s[1] for s in songs], scorer=title_scorer,
                               dtype=np.float32)
        artists = process.cdist([r.artist_norm for _, r in flat], [s[0] for s in songs], scorer=artist_scorer,
                                dtype=np.float32)
        per_reading = combine(titles, artists)
        for row, (i, _) in enumerate(flat):
            np.maximum(scores[i], per_reading[row], out=scores[i])
    return scores.tolist()


def score_matrix(readings: Sequence[Sequence[Reading]], songs: Sequence[tuple[str, str]]) -> list[list[float]]:
    """Scores of each file (its best reading) against each normalised (artist, title) song: the lower of
    the title's and the artist's similarity, so both must agree.

    ``readings[i]`` are file i's readings; the result is ``[file][song]``, 0 for a file without any.
    """
    import numpy as np
    from rapidfuzz import fuzz

    return _best_reading_scores(readings, songs, title_scorer=fuzz.ratio, artist_scorer=fuzz.token_sort_ratio,
                                combine=np.minimum)


def closeness_matrix(readings: Sequence[Sequence[Reading]], songs: Sequence[tuple[str, str]]) -> list[list[float]]:
    """Like ``score_matrix``, with the loose closeness that ranks a report's candidates (never matches):
    the mean of token-set similarities."""
    from rapidfuzz import fuzz

    return _best_reading_scores(readings, songs, title_scorer=fuzz.token_set_ratio,
                                artist_scorer=fuzz.token_set_ratio, combine=lambda t, a: (t + a) / 2)


def clear_winner(scored: Sequence[tuple[float, str, int]], *, threshold: float = FUZZY_THRESHOLD,
                 margin: float = FUZZY_MARGIN) -> tuple[int | None, str]:
    """The index a list of (score, song key, index) clearly points to, or None and why not.

    Clear: the best scores at least ``threshold`` and every entry of another song key scores at
    least ``margin`` less. Entries of the same key (one song stored twice) do not compete.
    """
    if not scored:
        return None, "no matching track"
    ranked = sorted(scored, key=lambda s: (-s[0], s[2]))
    best_score, best_key, best_index = ranked[0]
    if best_score < threshold:
        return None, "no matching track"
    rival = next((s for s in ranked[1:] if s[1] != best_key), None)
    if rival is not None and best_score - rival[0] < margin:
        return None, f"ambiguous: fits two songs almost equally ({best_score:.0f} vs {rival[0]:.0f})"
    return best_index, ""
