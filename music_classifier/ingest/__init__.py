"""Ingest: the class sheet, audio files and external track lists into the SQL tables."""
