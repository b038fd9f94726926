"""Typer sub-commands. Each parses options, calls one library function and maps domain errors.

Heavy libraries (librosa, sklearn, pandas) are imported inside command bodies, never here.
"""
