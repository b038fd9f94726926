"""The musicnn extractor's interface: names, params, outputs, segments, errors, weights verification."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from music_classifier.features.errors import FeatureError
from music_classifier.features.librosa_extractor import params_hash, segment_bounds
from music_classifier.features.musicnn import extractor, weights
from music_classifier.features.musicnn.errors import MusicnnError
from music_classifier.features.musicnn.extractor import (
    extract_musicnn_features,
    extract_musicnn_segment_features,
    extractor_params,
    top_tags,
)
from music_classifier.features.musicnn.names import (
    EMBEDDING_FEATURES,
    MUSICNN_FEATURE_NAMES,
    MUSICNN_FEATURES,
    MUSICNN_TAGS,
    TAG_FEATURES,
)
from music_classifier.features.musicnn.network import _PooledConv


def music(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A few seconds of chords over a kick-like pulse and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    kick = np.exp(-30 * (t % 0.5)) * np.sin(2 * np.pi * 60 * t)
    return (0.3 * chord + 0.5 * kick + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def test_names_are_unique_sql_safe_and_ordered():
    assert len(MUSICNN_TAGS) == 50 and len(set(MUSICNN_TAGS)) == 50
    assert len(EMBEDDING_FEATURES) == 400 and EMBEDDING_FEATURES[0] == "emb001_mean"
    assert EMBEDDING_FEATURES[199] == "emb200_mean" and EMBEDDING_FEATURES[200] == "emb001_std"
    assert {"tag_female_vocalists", "tag_female_vocalist", "tag_hip_hop", "tag_00s", "tag_mellow"} <= set(TAG_FEATURES)
    assert MUSICNN_FEATURE_NAMES == EMBEDDING_FEATURES + TAG_FEATURES == [s.name for s in MUSICNN_FEATURES]
    assert len(set(MUSICNN_FEATURE_NAMES)) == 450
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in MUSICNN_FEATURE_NAMES)
    assert all(spec.unit and spec.description for spec in MUSICNN_FEATURES)


def test_params_are_json_and_name_the_weights():
    params = extractor_params()
    assert json.loads(json.dumps(params)) == params
    assert params["weights_sha256"] == weights.DATA_SHA256 and params["network"] == "MSD_musicnn"
    assert len(params_hash(params)) == 16


def test_pool_before_relu_and_batch_norm_equals_the_layer_order():
    rng = np.random.default_rng(1)
    columns = rng.standard_normal((2 * 5 * 9, 4)).astype(np.float32)
    kernel = rng.standard_normal((4, 6)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    scale = np.array([1.5, -0.7, 0.0, 2.0, -3.0, 0.1], np.float32)
    shift = rng.standard_normal(6).astype(np.float32)
    layer = _PooledConv(kernel, bias, scale, shift)
    folded = layer.finish((columns @ layer.matrix).reshape(2, 5, 9, 6).max(axis=2))
    naive = (np.maximum((columns @ kernel + bias).reshape(2, 5, 9, 6), 0) * scale + shift).max(axis=2)
    np.testing.assert_allclose(folded, naive, rtol=1e-6, atol=1e-6)


def test_track_features_keys_ranges_and_determinism(musicnn_checkpoint):
    y = music(7.0, 22050)
    features = extract_musicnn_features(y=y, sr=22050)
    assert list(features) == MUSICNN_FEATURE_NAMES
    values = np.array(list(features.values()))
    assert np.all(np.isfinite(values))
    tags = np.array([features[name] for name in TAG_FEATURES])
    assert np.all((tags > 0) & (tags < 1))
    stds = np.array([features[f"emb{i:03d}_std"] for i in range(1, 201)])
    assert np.all(stds >= 0) and stds.max() > 0  # two patches of changing music differ
    assert extract_musicnn_features(y=y, sr=22050) == features


def test_batches_do_not_change_results(musicnn_checkpoint, monkeypatch):
    y = music(13.0, 16000, seed=2)  # four patches
    taggram, penultimate = extractor.patch_outputs(y=y, sr=16000)
    assert taggram.shape == (4, 50) and penultimate.shape == (4, 200)
    monkeypatch.setattr(extractor, "PATCH_BATCH", 1)
    one_by_one = extractor.patch_outputs(y=y, sr=16000)
    np.testing.assert_allclose(one_by_one[0], taggram, atol=1e-6)
    np.testing.assert_allclose(one_by_one[1], penultimate, atol=1e-5)


def test_segments_align_with_librosa_segments_and_equal_their_window_alone(musicnn_checkpoint):
    sr = 16000
    y = music(10.5, sr, seed=4)
    y[3 * sr : 6 * sr] = 0.0  # a silent window is analysed, not dropped
    segments = extract_musicnn_segment_features(y=y, sr=sr, segment_s=3.0)
    bounds = segment_bounds(len(y), sr, 3.0)
    assert len(segments) == len(bounds) == 3
    for (_index, first, end), features in zip(bounds, segments, strict=True):
        assert list(features) == MUSICNN_FEATURE_NAMES
        assert features["emb001_std"] == 0.0  # one patch per 3 s window
        if np.any(y[first:end]):
            alone = extract_musicnn_features(y=y[first:end], sr=sr)
            np.testing.assert_allclose(list(features.values()), list(alone.values()), atol=1e-5)
    assert segments[0] != segments[1]


def test_top_tags_sorted_and_named(musicnn_checkpoint):
    tags = top_tags(y=music(6.0, 44100), sr=44100, k=5)
    assert len(tags) == 5 and all(name in MUSICNN_TAGS for name, _ in tags)
    scores = [score for _, score in tags]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] < 1
    with pytest.raises(MusicnnError, match="k must be"):
        top_tags(y=music(6.0, 44100), sr=44100, k=0)


@pytest.mark.parametrize(
    "y, sr, message",
    [
        (np.zeros(16000 * 5, np.float32), 16000, "silent"),
        (np.ones((2, 16000 * 5), np.float32) * 0.1, 16000, "mono"),
        (music(2.5, 16000), 16000, "too short for musicnn"),
        (music(5.0, 16000), 0, "sample rate"),
        (np.full(16000 * 5, np.nan, np.float32), 16000, "NaN"),
    ],
)
def test_bad_audio_is_one_domain_error(y, sr, message):
    with pytest.raises(MusicnnError, match=message) as info:
        extract_musicnn_features(y=y, sr=sr)
    assert isinstance(info.value, FeatureError) and "\n" not in str(info.value)


def test_segments_shorter_than_a_patch_are_refused():
    with pytest.raises(MusicnnError, match="at least 2.976 s"):
        extract_musicnn_segment_features(y=music(10.0, 16000), sr=16000, segment_s=2.0)


@pytest.fixture
def fresh_weights_cache():
    weights.load_weights.cache_clear()
    extractor.network.cache_clear()
    yield
    weights.load_weights.cache_clear()
    extractor.network.cache_clear()


def fake_package(root: Path, source: Path | None) -> Path:
    package = root / "musicnn"
    package.mkdir()
    (package / "__init__.py").write_text("")
    if source is not None:
        shutil.copytree(source, package / "MSD_musicnn")
    return package


def test_missing_package_names_the_pip_line(monkeypatch, fresh_weights_cache):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not (Path(p or ".") / "musicnn").exists()])
    monkeypatch.delitem(sys.modules, "musicnn", raising=False)
    with pytest.raises(MusicnnError, match=r"not installed; run: pip install --no-deps musicnn==0\.1\.0"):
        extract_musicnn_features(y=music(5.0, 16000), sr=16000)


def test_missing_checkpoint_file_names_the_fix(tmp_path, monkeypatch, fresh_weights_cache, musicnn_checkpoint):
    package = fake_package(tmp_path, musicnn_checkpoint)
    (package / "MSD_musicnn" / ".index").unlink()
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MusicnnError, match=r"MSD_musicnn/\.index is missing; reinstall: pip install"):
        weights.load_weights()


def test_altered_weights_are_refused_before_use(tmp_path, monkeypatch, fresh_weights_cache, musicnn_checkpoint):
    package = fake_package(tmp_path, musicnn_checkpoint)
    data = package / "MSD_musicnn" / ".data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[1000] ^= 0x01
    data.write_bytes(bytes(raw))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert weights.checkpoint_dir() == package / "MSD_musicnn"
    with pytest.raises(MusicnnError, match=r"altered \(sha256 mismatch\); reinstall: pip install --force-reinstall"):
        extract_musicnn_features(y=music(5.0, 16000), sr=16000)


def test_installed_checkpoint_matches_the_pinned_sha256(musicnn_checkpoint):
    assert weights.file_sha256(musicnn_checkpoint / ".index") == weights.INDEX_SHA256
    assert weights.file_sha256(musicnn_checkpoint / ".data-00000-of-00001") == weights.DATA_SHA256


def test_spectrogram_beyond_float16_range_stays_finite(musicnn_checkpoint):
    """musicnn's own extractor casts the mel spectrogram to float16 (max 65504): loud input became inf there."""
    y = 40 * music(4.0, 16000)  # far above full scale, as badly scaled decoders deliver
    mel_power = (10 ** extractor.log_mel(y16=y) - 1) / extractor.LOG_SCALE
    assert mel_power.max() > np.finfo(np.float16).max
    features = extract_musicnn_features(y=y, sr=16000)
    assert all(np.isfinite(v) for v in features.values())
