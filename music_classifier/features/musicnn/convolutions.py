"""The front-end convolutions of MSD_musicnn as few, large float32 matrix products, each pooled in cache.

Every front-end branch is conv -> ReLU -> batch norm -> max over the frequency axis. The max is taken
first, on the raw products (:class:`PooledConv`), which is exact; what differs between the classes is how
the convolution becomes matrix products:

- :class:`TimbralConvs` (the 7 x 38 and 7 x 67 kernels, "valid" over the 96 mel bands): a correlation
  over bands is a product in the discrete Fourier domain. Each frame's 96 bands are transformed once
  (``rfft``, 49 bins, shared by both branches); per bin, one product of the kernels' transforms with the
  7 frames under the kernel (a 14-wide real product: real and imaginary parts); the inverse transform,
  restricted to the valid positions, is one product with a (positions x 98) matrix. The circular
  correlation of length 96 equals the linear one at the 96 - width + 1 valid positions, so this is the
  same convolution, with rounding of order 1e-7 relative. About 2.6x fewer multiply-adds than im2col
  (the kernels are 266 and 469 taps wide, the inverse costs 98 per position).
- :class:`TemporalConv` (128, 64 and 32 taps along time, per band, "same" padding): outputs are taken
  :data:`TIME_BLOCK` frames at a time from one window of ``taps + TIME_BLOCK - 1`` frames against a
  block-Toeplitz kernel, so the windows are strided views of the padded input (no im2col copy 128
  times the input) and each product is (bands x blocks, taps + 7) @ (taps + 7, 8 x filters).

The kernels, their transforms and the inverse matrix are built once, float32, when the network loads.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

#: Frames per product in the timbral branches: the products' outputs (98 x 408 values a frame) stay in cache.
FRAME_BLOCK = 16
#: Output frames per kernel row in the temporal branches (block-Toeplitz width).
TIME_BLOCK = 8
#: Bands per product in the temporal branches: their outputs stay in cache until pooled over bands.
BAND_BLOCK = 16


class PooledConv:
    """A convolution's kernel as a matrix, with conv -> ReLU -> batch norm -> max-pool folded for speed.

    The columns of channels whose batch-norm scale is negative are negated, so one maximum over the
    pooled axis serves all channels (``min(c) = -max(-c)``, exact in floating point); the bias, a
    per-channel constant, is added after pooling.
    """

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, scale: np.ndarray, shift: np.ndarray):
        self.sign = np.where(scale >= 0, np.float32(1), np.float32(-1))
        self.matrix = np.ascontiguousarray(kernel * self.sign, dtype=np.float32)
        self.bias, self.scale, self.shift = bias.astype(np.float32), scale, shift

    @property
    def channels(self) -> int:
        return self.matrix.shape[1]

    def finish(self, pooled: np.ndarray) -> np.ndarray:
        """Max over the pooled axis of the product with :attr:`matrix` -> the layer's output (channels last)."""
        return np.maximum(pooled * self.sign + self.bias, 0) * self.scale + self.shift


class TimbralConvs:
    """The timbral branches (kernels ``height`` frames x ``width`` bands, frequency "valid"), by band DFT.

    Parameters
    ----------
    layers : list of (int, int, PooledConv)
        ``(height, width, layer)`` per branch, ``layer.matrix`` of shape (height * width, filters); every
        branch has the same height.
    bands : int
        Mel bands of the input (96).
    """

    def __init__(self, layers: list[tuple[int, int, PooledConv]], bands: int):
        heights = {height for height, _, _ in layers}
        if len(heights) != 1:
            raise ValueError(f"timbral kernels must share one height, got {sorted(heights)}")
        self.height = heights.pop()
        self.bands = bands
        self.bins = bands // 2 + 1
        self.layers = [layer for _, _, layer in layers]
        self.filters = [layer.channels for layer in self.layers]
        total = sum(self.filters)
        # rows per bin: real parts of every branch's filters, then imaginary parts; columns [re x taps, im x taps]
        self.product = np.empty((self.bins, 2 * total, 2 * self.height), dtype=np.float32)
        self.inverse = []
        bins = np.arange(self.bins)
        # real inverse DFT of a Hermitian spectrum: bins 0 and bands/2 once, the others twice
        weight = np.where((bins == 0) | (2 * bins == bands), 1.0, 2.0) / bands
        first = 0
        for height, width, layer in layers:
            filters = layer.channels
            kernel = np.zeros((height, bands, filters))
            kernel[:, :width] = layer.matrix.reshape(height, width, filters)
            spectrum = np.fft.rfft(kernel, axis=1).transpose(1, 2, 0)  # (bins, filters, height)
            # x * conj(w): real part xr.wr + xi.wi, imaginary part xi.wr - xr.wi
            real_rows = self.product[:, first : first + filters]
            imag_rows = self.product[:, total + first : total + first + filters]
            real_rows[:, :, :height], real_rows[:, :, height:] = spectrum.real, spectrum.imag
            imag_rows[:, :, :height], imag_rows[:, :, height:] = -spectrum.imag, spectrum.real
            first += filters
            angle = 2 * np.pi * np.outer(np.arange(bands - width + 1), bins) / bands
            inverse = np.stack([weight * np.cos(angle), -weight * np.sin(angle)], axis=2)  # (positions, bins, 2)
            self.inverse.append(np.ascontiguousarray(inverse.reshape(len(angle), 2 * self.bins), dtype=np.float32))

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """(n, T, bands) normalised input -> per branch (n, T, filters), after ReLU and batch norm."""
        n, frames, bands = x.shape
        pad = (self.height - 1) // 2
        spectrum = np.fft.rfft(np.pad(x, ((0, 0), (pad, self.height - 1 - pad), (0, 0))), axis=2)
        # columns[i, bin, (re/im, tap), t]: the spectra of the frames under the kernel at output frame t
        columns = np.empty((n, self.bins, 2 * self.height, frames), dtype=np.float32)
        for part, values in enumerate((spectrum.real, spectrum.imag)):
            by_bin = values.transpose(0, 2, 1)  # (n, bins, frames + height - 1)
            for tap in range(self.height):
                columns[:, :, part * self.height + tap] = by_bin[:, :, tap : tap + frames]
        total = sum(self.filters)
        outs = [np.empty((n, frames, filters), dtype=np.float32) for filters in self.filters]
        for i in range(n):
            for t0 in range(0, frames, FRAME_BLOCK):
                t1 = min(t0 + FRAME_BLOCK, frames)
                block = t1 - t0
                # per bin (bins, [re, im] x filters, block) -> rows (bin, re/im), columns (filter, frame)
                products = np.matmul(self.product, columns[i, :, :, t0:t1]).reshape(2 * self.bins, total * block)
                start = 0
                for inverse, filters, out in zip(self.inverse, self.filters, outs, strict=True):
                    conv = inverse @ products[:, start * block : (start + filters) * block]  # (positions, ...)
                    out[i, t0:t1] = conv.max(axis=0).reshape(filters, block).T
                    start += filters
        return [layer.finish(out) for layer, out in zip(self.layers, outs, strict=True)]


class TemporalConv:
    """A temporal branch (``taps`` frames x 1 band, TensorFlow "same" padding), by block-Toeplitz products.

    Parameters
    ----------
    taps : int
        Kernel length in frames.
    layer : PooledConv
        ``layer.matrix`` of shape (taps, filters).
    """

    def __init__(self, taps: int, layer: PooledConv):
        self.taps, self.layer = taps, layer
        filters = layer.channels
        toeplitz = np.zeros((taps + TIME_BLOCK - 1, TIME_BLOCK, filters), dtype=np.float32)
        for d in range(TIME_BLOCK):  # output frame d of a block sees input frames d .. d + taps - 1
            toeplitz[d : d + taps, d] = layer.matrix
        self.toeplitz = toeplitz.reshape(taps + TIME_BLOCK - 1, TIME_BLOCK * filters)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, T, bands) normalised input -> (n, T, filters), after ReLU and batch norm."""
        n, frames, bands = x.shape
        filters = self.layer.channels
        before = (self.taps - 1) // 2  # TensorFlow's "same": the extra zero goes after
        blocks = -(-frames // TIME_BLOCK)
        width = self.taps + TIME_BLOCK - 1
        by_band = np.zeros((n, bands, blocks * TIME_BLOCK + self.taps - 1), dtype=np.float32)
        by_band[:, :, before : before + frames] = x.transpose(0, 2, 1)
        out = np.empty((n, blocks * TIME_BLOCK * filters), dtype=np.float32)
        for i in range(n):
            for f0 in range(0, bands, BAND_BLOCK):
                rows = by_band[i, f0 : f0 + BAND_BLOCK]
                windows = as_strided(rows, shape=(rows.shape[0], blocks, width),
                                     strides=(rows.strides[0], TIME_BLOCK * rows.strides[1], rows.strides[1]),
                                     writeable=False)
                conv = (windows.reshape(-1, width) @ self.toeplitz).reshape(rows.shape[0], -1)
                if f0 == 0:
                    conv.max(axis=0, out=out[i])
                else:
                    np.maximum(out[i], conv.max(axis=0), out=out[i])
        return self.layer.finish(out.reshape(n, blocks * TIME_BLOCK, filters)[:, :frames])
