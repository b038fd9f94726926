"""Our numpy MSD_musicnn against musicnn's own TensorFlow graph (fixture from benchmarks/musicnn_reference.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from music_classifier.features.musicnn.extractor import extract_musicnn_features, patch_outputs
from music_classifier.features.musicnn.names import MUSICNN_FEATURE_NAMES

FIXTURE = Path(__file__).parent / "fixtures" / "musicnn_reference.npz"
REFERENCE = np.load(FIXTURE)
CLIPS = [str(clip) for clip in REFERENCE["clips"]]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def load_mono(path: Path) -> tuple[np.ndarray, int]:
    """As ``librosa.load`` reads a file before resampling: float32, channels averaged."""
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    return y.mean(axis=1), sr


@pytest.mark.parametrize("i", range(len(CLIPS)), ids=[Path(c).name for c in CLIPS])
def test_forward_pass_matches_tensorflow(i, shared_data, musicnn_checkpoint):
    y, sr = load_mono(shared_data / CLIPS[i])
    taggram, penultimate = patch_outputs(y=y, sr=sr)
    ours = {
        "taggram_mean": taggram.mean(axis=0),
        "penultimate_mean": penultimate.mean(axis=0),
        "penultimate_std": penultimate.std(axis=0),
    }
    for name, vector in ours.items():
        expected = REFERENCE[f"{name}_{i}"]
        assert vector.shape == expected.shape
        assert cosine(vector, expected) >= 0.9999, name
    assert np.max(np.abs(ours["taggram_mean"] - REFERENCE[f"taggram_mean_{i}"])) <= 1e-4
    if i == 0:
        assert taggram.shape == REFERENCE["taggram_patches_0"].shape
        assert np.max(np.abs(taggram - REFERENCE["taggram_patches_0"])) <= 1e-4
        for ours_row, ref_row in zip(penultimate, REFERENCE["penultimate_patches_0"], strict=True):
            assert cosine(ours_row, ref_row) >= 0.9999
    # The stored features are these vectors, in name order.
    features = extract_musicnn_features(y=y, sr=sr)
    np.testing.assert_allclose(
        np.array([features[n] for n in MUSICNN_FEATURE_NAMES]),
        np.concatenate([ours["penultimate_mean"], ours["penultimate_std"], ours["taggram_mean"]]),
        rtol=1e-6, atol=1e-6,
    )

