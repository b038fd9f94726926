"""CSV injection: text a spreadsheet would run as a formula gets a leading ' (music_classifier.csv_safety)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from music_classifier.csv_safety import neutralise_cell, neutralise_row

ATTACKS = ["=cmd|' /C calc'!A0", "=IMPORTXML(\"http://evil.example/\", \"//a\")", "@HYPERLINK(\"http://x\")",
           "+SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "=", "-", "+1+cmd|x"]


@pytest.mark.parametrize("text", ATTACKS)
def test_formula_text_gets_a_quote(text):
    assert neutralise_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["Queen", "AC/DC", " =not at the start", "'=already quoted", "", "Rock - Pop",
                                   "-3", "-0.25", "+1e-5", "-.5", -3, -0.25, Decimal("-1.5"), 0, None, True])
def test_everything_else_is_unchanged(value):
    assert neutralise_cell(value) is value


def test_numbers_stay_numbers_in_a_row():
    assert neutralise_row(["=1+1", -3, -2.5, "-x", None]) == ["'=1+1", -3, -2.5, "'-x", None]
