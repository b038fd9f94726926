"""The assignment rules of track_matching alone (no database, no audio): exact before fuzzy, margins, ambiguity."""

from __future__ import annotations

from pathlib import Path

from music_classifier.ingest.audio_files import ScannedFile
from music_classifier.ingest.file_names import display_guess, name_guesses
from music_classifier.ingest.keys import normalise_artist, normalise_title, track_key
from music_classifier.ingest.track_matching import StoredTrack, TrackMatcher


def stored(track_id: int, artist: str, title: str) -> StoredTrack:
    t = StoredTrack(track_id, artist, title, None, None, None, None, None, False)
    t.key, t.artist_norm, t.title_norm = track_key(artist, title), normalise_artist(artist), normalise_title(title)
    return t


def scanned(rel: str, tags: tuple[str, str] | None = None) -> ScannedFile:
    f = ScannedFile(rel=rel, abs_path=Path("/nowhere") / rel, size=0)
    f.tag_artist, f.tag_title = tags or (None, None)
    f.name_artist, f.name_title = display_guess(rel)
    f.guesses = name_guesses(rel)
    return f


def assign(tmp_path, tracks: list[StoredTrack], files: list[ScannedFile]) -> tuple[dict[str, int], dict[str, str]]:
    """What the scan does: exact rules file by file, then fuzzy over the rest. (path -> track id, path -> reason)."""
    matcher = TrackMatcher(tmp_path, tracks)
    matched, reasons, pending = {}, {}, []
    for f in files:
        found, reason = matcher.match_exact(f)
        if found is not None:
            matched[f.rel] = found.track_id
        elif reason:
            reasons[f.rel] = reason
        else:
            pending.append(f)
    fuzzy = matcher.match_fuzzy(pending)
    matched.update({f.rel: m.track_id for f, m in fuzzy.matched})
    reasons.update(fuzzy.refused)
    return matched, reasons


def test_an_exact_match_wins_over_an_earlier_fuzzy_one(tmp_path):
    files = [scanned("a/Queen - Bohemian Rapsody.mp3"), scanned("b/Queen - Bohemian Rhapsody.mp3")]
    matched, reasons = assign(tmp_path, [stored(1, "Queen", "Bohemian Rhapsody")], files)
    assert matched == {"b/Queen - Bohemian Rhapsody.mp3": 1}
    assert reasons == {"a/Queen - Bohemian Rapsody.mp3": "no matching track"}


def test_tags_win_over_the_file_name(tmp_path):
    tracks = [stored(1, "Queen", "Innuendo"), stored(2, "Adele", "Hello")]
    matched, _ = assign(tmp_path, tracks, [scanned("Adele - Hello.mp3", tags=("Queen", "Innuendo"))])
    assert matched == {"Adele - Hello.mp3": 1}


def test_two_files_fitting_one_track_equally_get_neither(tmp_path):
    files = [scanned("a/Queen - Bohemian Rapsody.mp3"), scanned("b/Queen - Bohemian Rhapsdy.mp3")]
    matched, reasons = assign(tmp_path, [stored(1, "Queen", "Bohemian Rhapsody")], files)
    assert matched == {}
    assert all(r.startswith("ambiguous: another file fits track #1") for r in reasons.values()) and len(reasons) == 2


def test_a_file_fitting_two_songs_almost_equally_gets_neither(tmp_path):
    tracks = [stored(1, "Queen", "Bohemian Rhapsody"), stored(2, "Queen", "Bohemian Rhapsodie")]
    matched, reasons = assign(tmp_path, tracks, [scanned("Queen - Bohemian Rhapsodi.mp3")])
    assert matched == {}
    assert reasons["Queen - Bohemian Rhapsodi.mp3"].startswith("ambiguous: fits two songs almost equally")


def test_artist_title_underscores_split_two_ways_onto_two_tracks_is_ambiguous(tmp_path):
    tracks = [stored(1, "Pink Floyd", "Money"), stored(2, "Pink", "Floyd Money")]
    matched, reasons = assign(tmp_path, tracks, [scanned("Pink_Floyd_Money.flac")])
    assert matched == {}
    assert reasons == {"Pink_Floyd_Money.flac": "ambiguous: the file name fits several tracks (#1, #2)"}
    matched, _ = assign(tmp_path, tracks[:1], [scanned("Pink_Floyd_Money.flac")])
    assert matched == {"Pink_Floyd_Money.flac": 1}  # one split fits: unambiguous


def test_a_second_copy_of_a_matched_song_is_reported_as_such(tmp_path):
    files = [scanned("a/Adele - Hello.mp3"), scanned("b/Adele - Hello (Official Video).mp3")]
    matched, reasons = assign(tmp_path, [stored(1, "Adele", "Hello")], files)
    assert matched == {"a/Adele - Hello.mp3": 1}
    assert reasons == {"b/Adele - Hello (Official Video).mp3": "same song as a/Adele - Hello.mp3 (track #1)"}
