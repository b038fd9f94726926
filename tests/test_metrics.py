"""The one metrics function: argument order, label order, confusion matrix orientation."""

from __future__ import annotations

import pytest

from music_classifier.models.metrics import classification_metrics


def test_argument_order_is_true_then_pred():
    # Asymmetric: every true "rock" is predicted rock, but rock is also predicted for two jazz tracks.
    y_true = ["rock", "rock", "jazz", "jazz", "jazz", "jazz"]
    y_pred = ["rock", "rock", "rock", "rock", "jazz", "jazz"]
    m = classification_metrics(y_true=y_true, y_pred=y_pred)
    rock, jazz = m["per_genre"]["rock"], m["per_genre"]["jazz"]
    assert rock["recall"] == 1.0 and rock["precision"] == 0.5  # swapped arguments would exchange these
    assert jazz["recall"] == 0.5 and jazz["precision"] == 1.0
    assert rock["support"] == 2 and jazz["support"] == 4  # support counts TRUE labels
    swapped = classification_metrics(y_true=y_pred, y_pred=y_true)
    assert swapped["per_genre"]["rock"]["precision"] == 1.0  # the function really sees the order
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((1.0 + 0.5) / 2)
    f1_rock, f1_jazz = 2 * 0.5 * 1 / 1.5, 2 * 0.5 * 1 / 1.5
    assert m["macro_f1"] == pytest.approx((f1_rock + f1_jazz) / 2)


def test_confusion_rows_are_true_columns_predicted_in_label_order():
    y_true = ["rock", "rock", "jazz", "jazz", "jazz", "jazz"]
    y_pred = ["rock", "rock", "rock", "rock", "jazz", "jazz"]
    m = classification_metrics(y_true=y_true, y_pred=y_pred, labels=["rock", "jazz"])
    assert m["confusion"]["labels"] == ["rock", "jazz"]
    assert m["confusion"]["matrix"] == [[2, 0], [2, 2]]
    assert list(m["per_genre"]) == ["rock", "jazz"]
    m2 = classification_metrics(y_true=y_true, y_pred=y_pred)  # default: sorted
    assert m2["confusion"]["labels"] == ["jazz", "rock"]
    assert m2["confusion"]["matrix"] == [[2, 2], [0, 2]]


def test_positional_arguments_refused_and_lengths_checked():
    with pytest.raises(TypeError):
        classification_metrics(["a"], ["a"])  # type: ignore[misc]
    with pytest.raises(ValueError, match="y_true has 2"):
        classification_metrics(y_true=["a", "b"], y_pred=["a"])


def test_perfect_and_json_ready():
    import json

    m = classification_metrics(y_true=["a", "b", "c"], y_pred=["a", "b", "c"])
    assert m["accuracy"] == m["balanced_accuracy"] == m["macro_f1"] == 1.0
    json.dumps(m)  # plain Python types only
