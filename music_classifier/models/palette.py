"""One colour (and marker) per genre for every figure: the PNG plots and the interactive map.

The 12 colours were chosen from the Okabe-Ito and Paul Tol qualitative palettes by greedy max-min
selection of the CIELAB distance (ΔE76) between any two colours, and to the white page, in normal
vision AND as seen with protanopia, deuteranopia and tritanopia (Machado, Oliveira & Fernandes 2009,
severity 1). The first colours are the most distinct, so a class's 6-10 genres get the best ones.
tests/test_palette.py recomputes the distances. Above 12 genres the colours repeat and only the
marker shape tells genres apart, which is why every plot pairs a colour with a marker.
"""

from __future__ import annotations

from collections.abc import Iterable

GENRE_COLOURS: tuple[str, ...] = (
    "#009988",  # teal
    "#E69F00",  # orange
    "#000000",  # black
    "#332288",  # indigo
    "#CC3311",  # red
    "#663333",  # brown
    "#DDCC77",  # sand
    "#66CCEE",  # cyan
    "#AA4499",  # purple
    "#BBBBBB",  # grey
    "#EE7733",  # light orange
    "#EE3377",  # magenta
)
# Marker shapes in matplotlib and Plotly spelling, aligned: shape i is the same figure in both.
MPL_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "*", "h")
PLOTLY_MARKERS: tuple[str, ...] = ("circle", "square", "triangle-up", "diamond", "triangle-down", "cross",
                                   "x", "triangle-left", "triangle-right", "pentagon", "star", "hexagon")
MAX_DISTINCT = len(GENRE_COLOURS)
OTHER_COLOUR = "#4c72b0"  # bars that are not genres (importances)


def genre_order(labels: Iterable[str]) -> list[str]:
    """The genres in palette order: sorted by name, so a genre keeps its colour across figures of
    the same genre set."""
    return sorted({str(v) for v in labels})


def genre_colours(labels: Iterable[str]) -> dict[str, str]:
    """Genre -> hex colour."""
    return {g: GENRE_COLOURS[i % MAX_DISTINCT] for i, g in enumerate(genre_order(labels))}


def genre_markers(labels: Iterable[str], *, plotly: bool = False) -> dict[str, str]:
    """Genre -> marker shape (matplotlib by default, Plotly's names with ``plotly=True``). Past 12
    genres the colours repeat and the shape shifts by one per round, so no two genres share both."""
    shapes = PLOTLY_MARKERS if plotly else MPL_MARKERS
    return {g: shapes[(i + i // MAX_DISTINCT) % len(shapes)] for i, g in enumerate(genre_order(labels))}
