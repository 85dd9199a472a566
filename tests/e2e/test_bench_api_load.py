"""bench/api_load.py, small: a real `avatar serve` (API + tiny-checkpoint worker), 5 clients for 3 s."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROUTES = ("GET /v1/predictions/{id}", "GET /status/{id}", "GET /v1/predictions?limit=20", "POST /v1/predictions")


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "api_load.py"
    spec = importlib.util.spec_from_file_location("api_load_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.mark.timeout(120)
def test_small_load_hits_every_route_without_errors(bench, tiny):
    result = bench.main(["--clients", "5", "--duration", "3"])

    assert set(result["routes"]) == set(ROUTES)
    for route, r in result["routes"].items():
        assert r["count"] > 0, route
        for key in ("p50_ms", "p99_ms", "max_ms"):
            assert isinstance(r[key], float) and r[key] >= 0, (route, key, r[key])
        assert r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], (route, r)
    # Any non-2xx answer or exception is a server error the bench saw; show what it was.
    assert result["errors"] == 0, result["error_samples"]
    assert result["jobs"]["created"] > 0
    assert result["jobs"]["failed"] == 0, result["jobs"]["failures"]
    assert result["rss_mb"]["peak"] and result["rss_mb"]["peak"] >= result["rss_mb"]["start"] > 0
    shutdown = result["server"]["shutdown"]
    assert shutdown["exit_code"] is not None and not shutdown["killed"], shutdown


@pytest.mark.timeout(240)
def test_suite_measures_the_api_beside_the_bare_baseline(bench, tiny):
    result = bench.main(["--suite", "--clients", "4", "--duration", "2", "--with-worker"])

    for side in ("saturated_api", "saturated_bare"):
        figures = result[side]
        assert figures["requests"] > 0 and figures["errors"] == 0, (side, figures)
        assert figures["p50_ms"] <= figures["p99_ms"]
    assert result["throughput_ratio"] == pytest.approx(
        result["saturated_api"]["requests_per_s"] / result["saturated_bare"]["requests_per_s"], abs=0.01
    )
    for side in ("pollers", "pollers_with_worker"):
        figures = result[side]
        assert figures["errors"] == 0, (side, figures)
        assert figures["status_reads_p50_ms"] <= figures["status_reads_p99_ms"]
    assert [g["goal"].split(":")[0] for g in result["goals"]][:3] == ["pollers"] * 3
