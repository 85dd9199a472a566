"""GET /v1/workers: every worker that reported itself, alive or lost, behind the API key (both databases)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from ltx2.store.models import WorkerRecord, utcnow
from tests.api_helpers import api


def _age(store, worker_id: str, **delta) -> None:
    with store.session() as s:
        s.execute(
            update(WorkerRecord).where(WorkerRecord.id == worker_id).values(heartbeat_at=utcnow() - timedelta(**delta))
        )
        s.commit()


def test_workers_list_alive_lost_and_old(tmp_path, db_url):
    with api(tmp_path, database_url=db_url, api_keys=["k1"], stale_after_s=20) as (client, settings):
        store = client.app.state.store
        info = {"device": "cuda:0", "family": "ltx-2-19b", "tiny": False}
        store.worker_seen("gpu-a-1-aaaaaa", state="ready", device="cuda:0", model=info, pid=101)
        store.worker_seen("gpu-b-2-bbbbbb", state="busy", device="cuda:0", model=info, pid=202, job_id="j1")
        store.worker_seen("gpu-c-3-cccccc", state="stopped", device="cuda:0", model=info, pid=303)
        _age(store, "gpu-b-2-bbbbbb", seconds=60)  # killed without warning: stale heartbeat, state left busy
        _age(store, "gpu-c-3-cccccc", hours=3)  # stopped long ago

        assert client.get("/v1/workers").status_code == 401
        headers = {"Authorization": "Bearer k1"}
        body = client.get("/v1/workers", headers=headers).json()
        by_id = {w["id"]: w for w in body["workers"]}
        assert set(by_id) == {"gpu-a-1-aaaaaa", "gpu-b-2-bbbbbb"} and body["alive"] == 1
        assert body["stale_after_s"] == 20
        a, b = by_id["gpu-a-1-aaaaaa"], by_id["gpu-b-2-bbbbbb"]
        assert a["alive"] and a["state"] == "ready" and a["pid"] == 101 and a["model"] == info and a["host"]
        assert not b["alive"] and b["state"] == "busy" and b["job_id"] == "j1"
        for key in (
            "id",
            "host",
            "pid",
            "device",
            "model",
            "state",
            "job_id",
            "last_heartbeat",
            "alive",
            "started_at",
            "error",
        ):
            assert key in a
        assert [w["id"] for w in body["workers"]] == ["gpu-b-2-bbbbbb", "gpu-a-1-aaaaaa"]  # newest start first

        everyone = client.get("/v1/workers", params={"all": "true"}, headers=headers).json()["workers"]
        assert {w["id"] for w in everyone} == {"gpu-a-1-aaaaaa", "gpu-b-2-bbbbbb", "gpu-c-3-cccccc"}
        # /health-check lists the live ones too (to a caller with the key; anonymous callers get the state only).
        assert set(client.get("/health-check").json()) == {"status", "queue"}
        check = client.get("/health-check", headers=headers).json()
        assert check["status"] == "READY" and [w["id"] for w in check["workers"]] == ["gpu-a-1-aaaaaa"]
