"""Minor limits: the longest dataset name the pattern allows works (its view fits the identifier limit);
extreme-amplitude audio is a one-line error in `tags FILE`, `similar FILE` and `predict MODEL FILE`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf
from models_helpers import fill_separable, sqlite_cli
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from music_classifier.errors import InputError
from music_classifier.models.datasets import DatasetDefinition, create_dataset, drop_dataset, validate_name

SR = 22050


def test_the_longest_dataset_name_makes_a_view_on_both_databases(engine):
    name = "a" * 41  # [a-z][a-z0-9_]{0,40}: the documented pattern's longest; the view is dataset_ + 41 = 49 bytes
    with engine.begin() as conn:
        fill_separable(conn, genres_=["Rock", "Jazz"], per_genre=3)
        summary = create_dataset(conn, name, DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=2))
    assert summary.view == f"dataset_{name}"
    with engine.connect() as conn:
        assert summary.view in inspect(conn).get_view_names()  # not truncated by PostgreSQL
        assert conn.execute(text(f'SELECT COUNT(*) FROM "{summary.view}"')).scalar_one() == 6
    with engine.begin() as conn:
        drop_dataset(conn, name)


@pytest.mark.parametrize("name", ["a" * 42, "b" * 100])
def test_longer_dataset_names_are_one_line_errors(name):
    with pytest.raises(InputError, match="must match"):
        validate_name(name)


def test_cli_dataset_name_limits(sqlite_engine, tmp_path, monkeypatch):
    cli = sqlite_cli(sqlite_engine, tmp_path / "models", monkeypatch)
    with sqlite_engine.begin() as conn:
        fill_separable(conn, genres_=["Rock", "Jazz"], per_genre=3)
    for length in (34, 41):
        out = cli("dataset", "create", "d" * length, "--features", "gtzan_csv", "--top", "2",
                  "--min-per-genre", "2").output
        assert "6 tracks in 2 genres" in out
    r = cli("dataset", "create", "d" * 42, "--features", "gtzan_csv", "--top", "2", "--min-per-genre", "2", code=1)
    assert "must match" in r.output and "Traceback" not in r.output


@pytest.fixture
def loud_wav(tmp_path):
    """Three seconds of finite float samples alternating +-1e30 (a float WAV may hold any finite value)."""
    path = tmp_path / "loud.wav"
    y = np.where(np.arange(SR * 3) % 2 == 0, 1e30, -1e30).astype(np.float32)
    sf.write(path, y, SR, subtype="FLOAT")
    return path


LOUD = "audio amplitude 1e+30 is beyond 1000"


def _one_line_error(result) -> None:  # noqa: ANN001
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert [line for line in result.output.splitlines() if line.strip()] == [
        f"error: {LOUD} (full scale is 1, i.e. more than +60 dBFS): not a recording the extractors can analyse"]


def test_tags_of_an_extreme_amplitude_file_is_one_line(sqlite_engine, loud_wav):
    from music_classifier.cli import app

    _one_line_error(CliRunner().invoke(app, ["--db", str(sqlite_engine.url), "tags", str(loud_wav)]))
    from music_classifier.jobs.audio_extract import file_top_tags

    with pytest.raises(InputError, match=re.escape(LOUD)):
        file_top_tags(loud_wav)


def test_similar_and_predict_of_an_extreme_amplitude_file_are_one_line(sqlite_engine, loud_wav, tmp_path,
                                                                       monkeypatch):
    cli = sqlite_cli(sqlite_engine, tmp_path / "models", monkeypatch)
    with sqlite_engine.begin() as conn:
        fill_separable(conn, genres_=["Rock", "Jazz"], per_genre=6, extractor="librosa")
    _one_line_error(cli("similar", str(loud_wav), "--features", "librosa", code=1))

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"rf": {"n_estimators": [10]}}))
    cli("dataset", "create", "lib", "--features", "librosa", "--top", "2", "--min-per-genre", "2")
    cli("train", "lib", "--grid", str(grid), "--cv", "2")
    _one_line_error(cli("predict", "1", str(loud_wav), code=1))
