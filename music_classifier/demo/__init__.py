"""The one-command demo's material: synthetic music in six styles and a class sheet that proposes it.

`synth` renders audio (pure numpy/scipy, seeded, fast); `library` writes the tracks as mp3/flac files with invented
artist and title names plus a sheet CSV in the class sheet's columns, flaws included (unequal genre counts, spelling
variants, a song proposed twice, bad rows), so that the demo exercises the same paths a real class sheet does.
"""
