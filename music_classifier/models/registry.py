"""The model registry: a row in ``models`` plus a skops file whose sha256 the row records.

Pickle runs code on load; skops does not, but only for the types the caller trusts, and a trusted
*name* is all it takes: ``numpy.testing._private.utils.runstring`` named in a file is a function
that skops calls with the file's arguments. The sha256 sits in the same row as the path, so it only
catches accidents. A model is therefore loaded only after

1. its file resolves inside the models directory (``MUSIC_CLASSIFIER_MODELS_DIR``);
2. its sha256 equals the registry's;
3. every node of the file's skops tree is a plain container, a numpy array/dtype/scalar, or one of
   the classes the project's pipelines build (:data:`~music_classifier.models.pipelines.FITTED_CLASSES`),
   loaded by a loader that constructs that class; function, method and generic reduce nodes are
   refused whatever they name;
4. skops' own ``get_untrusted_types`` reports nothing outside that list, which is then exactly what
   ``skops.io.load`` is told to trust;
5. after loading and before any use, every object's arrays pass its class's check
   (:mod:`~music_classifier.models.fitted_checks`): tree children, split features, neighbour-tree
   indices and libsvm counts index compiled code's buffers unchecked, so a bad one would read out of
   bounds (a segfault), not raise.

Anything else is refused with one line naming what was found. MODEL is always a registry id, never
a path. store_model runs the same check, so a model the loader would refuse is never registered.
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
from music_classifier.models.cv import estimate_text
from music_classifier.models.fitted_checks import ModelArraysError, check_fitted_model

# Plain data and numpy's array/dtype/scalar types: what any fitted pipeline's attributes are made of.
DATA_TYPES = frozenset({
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.str", "builtins.int", "builtins.float",
    "builtins.bool", "builtins.NoneType", "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.float32",
    "numpy.int64", "numpy.int32", "numpy.uint64", "numpy.uint32", "numpy.uint8", "numpy.int8", "numpy.bool_",
    "numpy.bool", "numpy.str_",
})
# skops loaders that build data or construct the node's own (allow-listed) class. Every other loader
# (FunctionNode, MethodNode, PartialNode, ConstructorFromReduceNode, OperatorFuncNode, ...) calls or
# returns an arbitrary callable and is refused.
ALLOWED_LOADERS = frozenset({
    "DictNode", "ListNode", "TupleNode", "JsonNode", "TypeNode", "NdArrayNode", "DTypeNode", "ObjectNode",
    "TreeNode", "LossNode", "RandomGeneratorNode",
})
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
        audit_model_file(tmp, action="store")  # never register a model the loader would refuse
        try:
            check_fitted_model(pipeline)
        except ModelArraysError as exc:
            raise ModelArraysError(f"{exc}; refusing to store it") from None
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
    cols = [models.c[c] for c in SUMMARY_COLUMNS] + [models.c.test_metrics, models.c.params]
    out = []
    for r in conn.execute(select(*cols).order_by(models.c.id)).mappings():
        d = {c: r[c] for c in SUMMARY_COLUMNS}
        tm = r["test_metrics"] or {}
        d["test_accuracy"] = tm.get("accuracy")
        d["test_macro_f1"] = tm.get("macro_f1")
        d["genres"] = (tm.get("confusion") or {}).get("labels", []) or (r["params"] or {}).get("classes", [])
        d["basis"] = model_basis({"params": r["params"]})
        out.append(d)
    return out


def allowed_types() -> frozenset[str]:
    from music_classifier.models.pipelines import model_file_classes

    return DATA_TYPES | model_file_classes()


def model_basis(row: dict[str, Any]) -> str:
    """"final" (fitted on every track of its dataset) or "held-out split" (fitted on the training part)."""
    return str((row.get("params") or {}).get("model_basis") or "held-out split")


def describe_basis(row: dict[str, Any]) -> str:
    """One line: which kind of model this is, what it was fitted on, and its accuracy estimate."""
    params = row.get("params") or {}
    n_train = params.get("n_train_tracks")
    est = params.get("estimate") or {}
    estimate = f"; estimated accuracy {estimate_text(est)}" if est else ""
    if model_basis(row) == "final":
        return f"model {row['id']} is a final model, fitted on all {n_train} tracks of {row['dataset_name']}{estimate}"
    if n_train is None:
        return f"model {row['id']} is a held-out-split model, fitted on part of {row['dataset_name']}{estimate}"
    held = params.get("n_test_tracks")
    return (f"model {row['id']} is a held-out-split model, fitted on {n_train} tracks of {row['dataset_name']} "
            f"({held} held out){estimate}")


def untrusted_types_refused(types: list[str]) -> list[str]:
    """The names in ``types`` outside the exact allow-list."""
    allowed = allowed_types()
    return [t for t in types if t not in allowed]


def _schema_nodes(obj: Any) -> list[tuple[str, str]]:
    """``(loader, module.Class)`` of every node in a skops schema (every dict naming a class)."""
    found: list[tuple[str, str]] = []
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__class__" in item or "__loader__" in item:
                found.append((str(item.get("__loader__")), f"{item.get('__module__')}.{item.get('__class__')}"))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def audit_model_file(path: Path, *, action: str = "load") -> list[str]:
    """The exact types to pass to ``skops.io.load``; InputError naming every node outside the allow-list.

    Reads the schema only: nothing in the file is imported or called.
    """
    import json
    import zipfile

    import skops.io as sio

    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - a corrupt file, whatever the library raises
        raise InputError(f"{path} is not a readable skops file ({type(exc).__name__}: {exc})") from None
    allowed = allowed_types()
    bad = sorted({f"{name} ({loader})" for loader, name in _schema_nodes(schema)
                  if loader not in ALLOWED_LOADERS or name not in allowed})
    bad += sorted(set(untrusted_types_refused(untrusted)) - {b.split(" ", 1)[0] for b in bad})
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise InputError(f"{path} holds {shown}, outside the model allow-list "
                         f"(models.pipelines.FITTED_CLASSES); refusing to {action} it")
    return untrusted


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def load_model(conn: Connection, model_id: int, *, settings: Any = None,
               models_path: Path | None = None) -> tuple[Any, dict[str, Any]]:
    """(fitted Pipeline, registry row) after the directory, sha256 and allow-list checks (module docstring).

    The models directory is ``models_path``, else ``settings.models_path`` (default: the environment's).
    """
    import skops.io as sio

    if models_path is None:
        if settings is None:
            from music_classifier.settings import get_settings

            settings = get_settings()
        models_path = settings.models_path
    row = get_model_row(conn, model_id)
    if not row.get("file_path") or not row.get("file_sha256"):
        raise InputError(f"model {model_id} has no stored file")
    path = Path(row["file_path"])
    if not _inside(path, Path(models_path)):
        raise InputError(f"model {model_id}: file {path} is outside the models directory {models_path} "
                         "(MUSIC_CLASSIFIER_MODELS_DIR); refusing to load")
    if not path.is_file():
        raise InputError(f"model {model_id}: file {path} is missing")
    digest = file_sha256(path)
    if digest != row["file_sha256"]:
        raise InputError(f"model {model_id}: file {path} has sha256 {digest[:12]}…, the registry says "
                         f"{row['file_sha256'][:12]}…; refusing to load a changed file")
    try:
        types = audit_model_file(path)
    except InputError as exc:
        raise InputError(f"model {model_id}: {exc}") from None
    try:
        pipeline = sio.load(path, trusted=types)
    except Exception as exc:  # noqa: BLE001 - allow-listed classes refusing their own state (sklearn's checks)
        reason = " ".join(str(exc).split())  # one line, whatever the library's message
        raise InputError(f"model {model_id}: {path} does not load ({type(exc).__name__}: {reason}); "
                         "refusing to use it") from None
    try:
        check_fitted_model(pipeline)
    except ModelArraysError as exc:
        raise ModelArraysError(f"model {model_id}: {path}: {exc}; refusing to use it") from None
    return pipeline, row
