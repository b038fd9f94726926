"""The genre palette stays distinct for up to 12 genres, also for colour-blind readers."""

from __future__ import annotations

import numpy as np
import pytest

from music_classifier.models import palette

# Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB.
CVD = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}
MIN_DELTA_E = 15.0  # CIE76; ~2.3 is a just-noticeable difference, 15+ reads as a different colour at a glance


def _srgb(hexes: list[str]) -> np.ndarray:
    return np.array([[int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)] for h in hexes])


def _linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(linear: np.ndarray) -> np.ndarray:
    xyz = np.clip(linear, 0, 1) @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                                            [0.0193, 0.1192, 0.9505]]).T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def _min_distance(lab: np.ndarray) -> float:
    d = np.linalg.norm(lab[:, None] - lab[None], axis=2)
    np.fill_diagonal(d, np.inf)
    return float(d.min())


@pytest.mark.parametrize("vision", ["normal", *CVD])
def test_twelve_genre_colours_are_distinct_and_visible_on_white(vision):
    lin = _linear(_srgb([*palette.GENRE_COLOURS, "#FFFFFF"]))
    if vision != "normal":
        lin = lin @ np.array(CVD[vision]).T
    lab = _lab(lin)
    assert _min_distance(lab) >= MIN_DELTA_E, vision


def test_gtzan_genres_blues_and_rock_differ_and_colours_are_stable():
    gtzan = ["rock", "blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae"]
    colours = palette.genre_colours(gtzan)
    assert len(set(colours.values())) == 10
    assert colours["blues"] != colours["rock"]
    assert palette.genre_colours(reversed(gtzan)) == colours  # order of appearance does not matter
    assert len(set(palette.genre_markers(gtzan).values())) == 10


def test_beyond_twelve_genres_no_two_share_colour_and_marker():
    names = [f"g{i:02d}" for i in range(40)]
    colours, markers = palette.genre_colours(names), palette.genre_markers(names, plotly=True)
    pairs = {(colours[n], markers[n]) for n in names}
    assert len(pairs) == len(names)
    assert len(palette.PLOTLY_MARKERS) == len(palette.MPL_MARKERS) == palette.MAX_DISTINCT
