"""The fast front-end convolutions (band DFT, block-Toeplitz) against the convolutions as defined, and the log-mel
input against librosa's melspectrogram."""

from __future__ import annotations

import numpy as np
import pytest

from music_classifier.features.musicnn import extractor
from music_classifier.features.musicnn.convolutions import FRAME_BLOCK, PooledConv, TemporalConv, TimbralConvs


def layer(rng: np.random.Generator, taps: int, filters: int) -> PooledConv:
    # both signs of batch-norm scale, so the min-for-negative-scale fold is exercised too
    scale = rng.choice([-1.0, 1.0], filters) * rng.uniform(0.2, 2.0, filters)
    return PooledConv(rng.standard_normal((taps, filters)).astype(np.float32) / np.sqrt(taps),
                      rng.standard_normal(filters).astype(np.float32), scale.astype(np.float32),
                      rng.standard_normal(filters).astype(np.float32))


def reference(x: np.ndarray, kernel: np.ndarray, pooled: PooledConv, before: int, after: int) -> np.ndarray:
    """conv (time zero-padded before/after, bands "valid") -> bias -> ReLU -> batch norm -> max over positions,
    by direct sums in float64, in the layer order of the paper."""
    height, width, filters = kernel.shape
    n, frames, bands = x.shape
    padded = np.pad(x.astype(np.float64), ((0, 0), (before, after), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(1, 2))  # (n, T, P, h, w)
    conv = np.einsum("ntphw,hwf->ntpf", windows, kernel.astype(np.float64)) + pooled.bias
    return (np.maximum(conv, 0) * pooled.scale + pooled.shift).max(axis=2)


@pytest.mark.parametrize("frames", [187, FRAME_BLOCK - 3, 2 * FRAME_BLOCK + 1])
def test_timbral_convolutions_by_dft_equal_the_direct_convolution(frames):
    rng = np.random.default_rng(frames)
    x = rng.standard_normal((2, frames, 96)).astype(np.float32)
    layers = [(7, 38, layer(rng, 7 * 38, 12)), (7, 67, layer(rng, 7 * 67, 9))]
    outputs = TimbralConvs(layers, 96)(x)
    for (height, width, pooled), out in zip(layers, outputs, strict=True):
        kernel = (pooled.matrix * pooled.sign).reshape(height, width, -1)  # the layer's kernel, signs undone
        expected = reference(x, kernel, pooled, 3, 3)
        assert out.shape == expected.shape == (2, frames, pooled.channels) and out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("taps", [128, 64, 32, 7])
def test_temporal_convolution_by_block_toeplitz_equals_the_direct_convolution(taps):
    rng = np.random.default_rng(taps)
    x = rng.standard_normal((2, 187, 96)).astype(np.float32)
    pooled = layer(rng, taps, 11)
    out = TemporalConv(taps, pooled)(x)
    kernel = (pooled.matrix * pooled.sign).reshape(taps, 1, -1)
    before = (taps - 1) // 2  # TensorFlow's "same": the odd zero after
    expected = reference(x, kernel, pooled, before, taps - 1 - before)
    assert out.shape == expected.shape == (2, 187, 11)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_log_mel_equals_librosa_melspectrogram():
    import librosa

    rng = np.random.default_rng(3)
    y16 = (0.2 * rng.standard_normal(16000 * 4)).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=y16, sr=16000, n_fft=512, hop_length=256, n_mels=96).T
    expected = np.log10(10000 * mel + 1)
    ours = extractor.log_mel(y16=y16)
    assert ours.shape == expected.shape == (1 + y16.size // 256, 96) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-6)
