"""Feature jobs: the database says what must be computed, RQ (or a local process pool) computes it.

- :mod:`.tasks` holds the only functions a worker may run; each takes extraction ids (JSON).
- :mod:`.persist` writes extraction rows and results (idempotent: delete then insert).
- :mod:`.enqueue` turns a selection of tracks into ``queued`` rows and pipelined RQ jobs.
- :mod:`.worker` is the RQ worker that refuses any function outside :mod:`.tasks`.
- :mod:`.compute` runs the same tasks in-process with a process pool (no Redis needed).
- :mod:`.reconcile` makes Redis agree with the database (dead workers, lost jobs).
- :mod:`.status` summarises extractions for ``music-classifier jobs``.
- :mod:`.runtime` builds settings, engine, Redis and queue lazily, inside the job.
"""
