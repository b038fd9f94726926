"""The model registry: a row in ``models`` plus a skops file whose sha256 the row records.

Pickle runs code on load; skops does not, but only if the caller says which types to trust. A model
is loaded only after (1) the file's sha256 equals the registry's and (2) every type skops reports as
untrusted belongs to scikit-learn or NumPy (an allowlist by module). Anything else is refused,
named in the error. MODEL is always a registry id, never a path.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update

from music_classifier.db.tables import models
from music_classifier.errors import InputError

# A type is trusted when its dotted name starts with one of these (the classes a Pipeline of ours holds).
TRUSTED_TYPE_PREFIXES = ("sklearn.", "numpy.")
SUMMARY_COLUMNS = ("id", "dataset_name", "kind", "cv_score", "created_at")


def library_versions() -> dict[str, str]:
    import numpy
    import pandas
    import scipy
    import sklearn
    import skops

    return {"python": platform.python_version(), "sklearn": sklearn.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "skops": skops.__version__, "pandas": pandas.__version__}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def store_model(conn: Connection, pipeline: Any, row: dict[str, Any], *, models_path: Path) -> int:
    """Insert the registry row, write the skops file, record its path and sha256. Returns the id.

    The file is written under a temporary name and renamed; if anything fails it is removed, and the
    caller's transaction rolls the row back, so no half-registered model remains.
    """
    import skops.io as sio

    model_id = conn.execute(insert(models).values(**row).returning(models.c.id)).scalar_one()
    models_path = Path(models_path)
    models_path.mkdir(parents=True, exist_ok=True)
    final = (models_path / f"model-{model_id}-{os.getpid()}.skops").resolve()
    tmp = final.with_suffix(".skops.tmp")
    try:
        sio.dump(pipeline, tmp)
        digest = file_sha256(tmp)
        final = final.with_name(f"model-{model_id}-{digest[:12]}.skops")
        os.replace(tmp, final)
        conn.execute(update(models).where(models.c.id == model_id)
                     .values(file_path=str(final), file_sha256=digest))
    except BaseException:
        for p in (tmp, final):
            p.unlink(missing_ok=True)
        raise
    _remove_file_on_rollback(conn, final)
    return int(model_id)


def _remove_file_on_rollback(conn: Connection, path: Path) -> None:
    """If the caller's transaction rolls back, the row is gone: remove its file too (no orphans).

    Listeners live on this Connection object only (each ``engine.begin()`` makes a new one); after the
    first commit or rollback they do nothing.
    """
    from sqlalchemy import event

    pending = [True]

    def on_rollback(_conn: Connection) -> None:
        if pending[0]:
            path.unlink(missing_ok=True)
        pending[0] = False

    def on_commit(_conn: Connection) -> None:
        pending[0] = False

    event.listen(conn, "rollback", on_rollback)
    event.listen(conn, "commit", on_commit)


def get_model_row(conn: Connection, model_id: int) -> dict[str, Any]:
    row = conn.execute(select(models).where(models.c.id == int(model_id))).mappings().first()
    if row is None:
        raise InputError(f"model {model_id} not found (see: music-classifier models list)")
    return dict(row)


def list_models(conn: Connection) -> list[dict[str, Any]]:
    cols = [models.c[c] for c in SUMMARY_COLUMNS] + [models.c.test_metrics]
    out = []
    for r in conn.execute(select(*cols).order_by(models.c.id)).mappings():
        d = {c: r[c] for c in SUMMARY_COLUMNS}
        tm = r["test_metrics"] or {}
        d["test_accuracy"] = tm.get("accuracy")
        d["test_macro_f1"] = tm.get("macro_f1")
        d["genres"] = (tm.get("confusion") or {}).get("labels", [])
        out.append(d)
    return out


def untrusted_types_refused(types: list[str]) -> list[str]:
    return [t for t in types if not t.startswith(TRUSTED_TYPE_PREFIXES)]


def load_model(conn: Connection, model_id: int, *, settings: Any = None) -> tuple[Any, dict[str, Any]]:
    """(fitted Pipeline, registry row) after the sha256 and trusted-types checks.

    ``settings`` is accepted for symmetry with the other entry points (the row stores an absolute path).
    """
    import skops.io as sio

    row = get_model_row(conn, model_id)
    if not row.get("file_path") or not row.get("file_sha256"):
        raise InputError(f"model {model_id} has no stored file")
    path = Path(row["file_path"])
    if not path.is_file():
        raise InputError(f"model {model_id}: file {path} is missing")
    digest = file_sha256(path)
    if digest != row["file_sha256"]:
        raise InputError(f"model {model_id}: file {path} has sha256 {digest[:12]}…, the registry says "
                         f"{row['file_sha256'][:12]}…; refusing to load a changed file")
    try:
        types = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - a corrupt file, whatever the library raises
        raise InputError(f"model {model_id}: {path} is not a readable skops file ({exc})") from None
    refused = untrusted_types_refused(types)
    if refused:
        raise InputError(f"model {model_id}: {path} holds types outside the sklearn/numpy allowlist: "
                         f"{', '.join(refused)}; refusing to load")
    return sio.load(path, trusted=types), row
