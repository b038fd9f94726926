"""Write the demo's audio library and the class sheet that proposes it.

Layout under `out_dir`:
    audio/<Artist> - <Title>.mp3|.flac      the sheet's tracks (formats alternate)
    extra/<thinnest genre>/<Artist> - <Title>.mp3|.flac   tracks NOT in the sheet, to supplement the thinnest genre
    sheet.csv                               student, song, coarse_genre, genre1, genre2, genre3

The sheet is deliberately imperfect, like a real class sheet: unequal genre counts (one genre with about half the
tracks), spelling variants of one genre ("Hip-Hop", "Hip_Hop", "hip hop"), one song proposed by two students, one
electronic track filed as Folk (the label audit should find it), and a few bad rows (an empty song, a song
without " - ", a blank coarse genre) that the sync must report and skip.
Names are invented from word lists (no real artists) and everything follows from `seed`.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from music_classifier.demo.synth import SR, TrackParams, render_track
from music_classifier.ingest.keys import normalise_artist, normalise_title, track_key

SHEET_COLUMNS = ("student", "song", "coarse_genre", "genre1", "genre2", "genre3")

# Style -> the genre's display name on the sheet.
GENRES: dict[str, str] = {
    "electronic": "Electronic",
    "metal": "Metal",
    "classical": "Classical",
    "jazz": "Jazz",
    "hiphop": "Hip-Hop",
    "folk": "Folk",
}
THINNEST_STYLE = "classical"
MISLABEL_FROM, MISLABEL_TO = "electronic", "folk"  # one planted sheet mistake (see _plant_mislabel)
# Tracks per genre as a multiple of tracks_per_genre; the thinnest genre gets about half (see _genre_counts).
_COUNT_FACTORS = {"electronic": 1.25, "metal": 1.0, "jazz": 0.875, "hiphop": 1.0, "folk": 0.75}
# How students spell the coarse genre: rows cycle through these, so normalisation has work to do.
_SPELLINGS = {"hiphop": ("Hip-Hop", "Hip_Hop", "hip hop"), "electronic": ("Electronic", "electronic")}
_SUBGENRES = {
    "electronic": ("Techno", "House", "Trance", "Minimal Techno"),
    "metal": ("Thrash Metal", "Heavy Metal", "Speed Metal", "Groove Metal"),
    "classical": ("Romantic", "Impressionist", "Solo Piano", "Minimalism"),
    "jazz": ("Bebop", "Swing", "Hard Bop", "Cool Jazz"),
    "hiphop": ("Boom Bap", "East Coast", "Lo-Fi Hip Hop", "Jazz Rap"),
    "folk": ("Americana", "Singer-Songwriter", "Indie Folk", "Bluegrass"),
}
# Invented name parts. Artist = first + second word; titles = first + second word. Checked against nothing real,
# but the combinations are odd enough that a clash with an actual act would be an accident.
_ARTISTS = {
    "electronic": (("Neon", "Kilohertz", "Glass", "Mirrorball", "Subsonic", "Velour", "Pixel", "Quartz", "Lumen"),
                   ("Orchard", "Assembly", "Syndicate", "Ferrets", "Circuitry", "Gazebo", "Parlour", "Drift")),
    "metal": (("Molten", "Rusted", "Howling", "Cinder", "Frostbitten", "Vorpal", "Ashen", "Gravel", "Serrated"),
              ("Gallowglass", "Pyre", "Monolith", "Wyrmhold", "Carrion", "Bastion", "Tombward", "Ironwood")),
    "classical": (("Ilse", "Tomasz", "Margit", "Anselm", "Véra", "Leopold", "Oriane", "Casimir", "Hedda"),
                  ("Varnholm", "Quellenberg", "Odravec", "Lindqvist-Moraes", "Sarpanet", "Vintrová", "Aldecott",
                   "Brunnhaus")),
    "jazz": (("Otis", "Minnie", "Clement", "Dolores", "Ambrose", "Lula", "Thaddeus", "Rosalind", "Horace"),
             ("Pennywhistle Trio", "Bellweather Quartet", "Greenleaf Combo", "Sable Quintet", "Marchetti Trio",
              "Holloway Sextet", "Kingsbridge Four")),
    "hiphop": (("Lil", "MC", "Big", "Young", "DJ", "Notorious", "Lyrical", "Grand"),
               ("Kettle", "Sprocket", "Parable", "Cobblestone", "Vinyl Saint", "Dumbwaiter", "Ledger", "Oracle Jones")),
    "folk": (("The Willow", "The Barley", "The Tin", "The Hollow", "Maple", "Juniper", "Cedar", "The Lantern"),
             ("Creek Ramblers", "Pickers", "Hearth Band", "Brothers Finch", "Station Singers", "Ridge Company",
              "Ferry Choir")),
}
_TITLES = {
    "electronic": (("Midnight", "Chrome", "Analog", "Orbit", "Laser", "Static", "Pulse", "Tangerine"),
                   ("Protocol", "Freeway", "Lagoon", "Reactor", "Boulevard", "Satellite", "Fever", "Mirage")),
    "metal": (("Blood", "Iron", "Storm", "Sepulchre", "Ashes", "Thunder", "Venom", "Grave"),
              ("Dominion", "Crusade", "Harvest", "Oath", "Hammer", "Furnace", "Citadel", "Reckoning")),
    "classical": (("Nocturne", "Étude", "Prelude", "Berceuse", "Impromptu", "Barcarolle", "Romance", "Elegy"),
                  ("in A flat", "in E minor", "No. 3", "in D", "No. 7", "in F sharp", "for Hedda", "No. 12")),
    "jazz": (("Blue", "Walking", "Late", "Smoky", "Velvet", "Uptown", "Twilight", "Crooked"),
             ("Avenue", "Sidestep", "Lullaby", "Strut", "Parlay", "Shuffle", "Promenade", "Riddle")),
    "hiphop": (("Concrete", "Block", "Golden", "Corner", "Rhyme", "Basement", "Subway", "Paper"),
               ("Chronicles", "Science", "Gospel", "Anthem", "Diaries", "Hustle", "Ledger", "Cipher")),
    "folk": (("Old", "Wandering", "Autumn", "River", "Little", "Lonesome", "Harvest", "Morning"),
             ("Road Home", "Kettle Song", "Ferryman", "Hollow Hill", "Sparrow", "Wagon Wheel Waltz", "Meadow",
              "Lantern Light")),
}
_STUDENTS = ("Ana", "Ben", "Chloé", "Dmitri", "Emeka", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kasia", "Luca")
# Above this rapidfuzz ratio two names might be fuzzy-matched to each other by `audio scan`; keep them apart.
_MAX_NAME_SIMILARITY = 75.0
# The extra files must stay unmatched whatever scorer the scan uses (WRatio also rewards partial overlaps).
_MAX_UNMATCHED_SIMILARITY = 70.0


@dataclass(frozen=True)
class DemoTrack:
    artist: str
    title: str
    genre: str  # display name, e.g. "Hip-Hop"
    subgenres: tuple[str, ...]
    path: Path
    params: TrackParams
    sheet_genre: str | None = None  # what the sheet says, when a student mislabelled it (the audio is `genre`)

    @property
    def song(self) -> str:
        return f"{self.artist} - {self.title}"

    @property
    def labelled(self) -> str:
        return self.sheet_genre or self.genre


@dataclass(frozen=True)
class DemoLibrary:
    root: Path
    audio_dir: Path
    extra_dir: Path  # out_dir/extra/<thinnest genre>, the files to register with --add-unmatched --genre
    sheet_csv: Path
    tracks: tuple[DemoTrack, ...]  # the sheet's tracks, one per distinct song, each with an audio file
    extra_tracks: tuple[DemoTrack, ...]
    counts: dict[str, int]  # genre display name -> distinct sheet tracks (the extras not included)
    thinnest_genre: str
    sheet_rows: int  # data rows in sheet.csv, bad and duplicate rows included
    bad_rows: int
    duplicate_song: str  # the song proposed by two students
    mislabelled: tuple[str, ...] = ()  # songs whose sheet genre is not their audio's style (for the label audit)
    sample_rate: int = SR
    formats: dict[str, int] = field(default_factory=dict)  # file extension -> files written


def _genre_counts(tracks_per_genre: int) -> dict[str, int]:
    """Unequal by design; the thinnest genre is strictly the smallest so the demo knows what to supplement."""
    thin = max(1, tracks_per_genre // 2)
    counts = {s: max(thin + 1, round(tracks_per_genre * f)) for s, f in _COUNT_FACTORS.items()}
    counts[THINNEST_STYLE] = thin
    return {s: counts[s] for s in GENRES}


class _Namer:
    """Draws invented artist/title pairs that are unique and not confusable by the scan's fuzzy matcher."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.keys: set[str] = set()
        self.names: list[str] = []

    def _pick(self, parts: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
        return f"{parts[0][self.rng.integers(len(parts[0]))]} {parts[1][self.rng.integers(len(parts[1]))]}"

    def draw(self, style: str, *, unmatched: bool = False) -> tuple[str, str]:
        """`unmatched`: a file meant to stay unmatched, so it must not resemble any name by any fuzzy measure."""
        from rapidfuzz import fuzz, process

        scorer = fuzz.WRatio if unmatched else fuzz.ratio
        limit = _MAX_UNMATCHED_SIMILARITY if unmatched else _MAX_NAME_SIMILARITY
        for _ in range(2000):
            artist, title = self._pick(_ARTISTS[style]), self._pick(_TITLES[style])
            key = track_key(artist, title)
            flat = f"{normalise_artist(artist)} {normalise_title(title)}"
            if key in self.keys:
                continue
            best = process.extractOne(flat, self.names, scorer=scorer) if self.names else None
            if best is not None and best[1] > limit:
                continue
            self.keys.add(key)
            self.names.append(flat)
            return artist, title
        raise RuntimeError(f"ran out of distinct invented names for {style}; enlarge the word lists")


def _subgenres(rng: np.random.Generator, style: str) -> tuple[str, ...]:
    k = 1 + int(rng.random() < 0.5) + int(rng.random() < 0.25)
    return tuple(str(s) for s in rng.choice(_SUBGENRES[style], size=k, replace=False))


def _write_audio(path: Path, audio: np.ndarray, sr: int) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp3":
        sf.write(path, audio, sr, format="MP3")  # libsndfile >= 1.1 encodes MP3 through LAME
    else:
        sf.write(path, audio, sr, format="FLAC", subtype="PCM_16")


def _check_formats() -> None:
    import soundfile as sf

    missing = {"MP3", "FLAC"} - set(sf.available_formats())
    if missing:
        from music_classifier.errors import ConfigError

        raise ConfigError(f"libsndfile {sf.__libsndfile_version__} cannot write {', '.join(sorted(missing))}; "
                          "the demo needs libsndfile >= 1.1 (pip install -U soundfile)")


def _progress(total: int, enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(TextColumn("generating demo audio"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=not (enabled and console.is_terminal))


def generate_demo_library(out_dir: Path, *, tracks_per_genre: int = 8, seed: int = 0,
                          duration_range_s: tuple[float, float] = (6.0, 12.0), sr: int = SR,
                          show_progress: bool = True) -> DemoLibrary:
    """Render the demo's tracks into `out_dir` and write the sheet CSV that proposes them. Deterministic in `seed`.

    Files already present are overwritten, so a rerun with the same arguments gives the same bytes for the FLACs
    and the same samples for every file.
    """
    if tracks_per_genre < 1:
        from music_classifier.errors import InputError

        raise InputError(f"--tracks-per-genre must be at least 1, got {tracks_per_genre}")
    _check_formats()
    out_dir = Path(out_dir)
    audio_dir = out_dir / "audio"
    thinnest = GENRES[THINNEST_STYLE]
    extra_dir = out_dir / "extra" / thinnest
    rng = np.random.default_rng(seed)  # names, subgenres, students and row order; audio has its own streams
    namer = _Namer(rng)
    counts = _genre_counts(tracks_per_genre)
    n_extra = max(1, tracks_per_genre - counts[THINNEST_STYLE])

    # (style, index, folder, is_extra): plan first, so the progress bar knows the total.
    plan = [(s, i, audio_dir, False) for s in GENRES for i in range(counts[s])]
    plan += [(THINNEST_STYLE, counts[THINNEST_STYLE] + i, extra_dir, True) for i in range(n_extra)]
    tracks: list[DemoTrack] = []
    extras: list[DemoTrack] = []
    formats: dict[str, int] = {}
    style_index = {s: k for k, s in enumerate(GENRES)}
    with _progress(len(plan), show_progress) as progress:
        task = progress.add_task("audio", total=len(plan))
        for n, (style, i, folder, is_extra) in enumerate(plan):
            artist, title = namer.draw(style, unmatched=is_extra)
            subgenres = _subgenres(rng, style)
            ext = ".mp3" if n % 2 == 0 else ".flac"
            # Each track's audio comes from its own stream, so it does not shift when counts or names change.
            track_rng = np.random.default_rng([seed, style_index[style], i])
            audio, params = render_track(style, rng=track_rng, sr=sr, duration_range_s=duration_range_s)
            path = folder / f"{artist} - {title}{ext}"
            _write_audio(path, audio, sr)
            formats[ext] = formats.get(ext, 0) + 1
            track = DemoTrack(artist, title, GENRES[style], subgenres, path, params)
            (extras if is_extra else tracks).append(track)
            progress.advance(task)

    tracks, mislabelled = _plant_mislabel(tracks)
    rows, duplicate_song, bad_rows = _sheet_rows(tracks, rng)
    sheet_csv = out_dir / "sheet.csv"
    with sheet_csv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(SHEET_COLUMNS)
        writer.writerows(rows)
    return DemoLibrary(
        root=out_dir, audio_dir=audio_dir, extra_dir=extra_dir, sheet_csv=sheet_csv, tracks=tuple(tracks),
        extra_tracks=tuple(extras), counts=_sheet_counts(tracks), thinnest_genre=thinnest,
        sheet_rows=len(rows), bad_rows=bad_rows, duplicate_song=duplicate_song, sample_rate=sr, formats=formats,
        mislabelled=mislabelled,
    )


def _plant_mislabel(tracks: list[DemoTrack]) -> tuple[list[DemoTrack], tuple[str, ...]]:
    """The last electronic track goes on the sheet as Folk, as a student might file a techno track: the label
    audit should find it. Only when electronic keeps more tracks than the thinnest genre has."""
    src, dst = GENRES[MISLABEL_FROM], GENRES[MISLABEL_TO]
    mine = [k for k, t in enumerate(tracks) if t.genre == src]
    thinnest = sum(t.genre == GENRES[THINNEST_STYLE] for t in tracks)
    if len(mine) - 1 <= thinnest + 1:
        return tracks, ()
    k = mine[-1]
    tracks = [*tracks[:k], replace(tracks[k], sheet_genre=dst), *tracks[k + 1:]]
    return tracks, (tracks[k].song,)


def _sheet_counts(tracks: list[DemoTrack]) -> dict[str, int]:
    """Genre display name -> distinct sheet tracks, by the sheet's label, in GENRES order."""
    return {g: sum(t.labelled == g for t in tracks) for g in GENRES.values()}


def _sheet_rows(tracks: list[DemoTrack], rng: np.random.Generator) -> tuple[list[list[str]], str, int]:
    """One row per track in shuffled order, plus a second proposal of one song and three bad rows."""
    style_of = {v: k for k, v in GENRES.items()}
    seen: dict[str, int] = {}
    rows: list[list[str]] = []
    for t in tracks:
        style = style_of[t.labelled]
        spellings = _SPELLINGS.get(style, (t.labelled,))
        spelling = spellings[seen.get(style, 0) % len(spellings)]
        seen[style] = seen.get(style, 0) + 1
        student = _STUDENTS[int(rng.integers(len(_STUDENTS)))]
        sub = list(t.subgenres) + [""] * (3 - len(t.subgenres))
        rows.append([student, t.song, spelling, *sub])
    order = rng.permutation(len(rows))
    rows = [rows[k] for k in order]

    # The same song again, from another student: one track with two proposals, not two tracks.
    original = rows[0]
    other = next(s for s in _STUDENTS if s != original[0])
    duplicate = [other, *original[1:]]
    rows.insert(len(rows) // 2, duplicate)

    bad = [
        ["Hana", "", "Jazz", "Bebop", "", ""],  # empty song
        ["Ivo", "Untitled campfire tune", "Folk", "", "", ""],  # no " - " between artist and title
        ["Jun", "Marlowe Pike - Harbour Lights", "", "", "", ""],  # blank coarse genre
    ]
    for j, row in enumerate(bad):
        rows.insert(min(len(rows), 2 + j * max(1, len(rows) // 3)), row)
    return rows, original[1], len(bad)


if __name__ == "__main__":  # pragma: no cover - a convenience for trying the generator by hand
    lib = generate_demo_library(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-library"))
    print(lib.counts, lib.thinnest_genre, lib.sheet_csv)
