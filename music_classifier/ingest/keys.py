"""Normalised keys: how two spellings of the same song or genre are recognised as one."""

from __future__ import annotations

import re
import unicodedata

_FEAT = re.compile(r"\s*[\(\[]?\b(feat\.?|ft\.?|featuring)\b.*$", re.IGNORECASE)
_BRACKETS = re.compile(r"[\(\[][^\)\]]*(remaster|version|edit|live|mono|stereo)[^\)\]]*[\)\]]", re.IGNORECASE)
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
# Song keys keep letters of every script (a Cyrillic or CJK title must not collapse to ""): after
# fold(), \W drops punctuation and symbols only.
_NON_WORD = re.compile(r"[\W_]+")
KEY_SEPARATOR = "\x1f"


def fold(text: str) -> str:
    """Case-fold and strip accents: "Beyoncé" -> "beyonce"."""
    if text.isascii():  # the common case: nothing to decompose, and lower() equals casefold() on ASCII
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalise_artist(artist: str) -> str:
    s = fold(artist).replace("&", " and ")
    s = _FEAT.sub("", s)
    s = _NON_WORD.sub(" ", s).strip()
    if s.startswith("the "):
        s = s[4:]
    return s


def normalise_title(title: str) -> str:
    s = _BRACKETS.sub("", fold(title))
    s = _FEAT.sub("", s)
    s = re.sub(r"\s+-\s+(\d{4}\s+)?remaster(ed)?.*$", "", s)
    return _NON_WORD.sub(" ", s.replace("&", " and ")).strip()


def track_key(artist: str, title: str) -> str:
    """The identity of a sheet or file track: normalised artist and title."""
    return f"{normalise_artist(artist)}{KEY_SEPARATOR}{normalise_title(title)}"


def genre_key(name: str) -> str:
    """"Hip-Hop", "hip hop", "HIPHOP" and "Hip_Hop" all give "hiphop"."""
    return _NON_ALNUM.sub("", fold(name).replace("&", "and"))
