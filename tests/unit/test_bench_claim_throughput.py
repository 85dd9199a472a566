"""bench/claim_throughput.py, small: 30 empty jobs, 1 and 3 workers, SQLite and PostgreSQL; no timing asserts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "claim_throughput.py"
    spec = importlib.util.spec_from_file_location("claim_throughput_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_small_run_on_both_backends(bench, pg_cluster, capsys):
    url = pg_cluster.create_database("bench")
    result = bench.main(["--jobs", "30", "--workers", "1,3", "--pg-url", url])
    assert set(result["results"]) == {"sqlite", "postgresql"}
    for backend, runs in result["results"].items():
        assert set(runs) == {1, 3}
        for workers, r in runs.items():
            assert r["claimed_exactly_once"], (backend, workers, r)
            assert sum(r["per_worker"]) == 30 and len(r["per_worker"]) == workers
            assert r["jobs_per_s"] > 0 and 1 / workers - 1e-9 <= r["jain"] <= 1.0 + 1e-9
            assert 0 <= r["min_share"] <= r["max_share"] <= 1
    out = capsys.readouterr().out
    assert "workers |" in out and "postgresql jobs/s" in out and "sqlite jobs/s" in out


def test_jain_index(bench):
    assert bench.jain([10, 10, 10]) == 1.0
    assert bench.jain([30, 0, 0]) == pytest.approx(1 / 3)
