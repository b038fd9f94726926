"""Segment features from the whole track's analysis: one STFT, HPSS and CQT per track, not per segment.

A segment ``[first, end)`` analysed on its own has ``1 + (end - first) // HOP_LENGTH`` frames
centred at ``first + k * HOP_LENGTH``. The whole track's frame grid is centred at ``t * HOP_LENGTH``;
the segment takes the same number of whole-track frames starting at ``round(first / HOP_LENGTH)``
(at most half a hop, 11.6 ms at 22,050 Hz, from its own centres). Frame-local quantities are
sliced; what a segment would clip relative to its own loudest value is converted per segment from
the sliced linear values, as analysing it alone does: the log-mel spectrogram (MFCC, and the onset
envelope behind the tempo: librosa's tempo on it, all segments in one batched call) and the
spectral contrast. What still differs from analysing each segment on its own:

- the frame grid (up to half a hop): spectral contrast valleys (the quietest 2% of a band's bins)
  move with it, so its variances differ most; a segment analysed alone moves as much when its
  start moves by a few milliseconds (``docs/features.md``);
- frames near the segment's edges see the neighbouring audio instead of zero padding, and the
  harmonic/percussive split's medians see beyond the edges instead of reflecting;
- the constant-Q transform behind tonnetz uses filters up to 1.6 s long (the lowest octave): on
  the whole track they see music where a lone 3 s segment is mostly zero padding;
- the tuning estimates (chroma_stft, the CQT behind tonnetz) are the track's, not the segment's.

``tests/test_librosa_segments.py`` measures the differences on the shared GTZAN clips, feature by
feature, against the table in ``docs/features.md``.
"""

from __future__ import annotations

import numpy as np

from music_classifier.features.librosa_extractor import HOP_LENGTH, N_MFCC, TrackFrames, summarise


def window_frames(first: int, end: int, n_frames: int) -> slice:
    """The whole-track frames standing for the samples ``[first, end)``.

    As many frames as the window analysed alone would have, ``1 + (end - first) // HOP_LENGTH``,
    starting at the track frame nearest ``first``; moved back (never shortened) at the track's end.
    """
    count = min(1 + (end - first) // HOP_LENGTH, n_frames)
    start = min(int(round(first / HOP_LENGTH)), n_frames - count)
    return slice(start, start + count)


def _rhythm_and_cepstrum(track: TrackFrames, slices: list[slice], sr: int) -> tuple[list[float], list[np.ndarray]]:
    """Per slice: librosa's tempo and MFCC of the slice's own log-mel spectrogram (batched when the
    slices have one length: librosa's mfcc, onset_strength and tempo take stacks of spectrograms)."""
    import librosa

    tempi: list[float] = []
    mfccs: list[np.ndarray] = []
    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(slices):
        by_length.setdefault(s.stop - s.start, []).append(i)
    out: dict[int, tuple[float, np.ndarray]] = {}
    for members in by_length.values():
        # power_to_db clips at 80 dB below the loudest value it sees: one segment at a time.
        log_mel = np.stack([librosa.power_to_db(track.mel[:, slices[i]]) for i in members])
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)
        onset = librosa.onset.onset_strength(S=log_mel, sr=sr)
        tempo = librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP_LENGTH)[:, 0]
        for j, i in enumerate(members):
            out[i] = (float(tempo[j]), mfcc[j])
    for i in range(len(slices)):
        tempi.append(out[i][0])
        mfccs.append(out[i][1])
    return tempi, mfccs


def window_summaries(track: TrackFrames, windows: list[tuple[int, int]], *, sr: int) -> list[dict[str, float]]:
    """The feature set of each window ``(first, end)`` (samples), from one :class:`TrackFrames`.

    ``track`` must carry the windows' HPSS statistics in the same order (``analyse_track(windows=)``).

    Returns
    -------
    list of dict[str, float], one per window, in :data:`~music_classifier.features.names.LIBROSA_FEATURE_NAMES` order
    """
    from music_classifier.features.contrast import contrast_db

    if not windows:
        return []
    n_frames = track.onset_env.shape[-1]
    slices = [window_frames(first, end, n_frames) for first, end in windows]
    tempi, mfccs = _rhythm_and_cepstrum(track, slices, sr)
    sliced_names = ("chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff",
                    "zero_crossing_rate", "tonnetz")
    out = []
    for s, harmony, perceptr, tempo, mfcc in zip(slices, track.window_harmony, track.window_perceptr, tempi, mfccs,
                                                 strict=True):
        frames = {name: track.frames[name][..., s] for name in sliced_names}
        out.append(summarise(**frames, mfcc=mfcc, spectral_contrast=contrast_db(track.contrast_peak[:, s],
                                                                                 track.contrast_valley[:, s]),
                             harmony=harmony, perceptr=perceptr, tempo=tempo))
    return out
