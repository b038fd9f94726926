"""Guessing artist and title from a file's path, in the shapes a class's files come in.

One small function per rule, each tested alone (tests/test_file_names.py):

- ``strip_decorations``: "(Official Video)", "[HQ]", "(Lyrics)", a bracketed YouTube id, "feat. X";
- ``strip_track_number``: "03 - ", "03. ", "03_", "Track 03 - ", "1-03 ";
- ``split_artist_title``: "Artist - Title" (also "Artist_-_Title", en/em dashes), and for a name
  without a spaced dash, every split of "Artist_Title" at one underscore (several splits are several
  guesses; the matcher only takes one that fits a track clearly better than the others);
- ``folder_artists``: the artist a folder names ("Artist/", "Artist - Album/", "Artist/Album/").

``name_guesses`` combines them into the (artist, title) guesses of one file. Guessing is generous on
purpose; deciding is not: a guess only matches a track through the thresholds and margins of
``track_matching``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from music_classifier.text_safety import clean_text

_DECORATION_WORDS = (
    r"official(?:\s+(?:music|lyrics?|hd|4k))?(?:\s+(?:video|audio|visuali[sz]er|clip))?|"
    r"(?:music|lyrics?|hd|4k)\s+video|video\s*clip|clip\s+officiel|audio|lyrics?|hq|hd|4k|high\s+quality|"
    r"visuali[sz]er|explicit|clean|dirty|full\s+(?:song|album)|m/?v|remaster(?:ed)?(?:\s+\d{4})?|"
    r"\d{4}\s+remaster(?:ed)?|with\s+lyrics|free\s+download|out\s+now|premiere|audio\s+only"
)
# A bracketed group whose whole content is decoration ("(Official Music Video)", "[HQ]", "[Lyrics]").
_BRACKETED = re.compile(rf"\s*[\(\[\{{]\s*(?:{_DECORATION_WORDS})(?:\s*[/,&]\s*(?:{_DECORATION_WORDS}))*\s*[\)\]\}}]",
                        re.IGNORECASE)
# A trailing " - Official Video" style part (no brackets).
_TRAILING = re.compile(rf"\s+[-\u2013\u2014|]\s+(?:{_DECORATION_WORDS})\s*$", re.IGNORECASE)
# youtube-dl / yt-dlp file names end in the video id: "Title [dQw4w9WgXcQ]".
_VIDEO_ID = re.compile(r"\s*\[[A-Za-z0-9_-]{11}\]\s*$")
_FEAT = re.compile(r"\s*[\(\[]?\s*\b(?:feat\.?|ft\.?|featuring)\s+[^\)\]\-\u2013\u2014]*[\)\]]?", re.IGNORECASE)
_TRACK_NUMBER = re.compile(
    r"^(?:(?:track|piste|pista)\s*)?(?:\d{1,2}\s*[-.]\s*)?\d{1,3}(?:\s*[.)]\s*|\s+[-\u2013\u2014]\s+|\s*_+\s*|\s+)",
    re.IGNORECASE,
)
_SPACED_DASH = re.compile(r"\s+[-\u2013\u2014]\s+")
_MAX_UNDERSCORE_PARTS = 6  # beyond this, "a_b_c_d_e_f_g" is a sentence, not Artist_Title


@dataclass(frozen=True)
class NameGuess:
    """One reading of a file's path as (artist, title); ``shape`` says which rule produced it."""

    artist: str
    title: str
    shape: str  # "artist - title" | "underscore" | "folder artist"


def _squash(text: str) -> str:
    return " ".join(text.split())


def strip_decorations(text: str) -> str:
    """Remove video/quality decorations and "feat. X" parts: "Song (Official Video) [HQ]" -> "Song"."""
    previous = None
    while previous != text:  # decorations come stacked: "(Official Video) [HD] [abcdefghijk]"
        previous = text
        text = _VIDEO_ID.sub("", text)
        text = _BRACKETED.sub("", text)
        text = _TRAILING.sub("", text)
    text = _FEAT.sub(" ", text)
    text = re.sub(r"[\(\[\{]\s*[\)\]\}]", " ", text)  # brackets emptied by the removals above
    return _squash(text).strip(" -_.")


def strip_track_number(text: str) -> str:
    """Remove a leading track number: "03 - Title", "03. Title", "03_Title", "1-03 Title", "Track 3 Title".

    Returns ``text`` unchanged when nothing would remain (a title that is only a number).
    """
    stripped = _TRACK_NUMBER.sub("", text, count=1).strip(" -_.")
    return stripped or text


def split_artist_title(stem: str) -> list[tuple[str, str]]:
    """Every plausible (artist, title) split of a file stem, most likely first; [] when there is none.

    "Artist - Title" (first spaced dash; with three parts also first + last, for "Artist - Album -
    Title"), "Artist_-_Title", else each split of "Artist_Title" at one underscore.
    """
    if " " not in stem and "_" in stem:
        spaced = stem.replace("_", " ")
        if _SPACED_DASH.search(spaced):
            stem = spaced
    stem = _squash(stem)
    parts = [p.strip() for p in _SPACED_DASH.split(stem)]
    if len(parts) >= 2 and all(parts):
        splits = [(parts[0], " - ".join(parts[1:]))]
        if len(parts) == 3:
            splits.append((parts[0], parts[2]))
        return splits
    words = [w for w in stem.split("_") if w.strip()]
    if 2 <= len(words) <= _MAX_UNDERSCORE_PARTS:
        return [(_squash(" ".join(words[:i])), _squash(" ".join(words[i:]))) for i in range(1, len(words))]
    return []


def folder_artists(rel: str) -> list[str]:
    """Artists the folders above a file may name: "Artist/", "Artist - Album/", and "Artist/Album/"."""
    folders = [clean_text(f) for f in PurePosixPath(rel).parts[:-1][-2:]]
    artists: list[str] = []
    for folder in reversed(folders):  # nearest first
        name = _squash(folder.replace("_", " "))
        dash = _SPACED_DASH.split(name, maxsplit=1)
        candidate = dash[0] if len(dash) == 2 else name
        candidate = strip_decorations(candidate)
        if candidate and candidate not in artists:
            artists.append(candidate)
    return artists


def _has_spaced_dash(text: str) -> bool:
    return bool(_SPACED_DASH.search(_squash(text.replace("_", " ") if " " not in text else text)))


def stem_variants(rel: str) -> list[str]:
    """The file's stem without decorations, then also without a leading track number.

    Control characters in the name are dropped here (text_safety): every artist and title read from
    a path goes through this function or :func:`folder_artists`; the path itself stays as it is.
    """
    stem = strip_decorations(clean_text(PurePosixPath(rel).stem))
    return list(dict.fromkeys((stem, strip_track_number(stem))))


def name_guesses(rel: str) -> list[NameGuess]:
    """Every (artist, title) reading of a library path, file-name splits first, folder artists last.

    >>> [(g.artist, g.title) for g in name_guesses("Queen/03 - Innuendo (Official Video).mp3")]
    [('Queen', 'Innuendo')]
    """
    guesses: list[NameGuess] = []

    def add(artist: str, title: str, shape: str) -> None:
        artist, title = strip_decorations(artist), strip_decorations(title)
        if artist and title and not artist.isdigit() and not any(
                (g.artist, g.title) == (artist, title) for g in guesses):
            guesses.append(NameGuess(artist, title, shape))

    variants = stem_variants(rel)
    for text in variants:
        for artist, title in split_artist_title(text):
            add(artist, title, "artist - title" if _has_spaced_dash(text) else "underscore")
    numbered = len(variants) > 1  # "03 - ...": an album's track, whose folder usually names the artist
    if numbered or not any(g.shape == "artist - title" for g in guesses):
        # "03 - Title" or "03 - Title - Radio Edit" inside "Artist/": the folder names the artist.
        last = variants[-1]
        for artist in folder_artists(rel):
            for title in (last, last.replace("_", " "), _SPACED_DASH.split(last)[0]):
                add(artist, title, "folder artist")
    return guesses


def display_guess(rel: str) -> tuple[str | None, str | None]:
    """The one (artist, title) a file name clearly states ("Artist - Title", "Artist_Title"), or Nones."""
    for text in stem_variants(rel):
        splits = split_artist_title(text)
        if len(splits) == 1 or (splits and _has_spaced_dash(text)):
            artist, title = (strip_decorations(s) for s in splits[0])
            if artist and title and not artist.isdigit():
                return artist, title
    return None, None
