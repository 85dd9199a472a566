"""Scale-out on PostgreSQL: one `avatar api` + three `avatar worker` processes, as docs/SCALE_OUT.md runs them.

Each worker stands in for a GPU machine: its own process, its own AVATAR_WORKER_NAME and temp folder; all of
them share the outputs folder (the documented shared storage) and the PostgreSQL database. The API serves what
any worker wrote. The tiny checkpoint on CPU does the rendering.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ltx2.settings import PROJECT_ROOT
from ltx2.store import lifecycle
from ltx2.store.jobs import JobStore
from tests.live_server import LiveServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
QUICK = {"width": 64, "height": 64, "seconds": 0.4}
# Long enough on the tiny checkpoint to be killed mid-way, short enough to run again on another worker.
LONG = {"width": 256, "height": 256, "seconds": 1.0, "mode": "two-stage", "steps": 40}
MACHINES = ("machine-a", "machine-b", "machine-c")


class ApiOnly(LiveServer):
    """`avatar api` alone (no supervised workers): the API and the reaper."""

    def __init__(self, root: Path, env: dict[str, str]):
        super().__init__(root, workers=0, env=env)

    def start(self, wait_ready: bool = False) -> ApiOnly:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ltx2.cli", "api", "--port", str(self.port)],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=PROJECT_ROOT,
        )
        self.wait_for(lambda: self._get("/health") is not None, 60, "the API to answer")
        return self


class ScaleOut:
    def __init__(self, root: Path, db_url: str):
        self.root = root
        self.db_url = db_url
        self.shared_outputs = root / "shared" / "outputs"  # stands for the NFS mount every machine has
        env = {
            "AVATAR_DATABASE_URL": db_url,
            "AVATAR_OUTPUTS_DIR": str(self.shared_outputs),
            "AVATAR_STALE_AFTER_S": "3",
            "AVATAR_WEBHOOK_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",  # the same on every machine
        }
        self.api = ApiOnly(root / "api", env={**env, "AVATAR_TEMP_DIR": str(root / "api" / "temp")})
        self.workers: dict[str, subprocess.Popen] = {}
        self.worker_env = {**self.api.env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def start_worker(self, machine: str) -> subprocess.Popen:
        folder = self.root / machine
        folder.mkdir(parents=True, exist_ok=True)
        env = {**self.worker_env, "AVATAR_WORKER_NAME": machine, "AVATAR_TEMP_DIR": str(folder / "temp")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "ltx2.cli", "worker"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=(folder / "worker.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers[machine] = proc
        return proc

    def listed(self) -> list[dict]:
        return self.api.client.get("/v1/workers").json()["workers"]

    def logs(self) -> str:
        parts = [f"--- api\n{self.api.log.read_text()[-3000:]}"]
        for machine in self.workers:
            log = self.root / machine / "worker.log"
            if log.exists():
                parts.append(f"--- {machine}\n{log.read_text()[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.api.stop()
        self.api.client.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_cluster, tiny):
    db_url = pg_cluster.create_database("scaleout")  # empty: the API and workers all migrate it at once
    out = ScaleOut(tmp_path_factory.mktemp("scale"), db_url)
    try:
        for machine in MACHINES:
            out.start_worker(machine)
        out.api.start()
        out.api.wait_for(
            lambda: len([w for w in out.listed() if w["alive"] and w["state"] == "ready"]) == 3,
            180,
            "three READY workers",
        )
        yield out
    except BaseException:
        print(out.logs())
        raise
    finally:
        out.stop()


def machine_of(worker_id: str) -> str:
    return next(m for m in MACHINES if worker_id.startswith(m + "-"))


def create(api: LiveServer, **input_) -> dict:
    response = api.client.post("/v1/predictions", json={"input": {"text": "Hello from the farm.", **input_}})
    assert response.status_code == 201, response.text
    return response.json()


def test_workers_report_themselves(cluster):
    listed = cluster.listed()
    assert len(listed) == 3 and all(w["alive"] and w["state"] == "ready" for w in listed)
    assert sorted(machine_of(w["id"]) for w in listed) == list(MACHINES)  # ids start with AVATAR_WORKER_NAME
    pids = {proc.pid for proc in cluster.workers.values()}
    for w in listed:
        assert w["pid"] in pids and w["device"] == "cpu" and w["model"]["tiny"] is True and w["host"]
        assert w["last_heartbeat"] and w["job_id"] is None
    check = cluster.api.health_check()
    assert check["status"] == "READY" and len([w for w in check["workers"] if w["alive"]]) == 3


def test_twelve_jobs_each_claimed_once_all_succeed_spread_over_workers(cluster):
    jobs = [create(cluster.api, **QUICK, seed=i) for i in range(12)]
    docs = [cluster.api.wait_status(job["id"], ("succeeded", "failed", "canceled"), timeout=300) for job in jobs]
    assert [d["status"] for d in docs] == ["succeeded"] * 12, [d["error"] for d in docs]
    # Claimed exactly once: the claim is the only move that counts an attempt, and starting → processing →
    # succeeded is two status moves.
    assert [(d["attempt"], d["status_sequence"]) for d in docs] == [(1, 2)] * 12
    store = JobStore(cluster.db_url)
    ran_on = {d["id"]: store.get(d["id"]).worker_id for d in docs}
    store.close()
    worker_ids = {w["id"] for w in cluster.listed()}
    assert set(ran_on.values()) <= worker_ids
    for d in docs:
        assert d["logs"].count("started on worker") == 1 and f"started on worker {ran_on[d['id']]}" in d["logs"]
    assert len(set(ran_on.values())) >= 2, f"all twelve jobs ran on one worker: {ran_on}"
    # The API serves what any worker wrote into the shared outputs folder.
    for d in docs:
        video = cluster.api.client.get(d["output"]["video_url"].replace(cluster.api.url, ""))
        written = (cluster.shared_outputs / d["output"]["video"]).read_bytes()
        assert video.status_code == 200 and video.content == written


def test_kill_9_of_a_worker_mid_job_is_recovered_by_another_worker(cluster):
    long_job = create(cluster.api, **LONG)

    def running_on():
        doc = cluster.api.client.get(f"/v1/predictions/{long_job['id']}").json()
        if doc["status"] != "processing" or doc["progress"]["step"] < 1:
            return None
        return next((w for w in cluster.listed() if w["job_id"] == long_job["id"] and w["alive"]), None)

    victim = cluster.api.wait_for(running_on, 120, "the long job to run a few steps")
    others = [create(cluster.api, **QUICK, seed=100 + i) for i in range(4)]
    os.kill(victim["pid"], signal.SIGKILL)
    killed_at = time.monotonic()

    def recovered():
        doc = cluster.api.client.get(f"/v1/predictions/{long_job['id']}").json()
        return doc if doc["attempt"] >= 2 or doc["status"] == "failed" else None

    doc = cluster.api.wait_for(recovered, 60, "the reaper to requeue the job")
    assert time.monotonic() - killed_at < 30
    assert "worker stopped responding: requeued" in doc["logs"]
    # Policy: requeued once; a surviving worker on another machine runs it to the end.
    final = cluster.api.wait_status(long_job["id"], ("succeeded", "failed", "canceled"), timeout=300)
    assert final["status"] == "succeeded" and final["attempt"] == 2, final["logs"]
    store = JobStore(cluster.db_url)
    finisher = store.get(long_job["id"]).worker_id
    store.close()
    assert machine_of(finisher) != machine_of(victim["id"])
    for other in others:
        doc = cluster.api.wait_status(other["id"], ("succeeded", "failed", "canceled"), timeout=300)
        assert doc["status"] == "succeeded" and doc["attempt"] == 1
    listed = {w["id"]: w for w in cluster.listed()}
    assert listed[victim["id"]]["alive"] is False  # still listed (last state kept), no longer alive
    assert sum(w["alive"] for w in listed.values()) == 2


def test_a_listings_queue_positions_match_each_jobs_own_on_postgresql(pg_cluster):
    store = JobStore(pg_cluster.create_database("positions"))
    store.migrate()
    jobs = [store.create("generate", {"n": i}, priority=i % 2)[0] for i in range(5)]
    lifecycle.claim(store, "w", ["generate"])  # the highest priority, oldest: jobs[1]
    waiting = [store.get(j.id) for j in jobs if j.id != jobs[1].id]
    expected = {j.id: store.queue_position(j) for j in waiting}
    assert sorted(expected.values()) == [1, 2, 3, 4] and expected[jobs[3].id] == 1
    assert store.queue_positions(store.list()[0]) == expected  # one window query, PostgreSQL's dialect
    store.engine.dispose()
