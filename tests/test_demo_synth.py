"""The demo's synthetic music and library: reproducible, well-formed, separable by style, and a sheet with flaws."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from music_classifier.demo.library import GENRES, SHEET_COLUMNS, generate_demo_library
from music_classifier.demo.synth import SR, STYLES, render_track
from music_classifier.ingest.keys import genre_key

RENDERERS = sorted(STYLES)


def test_at_least_six_styles_each_with_a_renderer():
    assert len(STYLES) >= 6
    assert set(GENRES) == set(STYLES)


@pytest.mark.parametrize("style", RENDERERS)
def test_renderer_output_is_finite_in_range_and_exactly_as_long_as_asked(style):
    rng = np.random.default_rng(1)
    y = STYLES[style].render(rng=rng, sr=SR, duration_s=2.37, tempo_bpm=np.mean(STYLES[style].tempo_range),
                             key_hz=146.8)
    assert y.dtype == np.float32
    assert y.shape == (round(2.37 * SR),)
    assert np.isfinite(y).all()
    assert np.abs(y).max() <= 1.0
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2)) > 0.01  # not silence


@pytest.mark.parametrize("style", RENDERERS)
def test_same_seed_gives_identical_audio_and_another_seed_does_not(style):
    a, pa = render_track(style, rng=np.random.default_rng(7), duration_range_s=(1.5, 2.5))
    b, pb = render_track(style, rng=np.random.default_rng(7), duration_range_s=(1.5, 2.5))
    c, pc = render_track(style, rng=np.random.default_rng(8), duration_range_s=(1.5, 2.5))
    assert pa == pb
    np.testing.assert_array_equal(a, b)
    assert pa != pc or not np.array_equal(a, c)


def test_tracks_vary_tempo_key_and_length_within_the_style():
    params = [render_track("electronic", rng=np.random.default_rng(s), duration_range_s=(1.0, 2.0))[1]
              for s in range(6)]
    lo, hi = STYLES["electronic"].tempo_range
    assert all(lo <= p.tempo_bpm <= hi and 1.0 <= p.duration_s <= 2.0 for p in params)
    assert len({p.tempo_bpm for p in params}) > 3
    assert len({p.key_hz for p in params}) > 1
    assert len({p.duration_s for p in params}) > 3


def _simple_features(y: np.ndarray) -> list[float]:
    import librosa

    return [
        float(librosa.feature.spectral_centroid(y=y, sr=SR).mean()),
        float(librosa.feature.zero_crossing_rate(y).mean()),
        float(librosa.feature.rms(y=y).mean()),
        *librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13).mean(axis=1).tolist(),
    ]


def test_styles_are_separable_by_simple_gtzan_style_features():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    features, labels = [], []
    for k, style in enumerate(RENDERERS):
        for i in range(8):
            y, _ = render_track(style, rng=np.random.default_rng([99, k, i]), duration_range_s=(2.0, 3.0))
            features.append(_simple_features(y))
            labels.append(style)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=0)
    scores = cross_val_score(RandomForestClassifier(n_estimators=100, random_state=0), np.array(features),
                             labels, cv=folds)
    chance = 1 / len(RENDERERS)
    assert scores.mean() > 0.8, f"cross-validated accuracy {scores.mean():.2f} (chance {chance:.2f})"


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return generate_demo_library(out, tracks_per_genre=3, seed=0, duration_range_s=(1.5, 2.5),
                                 show_progress=False)


def _sheet(lib) -> tuple[list[str], list[dict[str, str]]]:
    with lib.sheet_csv.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_library_writes_readable_mp3_and_flac_with_the_rendered_duration(small_library):
    lib = small_library
    files = [t.path for t in lib.tracks + lib.extra_tracks]
    assert {p.suffix for p in files} == {".mp3", ".flac"}
    assert sorted(p.name for p in lib.audio_dir.iterdir()) == sorted(t.path.name for t in lib.tracks)
    for t in lib.tracks + lib.extra_tracks:
        info = sf.info(t.path)
        assert info.format == ("MP3" if t.path.suffix == ".mp3" else "FLAC")
        assert info.samplerate == SR and info.channels == 1
        assert info.duration == pytest.approx(t.params.duration_s, abs=0.05)
        assert t.path.stem == f"{t.artist} - {t.title}"
    flac = next(t for t in lib.tracks if t.path.suffix == ".flac")
    assert sf.info(flac.path).subtype == "PCM_16"


def test_library_is_deterministic_in_the_seed(small_library, tmp_path):
    again = generate_demo_library(tmp_path, tracks_per_genre=3, seed=0, duration_range_s=(1.5, 2.5),
                                  show_progress=False)
    assert [t.song for t in again.tracks] == [t.song for t in small_library.tracks]
    assert again.sheet_csv.read_bytes() == small_library.sheet_csv.read_bytes()
    first = next(t for t in small_library.tracks if t.path.suffix == ".flac")
    np.testing.assert_array_equal(sf.read(first.path)[0], sf.read(tmp_path / "audio" / first.path.name)[0])


def test_sheet_has_the_seed_columns_unequal_counts_and_spelling_variants(small_library):
    lib = small_library
    header, rows = _sheet(lib)
    assert header == list(SHEET_COLUMNS)
    assert lib.sheet_rows == len(rows)
    good = [r for r in rows if " - " in r["song"] and r["coarse_genre"].strip()]
    display = {genre_key(g): g for g in GENRES.values()}
    per_genre = Counter()
    for song in {r["song"]: r for r in good}.values():
        per_genre[display[genre_key(song["coarse_genre"])]] += 1
    assert dict(per_genre) == lib.counts
    assert set(lib.counts) == set(GENRES.values())
    assert len(set(lib.counts.values())) > 1
    assert min(lib.counts, key=lib.counts.get) == lib.thinnest_genre
    assert sorted(lib.counts.values()).count(lib.counts[lib.thinnest_genre]) == 1
    spellings = {r["coarse_genre"] for r in good}
    assert {"Hip-Hop", "Hip_Hop", "hip hop", "Electronic", "electronic"} <= spellings
    assert any(r["genre1"] in {"Techno", "House", "Thrash Metal", "Bebop"} for r in good)


def test_sheet_has_one_song_proposed_by_two_students_and_the_bad_rows(small_library):
    lib = small_library
    _, rows = _sheet(lib)
    by_song = Counter(r["song"] for r in rows if r["song"])
    assert [s for s, n in by_song.items() if n > 1] == [lib.duplicate_song]
    proposers = {r["student"] for r in rows if r["song"] == lib.duplicate_song}
    assert len(proposers) == 2
    empty_song = [r for r in rows if not r["song"].strip()]
    no_separator = [r for r in rows if r["song"].strip() and " - " not in r["song"]]
    blank_genre = [r for r in rows if " - " in r["song"] and not r["coarse_genre"].strip()]
    assert (len(empty_song), len(no_separator), len(blank_genre)) == (1, 1, 1)
    assert lib.bad_rows == 3
    # Every good row's song has exactly one audio file; the bad rows have none.
    files = {p.stem for p in lib.audio_dir.iterdir()}
    assert {r["song"] for r in rows if " - " in r["song"] and r["coarse_genre"].strip()} == files


def test_extra_files_supplement_the_thinnest_genre_and_are_not_in_the_sheet(small_library):
    lib = small_library
    _, rows = _sheet(lib)
    assert lib.extra_dir == lib.root / "extra" / lib.thinnest_genre
    extras = sorted(p.stem for p in Path(lib.extra_dir).iterdir())
    assert extras and len(extras) == len(lib.extra_tracks)
    assert not set(extras) & {r["song"] for r in rows}
    assert lib.counts[lib.thinnest_genre] + len(extras) >= 3
    assert {t.genre for t in lib.extra_tracks} == {lib.thinnest_genre}


def test_zero_tracks_per_genre_is_refused_with_a_clear_error(tmp_path):
    from music_classifier.errors import InputError

    with pytest.raises(InputError, match="tracks-per-genre"):
        generate_demo_library(tmp_path, tracks_per_genre=0)
    assert not any(tmp_path.iterdir())


def test_no_extra_file_is_close_enough_for_the_scans_fuzzy_step_to_match_a_sheet_track(small_library):
    """The extras must come out of `audio scan` unmatched, or the thinnest genre could not be supplemented."""
    from music_classifier.ingest.audio_scan import FUZZY_THRESHOLD, fuzzy_score

    lib = small_library
    for extra in lib.extra_tracks:
        scores = [fuzzy_score(extra.artist, extra.title, t.artist, t.title) for t in lib.tracks]
        assert max(scores) < FUZZY_THRESHOLD, extra.song
