"""Decoder chatter on file descriptor 2, captured and turned into one line per file.

libsndfile decodes MP3 with libmpg123, which writes its notes (``Note: Illegal Audio-MPEG-Header
0x… at offset …``, ``Note: Trying to resync...``, ``[src/libmpg123/layer3.c:…] error: …``) straight
to the process's fd 2 from C: Python's ``sys.stderr`` and ``warnings`` never see them, so a class
decoding 40 files got screens of them with no file name. :func:`captured_decoder_notes` points fd 2
at a temporary file around a decode, keeps the decoder's lines and writes anything else (a progress
bar refreshed from another thread, say) back to the real stderr; :func:`summarise_notes` makes the
kept lines one line naming the file.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_DECODER_LINE = re.compile(r"^(Note: |Warning: |\[src/libmpg123/|\[.*mpg123.*\] )")
# One redirection at a time: fd 2 is process-wide. A second thread decoding meanwhile is not captured
# (its notes reach the first thread's capture and are summarised there) rather than made to wait.
_REDIRECT = threading.Lock()


@contextmanager
def captured_decoder_notes() -> Iterator[list[str]]:
    """Redirect fd 2 for the ``with`` body; the yielded list holds the decoder's lines afterwards.

    Lines that are not the decoder's are written back to stderr on exit, so nothing else is lost.
    When fd 2 is unavailable or another thread holds the redirection, nothing is captured.
    """
    notes: list[str] = []
    if not _REDIRECT.acquire(blocking=False):
        yield notes
        return
    try:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield notes
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield notes
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                text = sink.read().decode("utf-8", errors="replace")
                others = []
                for line in text.splitlines(keepends=True):
                    (notes if _DECODER_LINE.match(line) else others).append(line)
                notes[:] = [n.strip() for n in notes]
                if others:
                    os.write(2, "".join(others).encode("utf-8"))
    finally:
        _REDIRECT.release()


def summarise_notes(path: object, notes: list[str]) -> str | None:
    """One line for a file the decoder complained about while decoding it, or None without notes.

    e.g. ``song.mp3: the MP3 decoder skipped damaged data (3 notes; first: Illegal Audio-MPEG-Header
    0x5f82c2d9 at offset 3537)``.
    """
    if not notes:
        return None
    first = next((n for n in notes if "Illegal" in n or "error" in n), notes[0])
    first = re.sub(r"^(Note|Warning): |^\[[^\]]*\] ", "", first).rstrip(".")
    return (f"{path}: the MP3 decoder skipped damaged data ({len(notes)} note{'s' if len(notes) != 1 else ''}; "
            f"first: {first}); the rest of the file was decoded")
