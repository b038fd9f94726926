"""Synthetic music in six styles: the demo's stand-in for a class's audio library.

Every renderer is keyword-only, takes the random generator it draws from (same seed -> identical samples), and
returns float32 mono in [-1, 1] of exactly round(duration_s * sr) samples. Tempo, key and length come in as
arguments (see `render_track`, which draws them per style); timbre (harmonic weights, filter cut-offs, drive, decay
times) and the noise floor are drawn inside from the same generator.

The styles are crude on purpose but differ where GTZAN-style features look: tempo and onset density, spectral
centroid (dark piano vs. distorted guitars and cymbals), zero-crossing rate (noise-heavy drums), loudness
contour (sparse piano vs. a saturated wall), so that a classifier on those features separates them.

Speed: hits are added as slices of a precomputed one-shot (a few hundred slice additions per track), pitched notes
are vectorised over samples, and the Karplus-Strong string is computed one period-long block at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import signal

SR = 22050
Renderer = Callable[..., np.ndarray]


# ---------------------------------------------------------------------------------------------- primitives


def _n_samples(duration_s: float, sr: int) -> int:
    return int(round(duration_s * sr))


def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _decay(n: int, sr: int, decay_s: float, attack_s: float = 0.002) -> np.ndarray:
    """Exponential decay with a short linear attack (avoids clicks at note starts)."""
    env = np.exp(-_t(n, sr) / decay_s)
    a = min(n, max(1, int(attack_s * sr)))
    env[:a] *= np.linspace(0.0, 1.0, a)
    return env


def _add_hits(out: np.ndarray, sample: np.ndarray, onsets_s: np.ndarray, gains: np.ndarray, sr: int) -> None:
    """Mix `sample` into `out` at each onset (in place); hits past the end are cut."""
    for onset, gain in zip(np.atleast_1d(onsets_s), np.atleast_1d(gains), strict=True):
        i = int(round(onset * sr))
        if 0 <= i < len(out):
            m = min(len(sample), len(out) - i)
            out[i : i + m] += gain * sample[:m]


def _filter(x: np.ndarray, sr: int, kind: str, cutoff: float | tuple[float, float], order: int = 2) -> np.ndarray:
    nyq = sr / 2
    wn = np.clip(np.asarray(cutoff, dtype=float) / nyq, 1e-4, 0.999)
    sos = signal.butter(order, wn, btype=kind, output="sos")
    return signal.sosfilt(sos, x)


def _saw(freq: float, n: int, sr: int, phase0: float = 0.0) -> np.ndarray:
    # Naive (aliasing) sawtooth: the aliases only add to the brightness distortion is meant to have.
    return 2.0 * ((freq * _t(n, sr) + phase0) % 1.0) - 1.0


def _harmonic_tone(freq: float, n: int, sr: int, weights: np.ndarray, decay_s: float,
                   inharmonicity: float = 0.0) -> np.ndarray:
    """Sum of harmonics, higher ones decaying faster (as on a struck string), partials above Nyquist dropped.

    Each partial is only computed until it has decayed by 60 dB (about 7 time constants): the upper ones are short,
    which is most of the speed.
    """
    t = _t(n, sr)
    y = np.zeros(n)
    for k, w in enumerate(weights, start=1):
        fk = k * freq * np.sqrt(1.0 + inharmonicity * k * k)
        if fk >= sr / 2:
            break
        tau = decay_s / (1.0 + 0.6 * (k - 1))
        m = min(n, int(7.0 * tau * sr) + 1)
        y[:m] += w * np.sin(2 * np.pi * fk * t[:m]) * np.exp(-t[:m] / tau)
    a = min(n, int(0.004 * sr))
    y[:a] *= np.linspace(0.0, 1.0, a)
    return y


def _pluck(freq: float, n: int, sr: int, rng: np.random.Generator, damping: float, brightness: float) -> np.ndarray:
    """Karplus-Strong string: y[i] = damping * (y[i-P] + y[i-P-1]) / 2, seeded with a noise burst.

    Each block of P samples depends only on earlier blocks, so the recurrence runs one vectorised block at a time
    (duration * freq iterations) instead of one Python step per sample.
    """
    period = max(2, int(round(sr / freq)))
    blocks = n // period + 2
    buf = np.empty(blocks * period)
    burst = rng.uniform(-1.0, 1.0, period)
    # A duller pick: low-pass the excitation (one-pole smoothing) by an amount set by `brightness`.
    buf[:period] = signal.lfilter([brightness], [1.0, brightness - 1.0], burst)
    for k in range(1, blocks):
        prev = buf[(k - 1) * period : k * period]
        before = buf[(k - 1) * period - 1] if k > 1 else 0.0
        shifted = np.concatenate(([before], prev[:-1]))
        buf[k * period : (k + 1) * period] = damping * 0.5 * (prev + shifted)
    return buf[:n]


def _kick(rng: np.random.Generator, sr: int, decay_s: float, f_start: float, f_end: float) -> np.ndarray:
    n = int(sr * decay_s * 5)
    t = _t(n, sr)
    freq = f_end + (f_start - f_end) * np.exp(-t / 0.035)
    y = np.sin(2 * np.pi * np.cumsum(freq) / sr) * _decay(n, sr, decay_s, 0.001)
    click = int(0.004 * sr)
    y[:click] += 0.3 * rng.standard_normal(click) * np.linspace(1.0, 0.0, click)
    return y


def _noise_hit(rng: np.random.Generator, sr: int, decay_s: float, kind: str,
               cutoff: float | tuple[float, float]) -> np.ndarray:
    n = int(sr * decay_s * 5)
    return _filter(rng.standard_normal(n), sr, kind, cutoff) * _decay(n, sr, decay_s, 0.0005)


def _snare(rng: np.random.Generator, sr: int, decay_s: float, tone_hz: float) -> np.ndarray:
    body = _noise_hit(rng, sr, decay_s, "bandpass", (1200.0, 7000.0))
    tone = np.sin(2 * np.pi * tone_hz * _t(len(body), sr)) * _decay(len(body), sr, decay_s * 0.5)
    return body + 0.6 * tone


def _cymbal(rng: np.random.Generator, sr: int, decay_s: float, partials_hz: np.ndarray) -> np.ndarray:
    """Ride/crash: inharmonic high partials (the bell) over high-passed noise (the wash)."""
    n = int(sr * decay_s * 4)
    t = _t(n, sr)
    bell = np.sin(2 * np.pi * np.outer(partials_hz, t) + rng.uniform(0, 2 * np.pi, (len(partials_hz), 1))).sum(0)
    wash = _filter(rng.standard_normal(n), sr, "highpass", 5000.0)
    return (0.15 * bell + wash) * _decay(n, sr, decay_s, 0.0005)


def _note_hz(key_hz: float, semitones: float) -> float:
    return key_hz * 2.0 ** (semitones / 12.0)


def _beats(duration_s: float, tempo_bpm: float) -> tuple[float, np.ndarray]:
    beat = 60.0 / tempo_bpm
    return beat, np.arange(int(np.ceil(duration_s / beat)) + 1) * beat


def _finish(y: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float] = (22.0, 45.0)) -> np.ndarray:
    """Add a noise floor at a random SNR, normalise to a random peak, return float32 in [-1, 1]."""
    rms = float(np.sqrt(np.mean(y * y))) or 1e-3
    noise_rms = rms / 10 ** (rng.uniform(*snr_db) / 20)
    y = y + noise_rms * rng.standard_normal(len(y))
    peak = float(np.max(np.abs(y))) or 1.0
    y = y * (rng.uniform(0.55, 0.95) / peak)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR_PENTATONIC = np.array([0, 3, 5, 7, 10])


# ---------------------------------------------------------------------------------------------- renderers


def render_electronic(*, rng: np.random.Generator, sr: int = SR, duration_s: float, tempo_bpm: float,
                      key_hz: float) -> np.ndarray:
    """Four-on-the-floor loop: kick on every beat, open hats on the off-beats, a filtered saw bass in eighths."""
    n = _n_samples(duration_s, sr)
    out = np.zeros(n)
    beat, beats = _beats(duration_s, tempo_bpm)
    _add_hits(out, _kick(rng, sr, rng.uniform(0.12, 0.2), rng.uniform(120, 170), rng.uniform(45, 60)),
              beats, np.ones(len(beats)), sr)
    hat = _noise_hit(rng, sr, rng.uniform(0.03, 0.07), "highpass", rng.uniform(6000, 8500))
    _add_hits(out, hat, beats + beat / 2, np.full(len(beats), rng.uniform(0.35, 0.6)), sr)
    if rng.random() < 0.6:  # a clap on 2 and 4 in most loops
        clap = _noise_hit(rng, sr, 0.08, "bandpass", (900.0, 5000.0))
        _add_hits(out, clap, beats[1::2], np.full(len(beats[1::2]), 0.5), sr)
    # Bass: eighth notes from a short repeating minor-pentatonic figure, one octave below the key.
    figure = rng.choice(MINOR_PENTATONIC, size=4)
    cutoff = rng.uniform(350, 1400)
    bass = np.zeros(n)
    note_len = int(beat / 2 * sr * 0.85)
    for i, onset in enumerate(np.arange(0, duration_s, beat / 2)):
        note = _saw(_note_hz(key_hz / 2, figure[i % 4]), note_len, sr) * _decay(note_len, sr, beat * 0.4)
        _add_hits(bass, note, np.array([onset]), np.array([1.0]), sr)
    out += rng.uniform(0.35, 0.6) * _filter(bass, sr, "lowpass", cutoff)
    return _finish(out, rng)


def render_metal(*, rng: np.random.Generator, sr: int = SR, duration_s: float, tempo_bpm: float,
                 key_hz: float) -> np.ndarray:
    """Distorted power-chord riff in sixteenths at high tempo, double-kick drums, snare on 2 and 4, crashes."""
    n = _n_samples(duration_s, sr)
    beat, beats = _beats(duration_s, tempo_bpm)
    sixteenth = beat / 4
    riff = rng.choice([0, 0, 0, 3, 5, 6, 7, 10], size=8)
    chord_len = int(sixteenth * sr * rng.uniform(0.8, 1.0))
    detune = rng.uniform(0.002, 0.008)
    guitar = np.zeros(n)
    for i, onset in enumerate(np.arange(0, duration_s, sixteenth)):
        root = _note_hz(key_hz / 2, riff[(i // 2) % len(riff)])
        chord = (_saw(root, chord_len, sr) + _saw(root * 1.4983, chord_len, sr, 0.3)
                 + _saw(root * 2 * (1 + detune), chord_len, sr, 0.6))
        palm_mute = 0.5 if i % 4 in (1, 3) else 1.0
        _add_hits(guitar, chord * _decay(chord_len, sr, sixteenth * 2 * palm_mute), np.array([onset]),
                  np.array([palm_mute]), sr)
    drive = rng.uniform(6.0, 20.0)
    guitar = np.clip(np.tanh(drive * guitar) * 1.2, -1.0, 1.0)  # saturate, then hard-clip what is left
    guitar = _filter(guitar, sr, "lowpass", rng.uniform(4500, 8000))
    drums = np.zeros(n)
    kicks = np.arange(0, duration_s, sixteenth if rng.random() < 0.6 else beat / 2)
    _add_hits(drums, _kick(rng, sr, 0.08, 180.0, 60.0), kicks, np.full(len(kicks), 0.8), sr)
    _add_hits(drums, _snare(rng, sr, rng.uniform(0.1, 0.18), rng.uniform(180, 240)), beats[1::2],
              np.ones(len(beats[1::2])), sr)
    crash = _cymbal(rng, sr, 0.6, rng.uniform(3000, 9000, 6))
    _add_hits(drums, crash, beats[::4], np.full(len(beats[::4]), 0.5), sr)
    hats = np.arange(0, duration_s, beat / 2)
    _add_hits(drums, _noise_hit(rng, sr, 0.04, "highpass", 7000.0), hats, np.full(len(hats), 0.4), sr)
    return _finish(rng.uniform(0.5, 0.7) * guitar + drums, rng)


def render_classical(*, rng: np.random.Generator, sr: int = SR, duration_s: float, tempo_bpm: float,
                     key_hz: float) -> np.ndarray:
    """Slow, sparse piano-like texture: decaying harmonic tones from a major scale, long gaps, no drums."""
    n = _n_samples(duration_s, sr)
    out = np.zeros(n)
    beat, beats = _beats(duration_s, tempo_bpm)
    weights = (np.arange(1, 11) ** -rng.uniform(1.2, 2.2)) * rng.uniform(0.6, 1.0, 10)
    inharmonicity = rng.uniform(0.0, 4e-4)
    density = rng.uniform(0.3, 0.55)
    decay = rng.uniform(0.9, 1.8)
    length = min(n, int(decay * 3 * sr))
    tones: dict[int, np.ndarray] = {}  # one tone per scale degree, reused: the costly part is the sines
    for onset in beats:
        if rng.random() > density:
            continue  # a rest: the gaps are what makes it sparse
        voices = rng.integers(1, 4)
        degrees = rng.choice(14, size=voices, replace=False) + 7  # -7..-1 stay free for the low notes
        if rng.random() < 0.4:  # an occasional low note an octave under the melody
            degrees = np.append(degrees, rng.choice([0, 4]))
        for d in degrees:
            if d not in tones:
                semis = MAJOR[d % 7] + 12 * (d // 7) - 12
                tones[d] = _harmonic_tone(_note_hz(key_hz, semis), length, sr, weights, decay, inharmonicity)
            _add_hits(out, tones[d], np.array([onset + rng.uniform(0, 0.03)]),
                      np.array([rng.uniform(0.3, 0.6)]), sr)
    if not out.any():  # a very unlucky draw of rests: at least one chord
        out += _harmonic_tone(key_hz, n, sr, weights, 2.0)
    # A little room: convolve with a short exponentially decaying noise tail.
    tail = rng.standard_normal(int(0.4 * sr)) * _decay(int(0.4 * sr), sr, 0.12)
    out = out + 0.05 * signal.fftconvolve(out, tail)[:n]
    return _finish(out, rng, snr_db=(30.0, 50.0))


def render_jazz(*, rng: np.random.Generator, sr: int = SR, duration_s: float, tempo_bpm: float,
                key_hz: float) -> np.ndarray:
    """Swung walking bass in quarter notes over ii-V-I, ride cymbal "ding, ding-da", hi-hat chick on 2 and 4."""
    n = _n_samples(duration_s, sr)
    out = np.zeros(n)
    beat, beats = _beats(duration_s, tempo_bpm)
    swing = rng.uniform(0.62, 0.7)  # the skip note lands at ~2/3 of the beat, not half
    chords = [np.array([2, 5, 9, 12]), np.array([7, 11, 14, 17]), np.array([0, 4, 7, 11]), np.array([0, 4, 7, 9])]
    weights = np.array([1.0, rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.3), 0.05])
    bass_len = int(beat * sr)
    bass_decay = rng.uniform(0.25, 0.45)
    octave_down = 12 * (key_hz > 140)  # keep the bass line under ~70 Hz..140 Hz whatever the key
    tones: dict[int, np.ndarray] = {}  # one tone per pitch, reused: the sines are the costly part
    for i, onset in enumerate(beats):
        chord = chords[(i // 4) % len(chords)]
        semis = int(chord[i % 4] if rng.random() < 0.75 else chord[0] + rng.choice([-1, 1, 2])) - octave_down
        if semis not in tones:
            tones[semis] = _harmonic_tone(_note_hz(key_hz / 2, semis), bass_len, sr, weights, bass_decay)
        _add_hits(out, tones[semis], np.array([onset]), np.array([rng.uniform(0.75, 0.95)]), sr)
    ride = _cymbal(rng, sr, rng.uniform(0.5, 0.9), rng.uniform(3500, 8000, 5))
    skips = beats[1::2] + swing * beat
    _add_hits(out, ride, beats, np.full(len(beats), 0.25), sr)
    _add_hits(out, ride, skips, np.full(len(skips), 0.15), sr)
    chick = _noise_hit(rng, sr, 0.025, "bandpass", (3000.0, 9000.0))
    _add_hits(out, chick, beats[1::2], np.full(len(beats[1::2]), 0.2), sr)
    # Sparse piano comping: a short chord now and then on a swung off-beat.
    comp_weights = np.arange(1, 7) ** -1.5
    voicings = [sum(_harmonic_tone(_note_hz(key_hz, s), int(0.6 * sr), sr, comp_weights, 0.2) for s in chord)
                for chord in chords]
    for i, onset in enumerate(beats):
        if rng.random() < 0.25:
            _add_hits(out, voicings[(i // 4) % len(chords)], np.array([onset + swing * beat]), np.array([0.12]), sr)
    return _finish(out, rng)


def render_hiphop(*, rng: np.random.Generator, sr: int = SR, duration_s: float, tempo_bpm: float,
                  key_hz: float) -> np.ndarray:
    """Boom-bap loop near 90 BPM: heavy long kick, loud snare on 2 and 4, swung hats, low sine bass, crackle."""
    n = _n_samples(duration_s, sr)
    out = np.zeros(n)
    beat, beats = _beats(duration_s, tempo_bpm)
    bars = np.arange(0, duration_s, 4 * beat)
    kick_steps = np.array([0, 7, 10]) if rng.random() < 0.5 else np.array([0, 3, 10])  # in sixteenths
    kicks = (bars[:, None] + kick_steps[None, :] * beat / 4).ravel()
    _add_hits(out, _kick(rng, sr, rng.uniform(0.3, 0.45), rng.uniform(90, 130), rng.uniform(38, 50)), kicks,
              np.ones(len(kicks)), sr)
    snare = _snare(rng, sr, rng.uniform(0.15, 0.25), rng.uniform(170, 210))
    _add_hits(out, snare, beats[1::2], np.full(len(beats[1::2]), 0.9), sr)
    swing = rng.uniform(0.58, 0.66)
    hats = np.sort(np.concatenate([beats, beats + swing * beat]))
    hat = _noise_hit(rng, sr, 0.03, "highpass", 7500.0)
    _add_hits(out, hat, hats, rng.uniform(0.12, 0.25, len(hats)), sr)
    # Bass follows the kick with a sustained low sine.
    bass_hz = _note_hz(key_hz / 4 if key_hz > 120 else key_hz / 2, rng.choice([0, 3, 5, 7]))
    bass_len = int(beat * 1.5 * sr)
    bass = np.sin(2 * np.pi * bass_hz * _t(bass_len, sr)) * _decay(bass_len, sr, beat * 0.8, 0.01)
    _add_hits(out, bass, kicks, np.full(len(kicks), 0.6), sr)
    # A dusty, low-passed chord sample on each bar, and vinyl crackle.
    chord = sum(_harmonic_tone(_note_hz(key_hz, s), int(2 * beat * sr), sr, np.arange(1, 6) ** -1.0, beat)
                for s in (0, 3, 7, 10))
    _add_hits(out, _filter(chord, sr, "lowpass", 1500.0), bars, np.full(len(bars), 0.15), sr)
    crackle = np.zeros(n)
    pops = rng.integers(0, n, int(duration_s * rng.uniform(5, 20)))
    crackle[pops] = rng.uniform(-0.3, 0.3, len(pops))
    return _finish(out + crackle, rng)


def render_folk(*, rng: np.random.Generator, sr: int = SR, duration_s: float, tempo_bpm: float,
                key_hz: float) -> np.ndarray:
    """Strummed acoustic guitar: Karplus-Strong strings, I-V-vi-IV chords strummed down and up, no drums."""
    n = _n_samples(duration_s, sr)
    out = np.zeros(n)
    beat, _ = _beats(duration_s, tempo_bpm)
    root = key_hz / 2 if key_hz > 165 else key_hz
    progression = [np.array([0, 7, 12, 16, 19, 24]), np.array([7, 14, 19, 23, 26]),
                   np.array([9, 16, 21, 24, 28]), np.array([5, 12, 17, 21, 24])]
    # Down on every beat, up on most off-beats (D-DU-UDU); the eighth index decides the direction.
    pattern = np.array([1, 0, 1, 1, 0, 1, 1, 1], dtype=bool) if rng.random() < 0.7 else np.ones(8, dtype=bool)
    damping = rng.uniform(0.993, 0.998)
    brightness = rng.uniform(0.3, 0.8)
    ring = int(min(1.5, 4 * beat) * sr)
    strings: dict[tuple[int, int], np.ndarray] = {}  # one string tone per chord and string, reused per strum
    for i, onset in enumerate(np.arange(0, duration_s, beat / 2)):
        if not pattern[i % 8]:
            continue
        c = (i // 8) % len(progression)
        chord = progression[c]
        down = i % 2 == 0
        order = range(len(chord)) if down else range(len(chord) - 1, 0, -1)  # up-strokes skip the low string
        spread = rng.uniform(0.008, 0.015)
        for j, s in enumerate(order):
            key = (c, s)
            if key not in strings:
                strings[key] = _pluck(_note_hz(root, chord[s]), ring, sr, rng, damping, brightness)
            gain = (0.5 if down else 0.3) * rng.uniform(0.8, 1.0)
            _add_hits(out, strings[key], np.array([onset + j * spread]), np.array([gain]), sr)
    out = _filter(out, sr, "highpass", 70.0)
    return _finish(out, rng)


# ---------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Style:
    name: str
    render: Renderer
    tempo_range: tuple[float, float]


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("electronic", render_electronic, (118.0, 132.0)),
        Style("metal", render_metal, (165.0, 210.0)),
        Style("classical", render_classical, (48.0, 72.0)),
        Style("jazz", render_jazz, (120.0, 190.0)),
        Style("hiphop", render_hiphop, (84.0, 96.0)),
        Style("folk", render_folk, (90.0, 125.0)),
    )
}


@dataclass(frozen=True)
class TrackParams:
    style: str
    duration_s: float
    tempo_bpm: float
    key_hz: float


def draw_params(style: str, rng: np.random.Generator, duration_range_s: tuple[float, float] = (6.0, 12.0)
                ) -> TrackParams:
    """Tempo within the style's range, a key among the 12 semitones from A2 (110 Hz), a length in the range."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLES)}")
    lo, hi = STYLES[style].tempo_range
    return TrackParams(
        style=style,
        duration_s=round(float(rng.uniform(*duration_range_s)), 2),
        tempo_bpm=round(float(rng.uniform(lo, hi)), 1),
        key_hz=float(110.0 * 2.0 ** (int(rng.integers(0, 12)) / 12.0)),
    )


def render_track(style: str, *, rng: np.random.Generator, sr: int = SR,
                 duration_range_s: tuple[float, float] = (6.0, 12.0)) -> tuple[np.ndarray, TrackParams]:
    """Draw a track's tempo, key and length for `style`, then render it; everything comes from `rng`."""
    params = draw_params(style, rng, duration_range_s)
    audio = STYLES[style].render(rng=rng, sr=sr, duration_s=params.duration_s, tempo_bpm=params.tempo_bpm,
                                 key_hz=params.key_hz)
    return audio, params
