"""The librosa feature set: names, units and meaning, documented in ONE place.

Every feature is a summary over the analysis frames (``n_fft=2048``, ``hop_length=512`` at
22,050 Hz, i.e. 93 ms windows every 23 ms): ``<name>_mean`` is the mean and ``<name>_var`` the
population variance (``ddof=0``, as in the GTZAN tables) of a frame-wise quantity, so the unit of a
``_var`` is the square of the ``_mean`` unit. Names equal the columns of the published GTZAN
feature CSV (``features_30_sec.csv``) where such a column exists; ``spectral_contrast*`` and
``tonnetz*`` are additions. Views and docs read :data:`LIBROSA_FEATURES`; the extractor returns
its values in exactly this order.
"""

from __future__ import annotations

from typing import NamedTuple


class FeatureSpec(NamedTuple):
    name: str
    unit: str
    description: str


def _squared(unit: str) -> str:
    if unit in ("", "dimensionless"):
        return unit
    return f"{unit}^2"


def _mean_var(name: str, unit: str, description: str) -> list[FeatureSpec]:
    return [
        FeatureSpec(f"{name}_mean", unit, f"mean over frames of {description}"),
        FeatureSpec(f"{name}_var", _squared(unit), f"variance over frames of {description}"),
    ]


def _build() -> list[FeatureSpec]:
    specs: list[FeatureSpec] = []
    specs += _mean_var(
        "chroma_stft", "dimensionless",
        "the 12 STFT chroma bins (energy per pitch class, each frame scaled to max 1)",
    )
    specs += _mean_var("rms", "amplitude (full scale = 1)", "the root-mean-square amplitude")
    specs += _mean_var("spectral_centroid", "Hz", "the magnitude-weighted mean frequency")
    specs += _mean_var("spectral_bandwidth", "Hz", "the spread of frequency around the centroid (p=2)")
    specs += _mean_var("rolloff", "Hz", "the frequency below which 85% of the spectral magnitude lies")
    specs += _mean_var(
        "zero_crossing_rate", "crossings per sample", "the fraction of samples where the sign changes"
    )
    specs += _mean_var(
        "harmony", "amplitude (full scale = 1)",
        "the harmonic signal from HPSS (mean and variance of its samples, as GTZAN computes it)",
    )
    specs += _mean_var(
        "perceptr", "amplitude (full scale = 1)",
        "the percussive signal from HPSS (mean and variance of its samples, as GTZAN computes it)",
    )
    specs.append(FeatureSpec("tempo", "BPM", "global tempo estimate from the onset envelope"))
    for i in range(1, 21):
        specs += _mean_var(
            f"mfcc{i}", "dimensionless (dB-scaled cepstrum)",
            f"mel-frequency cepstral coefficient {i} (128 mel bands, log power, DCT-II ortho)",
        )
    for i in range(1, 8):
        band = "the residual top band" if i == 7 else f"octave band {i}"
        specs += _mean_var(
            f"spectral_contrast{i}", "dB", f"spectral contrast (peak minus valley) in {band}"
        )
    for i, dim in enumerate(
        ("fifths x", "fifths y", "minor thirds x", "minor thirds y", "major thirds x", "major thirds y"),
        start=1,
    ):
        specs += _mean_var(
            f"tonnetz{i}", "dimensionless", f"tonal centroid {dim} (from CQT chroma)"
        )
    return specs


#: Every feature the librosa extractor returns, in output order: the 57 GTZAN columns, then
#: spectral contrast (14) and tonnetz (12), 83 values.
LIBROSA_FEATURES: list[FeatureSpec] = _build()

#: The names alone, in output order.
LIBROSA_FEATURE_NAMES: list[str] = [spec.name for spec in LIBROSA_FEATURES]

#: The published GTZAN feature table's columns (``features_30_sec.csv`` without filename, length, label):
#: the first 57 librosa names, which the ``gtzan_csv`` import declares.
GTZAN_FEATURE_NAMES: list[str] = LIBROSA_FEATURE_NAMES[:57]
