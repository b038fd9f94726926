"""A small class for the `serve` tests: tracks with WAV files in a library root, students, librosa
features, a dataset, a stored audit and a registered model; plus the tracks a guard must refuse."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from models_helpers import add_features, add_track, genre_id, separable_values
from sqlalchemy import insert, update

from music_classifier.db.feature_columns import MSD_TAG_COLUMNS_V1
from music_classifier.db.tables import proposals, service_state, students, track_genres, tracks
from music_classifier.models.datasets import DatasetDefinition, create_dataset

GENRES = ["Rock", "Jazz", "Pop"]
PER_GENRE = 8
RATE = 22050
EVIL_TITLE = '<script>alert("x")</script>'
EVIL_ARTIST = '"><img src=x onerror=alert(1)>'


@dataclass
class ServedClass:
    library: Path
    grid: Path
    ids: dict[str, list[int]] = field(default_factory=dict)
    evil: int = 0  # the track whose title and artist are markup
    no_audio: int = 0
    escaping_path: int = 0  # stored path "../outside.wav": a file outside the root
    escaping_link: int = 0  # a symlink inside the root that leads outside
    model_id: int = 0
    tagged: int = 0
    flipped: list[int] = field(default_factory=list)  # tracks the sheet files under a wrong genre

    @property
    def first(self) -> int:
        return self.ids[GENRES[0]][0]


def write_wav(path: Path, *, freq: float, seconds: float = 4.0) -> Path:
    """A quiet sine (with a little noise): real audio a browser plays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    data = 0.2 * np.sin(2 * np.pi * freq * t) + np.random.default_rng(int(freq)).normal(0, 0.01, t.size)
    sf.write(path, data.astype("float32"), RATE, subtype="PCM_16")
    return path


def build_class(engine, tmp_path: Path, *, audit: bool = True, model: bool = True) -> ServedClass:
    from music_classifier.models.audit import run_audit
    from music_classifier.models.train import TrainOptions, train_model

    library = (tmp_path / "library").resolve()
    library.mkdir()
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"rf": {"n_estimators": [25]}}))
    served = ServedClass(library=library, grid=grid)
    rng = np.random.default_rng(0)
    with engine.begin() as conn:
        conn.execute(insert(service_state).values(key="library_root", value=str(library)))
        sid = [int(conn.execute(insert(students).values(name=n).returning(students.c.id)).scalar_one())
               for n in ("ana", "ben", "<b>chloé</b>")]
        n = 0
        for gi, genre in enumerate(GENRES):
            for j in range(PER_GENRE):
                tid = add_track(conn, key=f"{genre}-{j}", genre=genre, source="file", artist=f"artist {genre} {j}",
                                title=f"{genre} song {j}")
                rel = f"{genre.lower()}/{genre} song {j}.wav"
                write_wav(library / rel, freq=220.0 * (gi + 1) + 10 * j)
                conn.execute(update(tracks).where(tracks.c.id == tid).values(audio_path=rel))
                add_features(conn, tid, "librosa", separable_values("librosa", gi, rng))
                conn.execute(insert(proposals).values(student_id=sid[n % 3], track_id=tid, sheet_row=n + 2))
                served.ids.setdefault(genre, []).append(tid)
                n += 1
        served.tagged = served.ids["Jazz"][0]
        add_features(conn, served.tagged, "musicnn",
                     {c: (0.9 if c == "tag_jazz" else 0.01 * (i % 7)) for i, c in enumerate(MSD_TAG_COLUMNS_V1)})
        served.evil = add_track(conn, key="evil", genre="Rock", source="file", artist=EVIL_ARTIST, title=EVIL_TITLE)
        served.no_audio = add_track(conn, key="silent", genre="Pop", source="sheet", artist="Nobody", title="No file")
        outside = tmp_path / "outside.wav"
        write_wav(outside, freq=500)
        served.escaping_path = add_track(conn, key="escape", genre="Pop", source="file", artist="E", title="Escape")
        conn.execute(update(tracks).where(tracks.c.id == served.escaping_path).values(audio_path="../outside.wav"))
        os.symlink(outside, library / "link.wav")
        served.escaping_link = add_track(conn, key="link", genre="Pop", source="file", artist="L", title="Link")
        conn.execute(update(tracks).where(tracks.c.id == served.escaping_link).values(audio_path="link.wav"))
        # A Rock track filed under Pop and a Jazz track under Rock on the sheet: the audit's suspects.
        served.flipped = [served.ids["Rock"][1], served.ids["Jazz"][2]]
        for track_id, wrong in zip(served.flipped, ("Pop", "Rock"), strict=True):
            conn.execute(update(track_genres).where(track_genres.c.track_id == track_id, track_genres.c.rank == 0)
                         .values(genre_id=genre_id(conn, wrong)))
        create_dataset(conn, "class", DatasetDefinition(features="librosa", top=len(GENRES), min_per_genre=3))
        if audit:
            run_audit(conn, "class", kind="knn", n_splits=3, n_repeats=1, seed=0)
    if model:
        with engine.begin() as conn:
            served.model_id = train_model(conn, "class", TrainOptions(kind="rf", grid=grid, cv=3, repeats=1),
                                          models_path=Path(os.environ["MUSIC_CLASSIFIER_MODELS_DIR"])).model_id
    return served
