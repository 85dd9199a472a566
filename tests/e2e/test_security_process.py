"""Issue 14, items 3, 5 and 7: the bind check, workers that outlive their supervisor, and the smaller ones (an
emptied database, file modes, keys and form values in logs, forged SRT cues, idempotent retries that add a
webhook, what the open endpoints tell)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import pytest

from ltx2.domain.captions import build_cues, to_srt
from ltx2.serve import check_bind
from ltx2.settings import PROJECT_ROOT, Settings
from ltx2.store.jobs import JobStore
from tests.api_helpers import api, assert_problem
from tests.live_server import LiveServer, free_port

QUICK = {"width": 64, "height": 64, "seconds": 0.4}
# Long enough to be mid-way when the supervisor is killed (guided steps at 256x256 on the tiny checkpoint).
LONG = {"width": 256, "height": 256, "seconds": 1.5, "mode": "two-stage", "steps": 30}


def _cli(*args: str, root: Path, timeout: float = 90, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ltx2.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
        env={
            "PATH": os.environ["PATH"],
            "AVATAR_OUTPUTS_DIR": str(root / "outputs"),
            "AVATAR_TEMP_DIR": str(root / "temp"),
            "AVATAR_API_KEYS": "[]",
            **env,
        },
    )


# --- item 3: --host "" --------------------------------------------------------------------------------------


def test_empty_host_binds_everything_and_is_refused(tmp_path):
    with pytest.raises(SystemExit, match=r"refusing to listen on '' without an API key \(it binds 0\.0\.0\.0"):
        check_bind(Settings(host="", outputs_dir=tmp_path))
    check_bind(Settings(host="", api_keys=["k"], outputs_dir=tmp_path))
    check_bind(Settings(host="localhost", outputs_dir=tmp_path))
    for command in ("serve", "api"):
        args = [command, "--host", "", "--port", str(free_port())] + (["--no-ui"] if command == "serve" else [])
        proc = _cli(*args, root=tmp_path)
        assert proc.returncode != 0
        assert "refusing to listen on '' without an API key" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "outputs" / ".state").exists()  # nothing started, nothing written


# --- item 5: kill -9 of the supervisor ------------------------------------------------------------------------


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()[:300] + Path(f"/proc/{pid}/cmdline").read_text()
    except FileNotFoundError:
        return "gone"


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state  # a zombie has exited; only its parent entry is left for init to reap


@pytest.mark.slow
def test_workers_leave_with_their_supervisor_and_requeue_the_job(tmp_path):
    root = tmp_path / "orphans"
    live = LiveServer(root)
    try:
        live.start()
        created = live.client.post(
            "/v1/predictions", json={"input": {"text": "Hello there, this runs a while.", **LONG}}
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        live.wait_for(
            lambda: live.client.get(f"/v1/predictions/{job_id}").json()["status"] == "processing",
            60,
            "the job to start",
        )
        (worker,) = live.worker_pids()
        os.kill(live.proc.pid, signal.SIGKILL)  # the supervisor only: its worker is not signalled by anyone
        live.proc.wait()
        killed = time.monotonic()
        while not _gone(worker) and time.monotonic() - killed < 10:
            time.sleep(0.1)
        left = time.monotonic() - killed
        print(f"worker gone {left:.1f}s after the supervisor")
        assert _gone(worker), f"the worker outlived its supervisor by 10 s: {_status(worker)}"
        job = JobStore(f"sqlite:///{root / 'outputs' / '.state' / 'avatar.db'}").get(job_id)
        # Requeued, for whichever worker comes next.
        assert (job.status, job.worker_id) == ("starting", None), (job.status, job.worker_id, job.logs[-500:])
    finally:
        live.stop()
    again = LiveServer(root)
    try:
        # (Not `with`: a start that times out must still stop what it started. Not waiting for READY: the new
        # worker claims the requeued job at once and is BUSY from then on.)
        again.start(wait_ready=False)
        doc = again.wait_for(
            lambda: (d := again.client.get(f"/v1/predictions/{job_id}").json())["attempt"] >= 2 and d,
            120,
            "the requeued job to be claimed again",
        )
        assert doc["status"] in ("processing", "succeeded"), doc
        # One live worker for one slot: the orphan is not still claiming jobs.
        workers = again.client.get("/v1/workers").json()
        assert workers["alive"] == 1, workers
        again.client.post(f"/v1/predictions/{job_id}/cancel")  # no need to wait for the whole rerun
    finally:
        again.stop()


# --- item 7 ---------------------------------------------------------------------------------------------------


def test_worker_reports_starting_while_its_engine_loads(tmp_path):
    """Real weights take minutes to load; a worker that is loading must read STARTING, not DEFUNCT. The loader is
    the real one, held back 4 s (as long as four stale periods) to stand in for a large checkpoint."""
    outputs = tmp_path / "outputs"
    script = textwrap.dedent("""
        import time, ltx2.engine.factory as factory
        real = factory.load_engine
        def slow(settings):
            time.sleep(4)
            return real(settings)
        factory.load_engine = slow
        from ltx2.worker.main import Worker
        raise SystemExit(Worker().run())
    """)
    env = {
        **os.environ,
        "AVATAR_OUTPUTS_DIR": str(outputs),
        "AVATAR_HEARTBEAT_S": "0.2",
        "AVATAR_STALE_AFTER_S": "1",
        "AVATAR_MODELS_DIR": str(PROJECT_ROOT / "models"),
    }
    env.pop("AVATAR_SUPERVISOR_PID", None)
    env.pop("AVATAR_CHECKPOINT", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with api(tmp_path, outputs_dir=outputs, stale_after_s=1.0) as (client, _):
            seen = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = client.get("/health-check").json()["status"]
                seen.append(status)
                if status == "READY":
                    break
                time.sleep(0.1)
        assert seen[-1] == "READY"
        loading = seen[:-1]
        assert len(loading) > 20 and set(loading) == {"STARTING"}, loading
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_empty_database_file_is_refused(tmp_path):
    db = tmp_path / "outputs" / ".state" / "avatar.db"
    db.parent.mkdir(parents=True)
    db.touch()
    (tmp_path / "outputs" / "clip.mp4").write_bytes(b"a video the database described")
    proc = _cli("serve", "--no-ui", "--port", str(free_port()), root=tmp_path)
    assert proc.returncode != 0
    assert "empty (0-byte) file" in proc.stderr, proc.stderr[-2000:]
    assert db.stat().st_size == 0
    with pytest.raises(SystemExit, match="0-byte"):
        JobStore(f"sqlite:///{db}").migrate()  # the worker's and the API's own start-up path
    assert db.stat().st_size == 0


@pytest.mark.slow
def test_state_is_private_and_keys_stay_out_of_the_access_log(tmp_path):
    with LiveServer(tmp_path / "private", workers=0, env={"AVATAR_API_KEYS": '["k-1"]'}) as live:
        state = live.root / "outputs" / ".state"
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert stat.S_IMODE((state / "uploads").stat().st_mode) == 0o700
        assert stat.S_IMODE((state / "avatar.db").stat().st_mode) == 0o600
        for query in ("api_key=sekrit-one", "key=sekrit-two&limit=2", "token=sekrit-three"):
            assert live.client.get(f"/v1/predictions?{query}").status_code == 401
        assert live.client.get("/v1/predictions?limit=1", headers={"X-API-Key": "k-1"}).status_code == 200
        time.sleep(0.5)
        log = live.log.read_text()
    assert "/v1/predictions?api_key=***" in log and "key=***&limit=2" in log  # the lines are there, masked
    assert "sekrit" not in log


@pytest.mark.slow
@pytest.mark.parametrize("log_polls", [False, True])
def test_access_log_keeps_changes_and_errors_and_drops_successful_polls(tmp_path, log_polls):
    env = {"AVATAR_LOG_POLLS": "1"} if log_polls else {}
    with LiveServer(tmp_path / "log", workers=0, env=env) as live:
        job = live.client.post("/v1/predictions", json={"input": {"text": "Logged.", "width": 64, "height": 64}})
        assert job.status_code == 201
        job_id = job.json()["id"]
        for _ in range(3):  # what a poller does
            assert live.client.get(f"/v1/predictions/{job_id}").status_code == 200
            assert live.client.get(f"/status/{job_id}").status_code == 200
            assert live.client.get("/v1/predictions?limit=5").status_code == 200
        assert live.client.get("/v1/predictions/no-such-job").status_code == 404
        assert live.client.post(f"/v1/predictions/{job_id}/cancel").status_code == 200
        time.sleep(0.5)
        log = live.log.read_text()
    assert '"POST /v1/predictions HTTP/1.1" 201' in log  # a change is logged
    assert '"POST /v1/predictions/' + job_id + '/cancel HTTP/1.1" 200' in log
    assert '"GET /v1/predictions/no-such-job HTTP/1.1" 404' in log  # so is every error
    polls = [f'"GET /v1/predictions/{job_id} HTTP/1.1" 200', f'"GET /status/{job_id} HTTP/1.1" 200']
    polls.append('"GET /v1/predictions?limit=5 HTTP/1.1" 200')
    for line in polls:
        assert log.count(line) == (3 if log_polls else 0), line


def test_tracebacks_in_the_log_carry_no_form_values_or_photo_bytes(tmp_path):
    script = textwrap.dedent(f"""
        from pathlib import Path
        from fastapi import Form, Request
        from fastapi.testclient import TestClient
        from ltx2.api.app import create_app
        from ltx2.settings import Settings

        tmp = Path({str(tmp_path)!r})
        app = create_app(Settings(outputs_dir=tmp / "out", temp_dir=tmp / "tmp", api_keys=[], database_url=None,
                                  public_url="http://testserver"))

        @app.post("/explode")
        async def explode(request: Request, text: str = Form(...)):
            photo = (await request.form())["photo"]
            head = await photo.read()
            raise RuntimeError("something broke")

        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.post("/explode", data={{"text": "my private script SECRET-FORM"}},
                            files={{"photo": ("me.png", b"\\x89PNG SECRET-PIXELS", "image/png")}})
            assert r.status_code == 500, r.text
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RuntimeError: something broke" in proc.stderr  # the traceback is logged …
    assert "SECRET-FORM" not in proc.stderr and "SECRET-PIXELS" not in proc.stderr  # … without the values


def test_a_forged_cue_in_the_text_stays_text_in_the_srt(tmp_path):
    text = "Hello there. 00:00:00,000 --> 09:00:00,000 this line pretends to be a cue. Goodbye."
    cues = build_cues([(text, 0.0, 6.0)])
    path = tmp_path / "captions.srt"
    path.write_text(to_srt(cues))
    with av.open(str(path)) as container:  # FFmpeg's SRT demuxer, as players read it
        events = [
            (float(p.pts * p.time_base), float((p.pts + p.duration) * p.time_base))
            for p in container.demux(container.streams.subtitles[0])
            if p.size
        ]
    assert len(events) == len(cues)
    assert max(end for _, end in events) <= 6.0  # no nine-hour cue


def test_an_idempotent_retry_that_adds_a_webhook_is_a_conflict(tmp_path):
    with api(tmp_path) as (client, _):
        body = {"input": {"text": "Hello there.", **QUICK}}
        first = client.post("/v1/predictions", json=body, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 201
        again = client.post("/v1/predictions", json=body, headers={"Idempotency-Key": "k1"})
        assert again.json()["id"] == first.json()["id"]
        hooked = {**body, "webhook": "https://hooks.example.com/avatar"}
        problem = assert_problem(client.post("/v1/predictions", json=hooked, headers={"Idempotency-Key": "k1"}), 409)
        assert problem["existing"] == first.json()["id"]


def test_open_endpoints_say_only_what_a_load_balancer_needs(tmp_path):
    with api(tmp_path, api_keys=["k1"]) as (client, _):
        key = {"X-API-Key": "k1"}
        open_check = client.get("/health-check")
        assert open_check.status_code == 200 and set(open_check.json()) == {"status", "queue"}
        assert "workers" in client.get("/health-check", headers=key).json()
        assert client.get("/health").status_code == 200
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert_problem(client.get(path), 401)
            assert client.get(path, headers=key).status_code == 200
    with api(tmp_path / "open") as (client, _):  # a keyless (loopback) server shows them as before
        assert client.get("/docs").status_code == 200 and "paths" in client.get("/openapi.json").json()
