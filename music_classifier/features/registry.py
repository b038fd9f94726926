"""The extractors: add a new one HERE (its declared names, and its values' table and views in a migration).

Everything that chooses an extractor reads this table (the jobs layer and the models layer alike):
``features compute|enqueue --extractor``,
the worker's task allow-list, the in-process runner, reconciliation, ``predict`` from audio files.
An audio extractor names a module of pure feature code (it never touches the database) that
provides ``EXTRACTOR_VERSION``, optionally ``extractor_params()`` (what else makes its values
differ: network, weights digest), and the two functions :mod:`.audio_extract` calls.

Each extractor also declares the names of the values it returns (:data:`FEATURE_NAMES`), in output
order; the database layer's frozen column lists (:mod:`music_classifier.db.feature_columns`) are
tested to equal them, and its value tables have one column per declared name.

Importing this module is cheap: it reads only the name modules; feature code is imported only when a
job runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from music_classifier.errors import InputError
from music_classifier.features.musicnn.names import MUSICNN_FEATURE_NAMES
from music_classifier.features.names import GTZAN_FEATURE_NAMES, LIBROSA_FEATURE_NAMES
from music_classifier.features.spotify_names import SPOTIFY_FEATURE_NAMES

TASKS_MODULE = "music_classifier.jobs.tasks"


@dataclass(frozen=True)
class Extractor:
    name: str
    task: str  # function name in jobs.tasks (the worker runs nothing else)
    batch_size: int  # extraction ids per job: 1 = one job per track
    needs_audio: bool  # works on a track's linked audio file (computed in a process pool in-process)
    feature_module: str | None  # pure feature code (audio extractors)
    help: str
    #: ``missing`` also skips tracks done under OTHER params (Spotify values imported from a dataset).
    done_under_any_params: bool = False
    #: ``module:function`` called before any work is queued or computed: raises a one-line domain
    #: error naming the fix when the extractor cannot run here (e.g. its weights are not installed).
    preflight: str | None = None

    @property
    def task_path(self) -> str:
        return f"{TASKS_MODULE}.{self.task}"


EXTRACTORS: dict[str, Extractor] = {
    "librosa": Extractor("librosa", "librosa_track", 1, True, "music_classifier.features.librosa_extractor",
                         "83 hand-made features from the audio files"),
    "spotify": Extractor("spotify", "spotify_batch", 100, False, None,
                         "Spotify audio features by Spotify id", done_under_any_params=True),
    "musicnn": Extractor("musicnn", "musicnn_track", 1, True, "music_classifier.features.musicnn.extractor",
                         "pretrained MSD_musicnn network: 400 embedding values and 50 tag probabilities",
                         preflight="music_classifier.features.musicnn.weights:checkpoint_dir"),
}
NAMES = tuple(EXTRACTORS)

#: Every extractor's declared value names, in output order, including ``gtzan_csv`` (values imported
#: from the published GTZAN table by ``features import-csv``: stored like an extractor's, never computed).
FEATURE_NAMES: dict[str, list[str]] = {
    "librosa": LIBROSA_FEATURE_NAMES,
    "spotify": SPOTIFY_FEATURE_NAMES,
    "gtzan_csv": GTZAN_FEATURE_NAMES,
    "musicnn": MUSICNN_FEATURE_NAMES,
}
AUDIO_EXTRACTORS = tuple(n for n, e in EXTRACTORS.items() if e.needs_audio)


def get_extractor(name: str) -> Extractor:
    """The registry entry of ``name``; InputError listing the known names otherwise."""
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise InputError(f"unknown extractor {name!r}: use one of {', '.join(NAMES)}") from None
