"""A class's library as students name it, built from ../shared/data audio (tests/test_real_library.py, docs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import soundfile as sf
from audio_helpers import tag_file

GTZAN = "audio/gtzan_subset_zenny126"
CC = "audio/librosa_data"

# The sheet: (artist, title, coarse genre).
SHEET = {
    "muddy": ("Muddy Waters", "Hoochie Coochie Man", "Blues"),
    "so what": ("Miles Davis", "So What", "Jazz"),
    "blue in green": ("Miles Davis", "Blue in Green", "Jazz"),
    "vibe ace": ("Kevin MacLeod", "Vibe Ace", "Jazz"),
    "sugar plum": ("Kevin MacLeod", "Dance of the Sugar Plum Fairy", "Classical"),
    "fishin": ("Karissa Hobbs", "Let's Go Fishin'", "Country"),
    "jolene": ("Dolly Parton", "Jolene", "Country"),
    "choice": ("admiralbob77", "Choice", "Electronic"),
    "marley": ("Bob Marley", "Is This Love", "Reggae"),
    "sandman": ("Metallica", "Enter Sandman", "Metal"),
    "lucky": ("Daft Punk", "Get Lucky", "Disco"),
    "rhapsody": ("Queen", "Bohemian Rhapsody", "Rock"),
    "money": ("Pink Floyd", "Money", "Rock"),
    "let it be": ("The Beatles", "Let It Be", "Rock"),
    "beat it": ("Michael Jackson", "Beat It", "Pop"),
    "bad": ("Michael Jackson", "Bad", "Pop"),
    "hello": ("Adele", "Hello", "Pop"),
    "lose yourself": ("Eminem", "Lose Yourself", "Hip-Hop"),
    "humble": ("Kendrick Lamar", "HUMBLE.", "Hip-Hop"),
}

# The library: path -> (source clip, tags or None, the sheet song it is, or None when it is none of them).
# Every top folder is a genre folder (two spelt wrong), so the same files serve --genre-from-folder.
LIBRARY = {
    "blues/track07.flac": ("blues/blues.00000.wav", ("Muddy Waters", "Hoochie Coochie Man"), "muddy"),
    "blues/John Lee Hooker/Boom Boom.flac": ("blues/blues.00001.wav", None, None),  # no sheet row
    "Bleus/blues.00003.wav": ("blues/blues.00003.wav", None, None),  # GTZAN's own name: nothing to read
    "jazz/Miles Davis/03 - So What.wav": ("jazz/jazz.00000.wav", None, "so what"),
    "jazz/Miles Davis - Kind of Blue/04 Blue in Green.flac": ("jazz/jazz.00001.wav", None, "blue in green"),
    "jazz/Kevin_MacLeod_-_Vibe_Ace.ogg": ("CC:Kevin_MacLeod_-_Vibe_Ace.ogg", None, "vibe ace"),
    "classical/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg": (
        "CC:Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg", None, "sugar plum"),
    "country/Karissa_Hobbs_-_Lets_Go_Fishin.ogg": ("CC:Karissa_Hobbs_-_Lets_Go_Fishin.ogg", None, "fishin"),
    "classical/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg": (
        "CC:Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg", None, None),  # no sheet row
    "country/Dolly Parton - Jolene ft. Porter Wagoner (Lyrics).flac": ("country/country.00000.wav", None, "jolene"),
    "electronic/admiralbob77_-_Choice_-_Drum-bass.ogg": ("CC:admiralbob77_-_Choice_-_Drum-bass.ogg", None, "choice"),
    "reggae/Bob_Marley_-_Is_This_Love.mp3": ("reggae/reggae.00000.wav", None, "marley"),
    "metal/01 - intro.wav": ("metal/metal.00001.wav", None, None),
    "metal/02 - outro.wav": ("metal/metal.00002.wav", None, None),
    "Metall/Metallica_Enter_Sandman.ogg": ("metal/metal.00000.wav", None, "sandman"),
    "disco/Daft Punk - Get Lucky (Official Video) [HQ].wav": ("disco/disco.00000.wav", None, "lucky"),
    "rock/Queen - Bohemian Rapsody.mp3": ("rock/rock.00000.wav", None, "rhapsody"),
    "rock/Pink_Floyd_Money.flac": ("rock/rock.00001.wav", None, "money"),
    "rock/Beatles - Let It Go.ogg": ("rock/rock.00002.wav", None, None),  # decoy for "Let It Be"
    "pop/Michael Jackson - Bad (Remastered).wav": ("pop/pop.00000.wav", None, "bad"),
    "pop/Adele - Hallo.wav": ("pop/pop.00001.wav", None, None),  # decoy: a short title gets no typo tolerance
    "hiphop/track12.mp3": ("hiphop/hiphop.00000.wav", ("Eminem", "Lose Yourself"), "lose yourself"),
    "hiphop/Kendrick Lamar - HUMBLE.mp3": ("hiphop/hiphop.00001.wav", ("Unknown Artist", "Track 5"), "humble"),
}
# The right coarse genre of each top folder (the two near misses after `genres alias`).
FOLDER_GENRE = {"blues": "Blues", "Bleus": "Blues", "jazz": "Jazz", "classical": "Classical", "country": "Country",
                "electronic": "Electronic", "reggae": "Reggae", "metal": "Metal", "Metall": "Metal",
                "disco": "Disco", "rock": "Rock", "pop": "Pop", "hiphop": "Hip-Hop"}
SECONDS = 2.0


def build_library(shared: Path, root: Path) -> None:
    for rel, (source, tags, _) in LIBRARY.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.startswith("CC:"):
            shutil.copyfile(shared / CC / source[3:], target)  # a real file under its real name
        else:
            info = sf.info(shared / GTZAN / source)
            data, rate = sf.read(shared / GTZAN / source, frames=int(SECONDS * info.samplerate), dtype="float32")
            kind = {".flac": {"format": "FLAC"}, ".ogg": {"format": "OGG", "subtype": "VORBIS"},
                    ".mp3": {"format": "MP3"}, ".wav": {"subtype": "PCM_16"}}[target.suffix]
            sf.write(target, data, rate, **kind)
        if tags is not None:
            tag_file(target, *tags)


def write_sheet_csv(path: Path) -> Path:
    """SHEET as the CSV export of a class sheet, one student per row, in SHEET's order."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "song", "coarse_genre"])
        for n, (artist, title, genre) in enumerate(SHEET.values()):
            writer.writerow([f"Student {n + 1:02d}", f"{artist} - {title}", genre])
    return path
