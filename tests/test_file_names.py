"""Reading artist/title from paths (file_names), scoring (match_scoring) and the clear-winner rule, each alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from music_classifier.ingest.file_names import (
    display_guess,
    folder_artists,
    name_guesses,
    split_artist_title,
    strip_decorations,
    strip_track_number,
)
from music_classifier.ingest.match_scoring import FUZZY_MARGIN, clear_winner, reading, score_matrix


@pytest.mark.parametrize(("text", "expected"), [
    ("Get Lucky (Official Video)", "Get Lucky"),
    ("Get Lucky (Official Music Video) [HQ]", "Get Lucky"),
    ("Jolene [Lyrics]", "Jolene"),
    ("Jolene (Lyric Video)", "Jolene"),
    ("One - Official Video", "One"),
    ("Song [dQw4w9WgXcQ]", "Song"),  # yt-dlp's video id
    ("Take Care ft. Rihanna", "Take Care"),
    ("Take Care (feat. Rihanna) (Official Audio)", "Take Care"),
    ("Halo (Remastered 2011)", "Halo"),
    ("Live Forever (Live at Wembley)", "Live Forever (Live at Wembley)"),  # not a decoration: kept
    ("Audio Slave", "Audio Slave"),  # a decoration word outside brackets stays
])
def test_strip_decorations(text, expected):
    assert strip_decorations(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("03 - Yesterday", "Yesterday"),
    ("03. Yesterday", "Yesterday"),
    ("03 Yesterday", "Yesterday"),
    ("03_Yesterday", "Yesterday"),
    ("1-03 Yesterday", "Yesterday"),
    ("Track 03 - Yesterday", "Yesterday"),
    ("1999", "1999"),  # a title that is only a number stays
    ("Yesterday", "Yesterday"),
])
def test_strip_track_number(text, expected):
    assert strip_track_number(text) == expected


@pytest.mark.parametrize(("stem", "expected"), [
    ("Queen - Innuendo", [("Queen", "Innuendo")]),
    ("Queen_-_Innuendo", [("Queen", "Innuendo")]),
    ("Queen \u2013 Innuendo", [("Queen", "Innuendo")]),
    ("Queen - Innuendo - Innuendo", [("Queen", "Innuendo - Innuendo"), ("Queen", "Innuendo")]),
    ("Jay-Z - 99 Problems", [("Jay-Z", "99 Problems")]),  # a hyphen inside a name is not a separator
    ("Pink_Floyd_Money", [("Pink", "Floyd Money"), ("Pink Floyd", "Money")]),  # every split: scoring decides
    ("Adele_Hello", [("Adele", "Hello")]),
    ("noise", []),
    ("a_b_c_d_e_f_g_h", []),  # a sentence, not Artist_Title
])
def test_split_artist_title(stem, expected):
    assert split_artist_title(stem) == expected


def test_folder_artists():
    assert folder_artists("Queen/03 - Innuendo.mp3") == ["Queen"]
    assert folder_artists("Miles Davis - Kind of Blue/04 Blue in Green.flac") == ["Miles Davis"]
    assert folder_artists("jazz/Miles_Davis/Kind of Blue/04.flac") == ["Kind of Blue", "Miles Davis"]
    assert folder_artists("top.mp3") == []


@pytest.mark.parametrize(("rel", "expected"), [
    ("Queen/03 - Innuendo (Official Video).mp3", [("Queen", "Innuendo")]),
    ("Beatles - Abbey Road/07 Here Comes the Sun [HQ].flac", [("Beatles", "Here Comes the Sun")]),
    ("rock/03 - Queen - Bohemian Rapsody.mp3",  # numbered: the folder may be the artist too (scoring decides)
     [("Queen", "Bohemian Rapsody"), ("rock", "Queen - Bohemian Rapsody"), ("rock", "Queen")]),
    ("Leoni Torres/06 - Es Tu Mirada - Remasterizado.flac",
     [("Es Tu Mirada", "Remasterizado"), ("Leoni Torres", "Es Tu Mirada - Remasterizado"),
      ("Leoni Torres", "Es Tu Mirada")]),
    ("rock/Queen - Innuendo.mp3", [("Queen", "Innuendo")]),  # not numbered: the folder is no artist here
    ("Metallica - One - Official Video.mp3", [("Metallica", "One")]),
    ("Daft Punk - Get Lucky ft. Pharrell Williams (Official Audio).mp3", [("Daft Punk", "Get Lucky")]),
    ("10 Years - Wasteland.wav", [("10 Years", "Wasteland"), ("Years", "Wasteland")]),
    ("noise.wav", []),
])
def test_name_guesses(rel, expected):
    assert [(g.artist, g.title) for g in name_guesses(rel)] == expected


def test_display_guess_states_only_what_the_name_clearly_says():
    assert display_guess("rock/03 - Queen - Innuendo.mp3") == ("Queen", "Innuendo")
    assert display_guess("50 Cent - In Da Club.mp3") == ("50 Cent", "In Da Club")
    assert display_guess("Adele_Hello.ogg") == ("Adele", "Hello")
    assert display_guess("Pink_Floyd_Money.ogg") == (None, None)  # two splits: not clear
    assert display_guess("blues/blues.00000.wav") == (None, None)


def test_score_matrix_takes_each_files_best_reading():
    files = [[reading("tags", "Unknown", "Track 1"), reading("filename", "Queen", "Innuendo")], []]
    songs = [("queen", "innuendo"), ("queen", "bohemian rhapsody")]
    scores = score_matrix(files, songs)
    assert scores[0][0] == 100 and scores[0][1] < 60
    assert scores[1] == [0, 0]


def test_clear_winner_needs_threshold_and_margin():
    assert clear_winner([(97.0, "a", 0), (40.0, "b", 1)]) == (0, "")
    assert clear_winner([(80.0, "a", 0)])[0] is None  # below the threshold
    best, reason = clear_winner([(90.0, "a", 0), (90.0 - FUZZY_MARGIN + 1, "b", 1)])
    assert best is None and reason.startswith("ambiguous")
    assert clear_winner([(90.0, "a", 0), (90.0, "a", 1)]) == (0, "")  # one song stored twice does not compete
    assert clear_winner([]) == (None, "no matching track")


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_examples() -> list[tuple[str, str]]:
    text = README.read_text()
    start = text.index("<!-- file-name examples")
    rows = re.findall(r"^\s*\| `([^`]+)` \| (.+?) \|$", text[start:start + 4000], flags=re.M)
    return rows


def test_readme_has_the_file_name_examples():
    assert len(readme_examples()) >= 10


@pytest.mark.parametrize(("rel", "read_as"), readme_examples())
def test_readme_file_name_examples_are_what_the_scan_reads(rel, read_as):
    expected = [] if read_as.startswith("(nothing") else [
        tuple(part.strip() for part in reading.split(" / ")) for reading in read_as.split(";")]
    assert [(g.artist, g.title) for g in name_guesses(rel)] == expected
