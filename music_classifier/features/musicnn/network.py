"""The MSD_musicnn forward pass (inference only) over numpy.

Architecture (Pons & Serra, "musicnn: pre-trained convolutional neural networks for music audio
tagging", 2019), as the checkpoint's tensors are laid out; one patch is 187 frames x 96 mel bands of
the log-compressed mel spectrogram (time first):

- input batch norm (one scalar mean/variance/scale/offset);
- front-end, five branches, each conv -> ReLU -> batch norm -> max over the frequency axis:
  two timbral convolutions over (7 frames x 38 bands) and (7 x 67), 204 filters each, the time
  axis zero-padded by 3 on both sides and the frequency axis "valid"; three temporal convolutions
  over (128 x 1), (64 x 1) and (32 x 1) frames, 51 filters each, "same" padding (TensorFlow's
  rule: ``(k - 1) // 2`` zeros before, the rest after). Concatenated: 561 features per frame;
- mid-end, three 1-D convolutions over time (7 frames, 64 filters, zero-padded by 3), each
  conv -> ReLU -> batch norm, the second and third added to their input (residuals); the front-end
  output and the three mid-end outputs are concatenated: 753 features per frame;
- back-end: max and mean over the 187 frames, interleaved per feature (``max_0, mean_0, max_1, ...``,
  TensorFlow's flatten of a (753, 2) map) into 1506 values -> batch norm -> dense 200 -> ReLU ->
  batch norm (the *penultimate* layer, our embedding) -> dense 50 -> sigmoid (the tag scores).

Batch norm runs in inference mode: ``gamma * (x - moving_mean) / sqrt(moving_variance + 1e-3) + beta``
(``tf.compat.v1.layers.batch_normalization``'s default epsilon). Dropout is the identity at inference.

Speed: every convolution is float32 matrix products, pooled while still in cache: the timbral branches
through the band axis's discrete Fourier transform, the temporal ones as block-Toeplitz products over
strided views (see :mod:`.convolutions`), the mid-end a sum of per-tap products. The frequency max-pool
is taken before ReLU and batch norm, which is exact because both are monotone per channel: ReLU is
non-decreasing, and a batch norm with a negative scale reverses the order, so those channels take the
minimum instead of the maximum (see :class:`.convolutions.PooledConv`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from music_classifier.features.musicnn.convolutions import PooledConv as _PooledConv
from music_classifier.features.musicnn.convolutions import TemporalConv, TimbralConvs
from music_classifier.features.musicnn.errors import MusicnnError

PATCH_FRAMES = 187
N_MELS = 96
N_TAGS = 50
EMBEDDING_SIZE = 200
BN_EPSILON = 1e-3
TIMBRAL_PAD = 3
MIDEND_PAD = 3


def _bn(weights: Mapping[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Inference batch norm ``name`` as (scale, shift) with ``bn(x) = x * scale + shift``."""
    gamma = weights[f"{name}/gamma"]
    scale = gamma / np.sqrt(weights[f"{name}/moving_variance"] + np.float32(BN_EPSILON))
    shift = weights[f"{name}/beta"] - weights[f"{name}/moving_mean"] * scale
    return scale.astype(np.float32), shift.astype(np.float32)


class MusicnnNetwork:
    """The MSD_musicnn network with its weights, ready for :meth:`forward`.

    Parameters
    ----------
    weights : mapping of str -> np.ndarray
        The checkpoint's tensors by TensorFlow name (see :func:`.weights.load_weights`).
    """

    def __init__(self, weights: Mapping[str, np.ndarray]):
        try:
            self._prepare(weights)
        except KeyError as exc:
            raise MusicnnError(f"the musicnn checkpoint lacks the tensor {exc.args[0]}") from None

    def _prepare(self, w: Mapping[str, np.ndarray]) -> None:
        f32 = np.float32
        self.in_scale, self.in_shift = (float(v[0]) for v in _bn(w, "batch_normalization"))
        # Front-end branches in concatenation order: timbral 7x38 and 7x67, then temporal 128, 64 and 32 taps.
        timbral = []
        for conv, bn in (("conv2d", "batch_normalization_1"), ("conv2d_1", "batch_normalization_2")):
            kernel = w[f"{conv}/kernel"]  # (7, width, 1, filters)
            height, width, _, filters = kernel.shape
            timbral.append((
                height, width, _PooledConv(kernel.reshape(height * width, filters), w[f"{conv}/bias"], *_bn(w, bn)),
            ))
        if {height for height, _, _ in timbral} != {2 * TIMBRAL_PAD + 1}:
            raise MusicnnError("unexpected musicnn timbral kernel height")
        self.timbral = TimbralConvs(timbral, N_MELS)
        self.temporal = []
        for conv, bn in (("conv2d_2", "batch_normalization_3"), ("conv2d_3", "batch_normalization_4"),
                         ("conv2d_4", "batch_normalization_5")):
            kernel = w[f"{conv}/kernel"]  # (taps, 1, 1, filters)
            taps, _, _, filters = kernel.shape
            layer = _PooledConv(kernel.reshape(taps, filters), w[f"{conv}/bias"], *_bn(w, bn))
            self.temporal.append(TemporalConv(taps, layer))
        self.midend_layers = []
        for conv, bn in (("conv2d_5", "batch_normalization_6"), ("conv2d_6", "batch_normalization_7"),
                         ("conv2d_7", "batch_normalization_8")):
            kernel = w[f"{conv}/kernel"]  # (7, features in, 1, filters)
            taps, features_in, _, filters = kernel.shape
            # (features in, taps x filters): every tap's product in one matrix product, shifted and summed after
            wide = np.ascontiguousarray(kernel[:, :, 0, :].transpose(1, 0, 2).reshape(features_in, taps * filters), f32)
            self.midend_layers.append((wide, taps, w[f"{conv}/bias"].astype(f32), *_bn(w, bn)))
        self.pool_scale, self.pool_shift = _bn(w, "batch_normalization_9")
        self.dense_kernel = w["dense/kernel"].astype(f32)
        self.dense_bias = w["dense/bias"].astype(f32)
        self.dense_scale, self.dense_shift = _bn(w, "batch_normalization_10")
        self.out_kernel = w["dense_1/kernel"].astype(f32)
        self.out_bias = w["dense_1/bias"].astype(f32)
        if self.out_kernel.shape != (EMBEDDING_SIZE, N_TAGS):
            raise MusicnnError(f"unexpected musicnn output layer shape {self.out_kernel.shape}")

    def normalise(self, patches: np.ndarray) -> np.ndarray:
        """(n, T, 96) log-mel patches -> the input batch norm's output, float32."""
        if patches.ndim != 3 or patches.shape[2] != N_MELS or patches.shape[1] < 1:
            raise MusicnnError(f"musicnn patches must be (n, frames, {N_MELS}), got {patches.shape}")
        return patches.astype(np.float32, copy=False) * np.float32(self.in_scale) + np.float32(self.in_shift)

    def timbral_branches(self, x: np.ndarray) -> list[np.ndarray]:
        """(n, T, 96) normalised input -> the two timbral branches, (n, T, 204) each."""
        return self.timbral(x)

    def temporal_branches(self, x: np.ndarray) -> list[np.ndarray]:
        """(n, T, 96) normalised input -> the three temporal branches, (n, T, 51) each."""
        return [conv(x) for conv in self.temporal]

    def frontend(self, x: np.ndarray) -> np.ndarray:
        """(n, T, 96) normalised input -> (n, T, 561) front-end features."""
        return np.concatenate(self.timbral_branches(x) + self.temporal_branches(x), axis=2)

    def midend(self, front: np.ndarray) -> np.ndarray:
        """(n, T, 561) front-end features -> (n, T, 753): them and the three mid-end layers' outputs."""
        c1 = self._midend_conv(front, self.midend_layers[0])
        r2 = self._midend_conv(c1, self.midend_layers[1]) + c1
        r3 = self._midend_conv(r2, self.midend_layers[2]) + r2
        return np.concatenate([front, c1, r2, r3], axis=2)

    def backend(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, T, 753) features -> (taggram (n, 50), penultimate (n, 200)): pooling over time and dense layers."""
        pooled = np.stack([features.max(axis=1), features.mean(axis=1, dtype=np.float32)], axis=2)
        flat = pooled.reshape(len(features), -1) * self.pool_scale + self.pool_shift
        dense = np.maximum(flat @ self.dense_kernel + self.dense_bias, 0)
        penultimate = dense * self.dense_scale + self.dense_shift
        logits = penultimate @ self.out_kernel + self.out_bias
        taggram = 1.0 / (1.0 + np.exp(-logits))
        return taggram.astype(np.float32), penultimate.astype(np.float32)

    def _midend_conv(self, x: np.ndarray, layer) -> np.ndarray:
        """(n, T, features in) -> (n, T, filters): conv over time (zero-padded), ReLU, batch norm."""
        wide, taps, bias, scale, shift = layer
        n, frames, features_in = x.shape
        filters = bias.shape[0]
        per_tap = (x.reshape(n * frames, features_in) @ wide).reshape(n, frames, taps, filters)
        out = np.empty((n, frames, filters), dtype=np.float32)
        out[...] = bias
        for tap in range(taps):  # output frame t takes input frame t + tap - pad; the padding's zeros add nothing
            shift_by = tap - MIDEND_PAD
            lo, hi = max(0, -shift_by), min(frames, frames - shift_by)
            out[:, lo:hi] += per_tap[:, lo + shift_by : hi + shift_by, tap]
        return np.maximum(out, 0) * scale + shift

    def forward(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tag scores and penultimate embeddings of a batch of patches.

        Parameters
        ----------
        patches : np.ndarray, shape (n_patches, 187, 96), float32
            Log-compressed mel spectrogram patches, time first (see :func:`.extractor.log_mel`).

        Returns
        -------
        taggram : np.ndarray, shape (n_patches, 50), float32
            Sigmoid tag scores in [0, 1], in :data:`.names.MUSICNN_TAGS` order.
        penultimate : np.ndarray, shape (n_patches, 200), float32
            The batch-normalised 200-unit dense layer.
        """
        return self.backend(self.midend(self.frontend(self.normalise(patches))))
