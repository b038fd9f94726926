"""The extractor registry (features/registry.py): declared names, the db layer's frozen columns, light imports."""

from __future__ import annotations

import subprocess
import sys

from music_classifier.db.feature_columns import FEATURE_VIEWS_LATEST, SEGMENT_VIEWS_LATEST
from music_classifier.features.registry import EXTRACTORS, FEATURE_NAMES


def test_every_extractor_declares_its_names_and_the_views_expose_exactly_them():
    assert set(EXTRACTORS) <= set(FEATURE_NAMES)
    for names in FEATURE_NAMES.values():
        assert names and len(set(names)) == len(names)
    for view, (extractor, columns) in {**FEATURE_VIEWS_LATEST, **SEGMENT_VIEWS_LATEST}.items():
        assert columns == FEATURE_NAMES[extractor], view


def test_registry_import_is_light_and_db_never_imports_feature_code():
    code = ("import sys; import music_classifier.features.registry, music_classifier.db.tables, "
            "music_classifier.db.views; "
            "heavy = [m for m in ('librosa', 'numba', 'music_classifier.features.librosa_extractor', "
            "'music_classifier.features.musicnn.extractor', 'music_classifier.jobs') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
