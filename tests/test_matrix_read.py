"""Reading float columns into one array (db/matrix_read.py) and bulk writing them (db/values.py), both databases."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import insert, text

from music_classifier.db import matrix_read
from music_classifier.db.feature_columns import GTZAN_V1
from music_classifier.db.matrix_read import read_float_matrix, read_keyed_matrix, sort_by_keys
from music_classifier.db.tables import extractions, tracks
from music_classifier.db.values import insert_rows, read_rows


def _extractions(conn, n: int) -> np.ndarray:
    conn.execute(insert(tracks), [{"id": i, "source": "csv", "track_key": f"k{i}", "artist": "a", "title": f"t{i}",
                                   "song": f"a - t{i}"} for i in range(1, n + 1)])
    conn.execute(insert(extractions), [{"id": i, "track_id": i, "extractor": "gtzan_csv", "version": "1",
                                        "params_hash": "p", "status": "done"} for i in range(1, n + 1)])
    return np.arange(1, n + 1)


@pytest.mark.parametrize(("with_nan", "expected_rows"), [(False, None), (True, None), (False, 300), (True, 120),
                                                       (False, 1000)])
def test_bulk_written_values_read_back_exactly_in_order_with_null_as_nan(engine, monkeypatch, with_nan,
                                                                         expected_rows):
    """``expected_rows``: none, exact, too few (the rest joined on), too many (the unused tail dropped)."""
    monkeypatch.setattr(matrix_read, "_BATCH_BYTES", 5000)  # many batches, rows split across chunks
    rng = np.random.default_rng(3)
    values = rng.normal(size=(300, len(GTZAN_V1))) * 10.0 ** rng.integers(-300, 300, size=(300, len(GTZAN_V1)))
    if with_nan:
        values[5, 7] = values[299, 0] = np.nan
    with engine.begin() as conn:
        ids = _extractions(conn, 300)
        insert_rows(conn, "gtzan_csv", ids[::-1], GTZAN_V1, values[::-1])  # written out of order
    with engine.connect() as conn:
        keys, X = read_keyed_matrix(conn, "gtzan_csv_values", ["extraction_id"], GTZAN_V1, order_by=["extraction_id"],
                                    expected_rows=expected_rows)
        plain = read_float_matrix(conn, "gtzan_csv_values", GTZAN_V1[:3], where="extraction_id > 290",
                                  order_by=["extraction_id"])
        stored_ids, stored = read_rows(conn, "gtzan_csv", ids.tolist(), GTZAN_V1)
        nulls = conn.execute(text(f"SELECT COUNT(*) FROM gtzan_csv_values WHERE {GTZAN_V1[7]} IS NULL "
                                  f"OR {GTZAN_V1[0]} IS NULL")).scalar_one()
    assert keys[:, 0].tolist() == ids.tolist()
    np.testing.assert_array_equal(X, values)  # bit for bit, NaN where NULL
    np.testing.assert_array_equal(plain, values[290:, :3])
    np.testing.assert_array_equal(stored[np.argsort(stored_ids)], values)
    assert nulls == (2 if with_nan else 0)  # NaN is stored as NULL on both databases


def test_empty_result_and_unknown_names(engine):
    with engine.connect() as conn:
        keys, X = read_keyed_matrix(conn, "gtzan_csv_values", ["extraction_id"], GTZAN_V1)
        assert X.shape == (0, len(GTZAN_V1)) and keys.shape == (0, 1)
        with pytest.raises(ValueError, match="invalid SQL identifier"):
            read_float_matrix(conn, "gtzan_csv_values", ['x" FROM tracks --'])
        with pytest.raises(ValueError, match="without a column"):
            insert_rows(conn, "gtzan_csv", [1], ["not_a_feature"], [[1.0]])


def test_rows_read_in_any_order_come_back_sorted_by_their_keys(engine):
    rng = np.random.default_rng(5)
    values = rng.normal(size=(120, len(GTZAN_V1)))
    order = rng.permutation(120)
    with engine.begin() as conn:
        ids = _extractions(conn, 120)
        insert_rows(conn, "gtzan_csv", ids[order], GTZAN_V1, values[order])
    with engine.connect() as conn:
        keys, X = read_keyed_matrix(conn, "(SELECT * FROM gtzan_csv_values ORDER BY mfcc1_mean) AS shuffled",
                                    ["extraction_id"], GTZAN_V1)
    assert sorted(keys[:, 0].tolist()) != keys[:, 0].tolist()
    keys, X = sort_by_keys(keys, X)
    assert keys[:, 0].tolist() == ids.tolist()
    np.testing.assert_array_equal(X, values)


@pytest.mark.parametrize("with_nan", [False, True])
def test_bulk_written_segment_rows_read_back_with_their_segment_and_start(engine, with_nan):
    from music_classifier.db.feature_columns import LIBROSA_V1

    rng = np.random.default_rng(7)
    n, k = 40, 3
    values = rng.normal(size=(n * k, len(LIBROSA_V1)))
    if with_nan:
        values[4, 2] = np.nan
    with engine.begin() as conn:
        conn.execute(insert(tracks), [{"id": i, "source": "file", "track_key": f"k{i}", "artist": "a",
                                       "title": f"t{i}", "song": f"a - t{i}"} for i in range(1, n + 1)])
        conn.execute(insert(extractions), [{"id": i, "track_id": i, "extractor": "librosa", "version": "2",
                                            "params_hash": "p", "status": "done"} for i in range(1, n + 1)])
        order = rng.permutation(n * k)  # written out of order
        ids, segs = np.repeat(np.arange(1, n + 1), k), np.tile(np.arange(k), n)
        insert_rows(conn, "librosa", ids[order], LIBROSA_V1, values[order],
                    segments=(segs[order], 1.5 * segs[order]))
        with pytest.raises(ValueError, match="no segment table"):
            insert_rows(conn, "gtzan_csv", [1], GTZAN_V1[:1], [[1.0]], segments=([0], [0.0]))
    with engine.connect() as conn:
        keys, X = read_keyed_matrix(conn, "librosa_segment_values", ["extraction_id", "segment", "start_s"],
                                    LIBROSA_V1, order_by=["extraction_id", "segment"])
        assert conn.execute(text("SELECT COUNT(*) FROM librosa_values")).scalar_one() == 0
    assert keys[:, 0].tolist() == ids.tolist() and keys[:, 1].tolist() == segs.tolist()
    np.testing.assert_array_equal(keys[:, 2], 1.5 * segs)
    np.testing.assert_array_equal(X, values)
