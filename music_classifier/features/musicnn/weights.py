"""The MSD_musicnn weights, read from the installed ``musicnn`` package (never downloaded).

``pip install --no-deps musicnn==0.1.0`` puts the trained TF1 checkpoint into
``site-packages/musicnn/MSD_musicnn/`` (files ``.index`` and ``.data-00000-of-00001``). This module
finds that folder without importing the package's TensorFlow code, checks both files' sha256 against
the constants below (so a different or altered checkpoint is refused, not silently used), reads them
with :mod:`.checkpoint` and keeps the result per process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from music_classifier.features.musicnn.checkpoint import read_bundle
from music_classifier.features.musicnn.errors import MusicnnError

NETWORK_NAME = "MSD_musicnn"
INSTALL_HINT = "pip install --no-deps musicnn==0.1.0"
INDEX_FILE = ".index"
DATA_FILE = ".data-00000-of-00001"
#: sha256 of the checkpoint files of musicnn 0.1.0's MSD_musicnn.
INDEX_SHA256 = "87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7822d3282c8"
DATA_SHA256 = "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6"
#: The identifier stored with the features: the data file's sha256 (the index only locates tensors).
WEIGHTS_SHA256 = DATA_SHA256


def checkpoint_dir() -> Path:
    """The installed ``musicnn`` package's ``MSD_musicnn`` folder (the package is located, not imported).

    Raises
    ------
    MusicnnError
        The package is not installed, or its checkpoint files are missing.
    """
    try:
        spec = importlib.util.find_spec("musicnn")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MusicnnError(f"the musicnn package (network weights) is not installed; run: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / NETWORK_NAME
    for name in (INDEX_FILE, DATA_FILE):
        if not (folder / name).is_file():
            raise MusicnnError(
                f"the musicnn checkpoint file {NETWORK_NAME}/{name} is missing; reinstall: {INSTALL_HINT}"
            )
    return folder


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checkpoint(folder: Path) -> None:
    """Raise :class:`MusicnnError` unless both checkpoint files have the expected sha256."""
    for name, expected in ((INDEX_FILE, INDEX_SHA256), (DATA_FILE, DATA_SHA256)):
        if file_sha256(folder / name) != expected:
            raise MusicnnError(
                f"the musicnn checkpoint file {NETWORK_NAME}/{name} is altered (sha256 mismatch); "
                f"reinstall: pip install --force-reinstall --no-deps musicnn==0.1.0"
            )


@functools.lru_cache(maxsize=1)
def load_weights() -> dict[str, np.ndarray]:
    """The network's trained tensors (name -> float32 array), verified, read once per process.

    Optimizer slots (``*/Adam*``, ``beta*_power``) are left out.

    Raises
    ------
    MusicnnError
        Package missing, checkpoint missing, altered or unreadable.
    """
    folder = checkpoint_dir()
    verify_checkpoint(folder)
    tensors = read_bundle(index_path=folder / INDEX_FILE, data_path=folder / DATA_FILE)
    return {
        name: np.asarray(value, dtype=np.float32)
        for name, value in tensors.items()
        if "Adam" not in name and not name.startswith("beta")
    }
