"""Feature extractors: pure functions from audio to named numbers; they never touch the database.

- :mod:`.audio_io` decodes, mixes to mono, resamples and bounds the memory of long files.
- :mod:`.librosa_extractor` computes the GTZAN-style librosa feature set (fast path).
- :mod:`.reference` computes the same set naively, one librosa public call per feature.
- :mod:`.names` lists every feature name with its unit, in output order.
- :mod:`.median` is the exact numba running median behind the fast HPSS.
"""
