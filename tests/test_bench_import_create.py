"""benchmarks/bench_import_create.py: the table it generates is GTZAN's repeated with new names and nudged values,
and the documented import -> create commands succeed through the installed CLI. (Timings come from running it.)"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from pathlib import Path

import pandas as pd
import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_import_create.py"


def _bench():
    spec = importlib.util.spec_from_file_location("mc_benchmark_bench_import_create", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared_data
def test_generated_table_repeats_gtzan_with_new_names(shared_data, tmp_path):
    bench = _bench()
    source = shared_data / "tables" / "gtzan_features_30_sec.csv"
    bench.generate(source, tmp_path / "g.csv", 2500)
    base, out = pd.read_csv(source), pd.read_csv(tmp_path / "g.csv")
    assert len(out) == 2500 and out["filename"].is_unique
    assert (out["label"].iloc[:1000].to_numpy() == base["label"].to_numpy()).all()
    ratio = out["tempo"].iloc[1000:2000].to_numpy() / base["tempo"].to_numpy()
    assert 0.99 <= ratio.min() and ratio.max() <= 1.01 and ratio.std() > 0


@pytest.mark.shared_data
def test_import_then_create_through_the_cli(shared_data, tmp_path):
    bench = _bench()
    csv = tmp_path / "g.csv"
    bench.generate(shared_data / "tables" / "gtzan_features_30_sec.csv", csv, 1200)
    times = bench.once(f"sqlite:///{tmp_path / 'b.db'}", csv, tmp_path)
    assert set(times) == {"to_sql", "upgrade", "import", "create"}
    con = sqlite3.connect(tmp_path / "b.db")
    assert con.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == 1200
    assert con.execute("SELECT COUNT(*) FROM dataset_big").fetchone()[0] == 1200  # 10 genres of >= 100
