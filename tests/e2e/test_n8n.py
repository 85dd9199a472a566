"""The shipped n8n workflows, imported unchanged into a real n8n 2.8.4 and run against a real `avatar serve`.

The server runs the tiny checkpoint and requires an API key, so every call goes through the workflows' Header
Auth credential. n8n is installed by scripts/install_n8n.sh (a no-op when it is already there); without it these
tests fail, unless AVATAR_SKIP_N8N=1 is set, which skips them with a loud reason. The workflows read the server
URL and clip defaults from n8n's environment (AVATAR_SERVER_URL, AVATAR_CLIP_OPTIONS, with
N8N_BLOCK_ENV_ACCESS_IN_NODE=false): nothing in the files is edited. Every wait is bounded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from ltx2.media import probe
from ltx2.settings import PROJECT_ROOT
from ltx2.store.jobs import JobStore
from ltx2.store.models import OutboxEvent
from ltx2.store.webhooks import verify
from tests.live_server import LiveServer, free_port
from tests.pace import scaled

WORKFLOWS = PROJECT_ROOT / "n8n" / "workflows"
INSTALL = PROJECT_ROOT / "scripts" / "install_n8n.sh"
N8N_DIR = Path(os.environ.get("AVATAR_N8N_DIR") or PROJECT_ROOT / ".cache" / "n8n")
API_KEY = "test-key"
ENCRYPTION_KEY = "avatar-generator-tests-fixed-encryption-key"
CREDENTIAL_ID, CREDENTIAL_NAME = "avatarApiKeyCred", "Avatar Generator API key"
TEXT, HOOK, CHAT = "avatarTextToVideo", "avatarTextToVideoHook", "avatarChatToVideo"
HOOK_PATH = "avatar/text-to-avatar"
SAMPLE_TEXT = "Hello! I am your avatar. This clip was made by an n8n workflow."
QUICK = {"width": 64, "height": 64, "seconds": 0.4}
# Long enough to cancel mid-way on the tiny checkpoint (guided steps at 256x256), as in test_server.py.
LONG = {"width": 256, "height": 256, "seconds": 1.5, "mode": "two-stage", "steps": 100}
FINISHED = ("success", "error", "crashed", "canceled")


# ------------------------------------------------------------------------------------------- processes


def run_bounded(cmd: list[str], *, env: dict, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a command in its own process group; on timeout (or after it exits) nothing of it is left behind."""
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        raise AssertionError(
            f"{' '.join(cmd[:3])} did not finish within {timeout} s\n{out[-4000:]}\n{err[-4000:]}"
        ) from None
    finally:
        _kill_group(proc.pid)  # n8n's task runner is a child process
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def unflatten(text: str):
    """n8n stores execution data as 'flatted' JSON: an array whose entry 0 is the root value, and every string
    inside an object or array is the index (in decimal) of the real value in that array."""
    table = json.loads(text)
    seen: dict[int, object] = {}

    def revive(index: int):
        if index in seen:
            return seen[index]
        value = table[index]
        if isinstance(value, dict):
            seen[index] = out = {}
            out.update({k: revive(int(v)) if isinstance(v, str) else v for k, v in value.items()})
            return out
        if isinstance(value, list):
            seen[index] = out = []
            out.extend(revive(int(v)) if isinstance(v, str) else v for v in value)
            return out
        return value

    return revive(0)


class Execution:
    """One n8n execution: its status and run data (from `n8n execute --rawOutput` or n8n's database)."""

    def __init__(self, status: str, data: dict, log: str = ""):
        self.status, self.data, self.log = status, data, log

    @property
    def result(self) -> dict:
        return self.data["resultData"]

    @property
    def error_message(self) -> str | None:
        error = self.result.get("error")
        return error.get("message") if error else None

    @property
    def last_node(self) -> str | None:
        return self.result.get("lastNodeExecuted")

    def items(self, node: str, output: int = 0, run: int = -1) -> list[dict]:
        runs = self.result["runData"].get(node)
        assert runs, f"node {node!r} did not run; ran: {list(self.result['runData'])}\n{self.log[-3000:]}"
        return runs[run]["data"]["main"][output]

    @classmethod
    def from_cli(cls, proc: subprocess.CompletedProcess) -> Execution:
        # --rawOutput prints the execution as JSON after n8n's log lines, starting at a line that is exactly "{".
        text = proc.stdout
        start = 0 if text.startswith("{\n") else text.find("\n{\n") + 1
        assert start > 0 or text.startswith("{\n"), f"no execution JSON:\n{text[-3000:]}\n{proc.stderr[-3000:]}"
        doc, _ = json.JSONDecoder().raw_decode(text[start:])
        return cls(doc["status"], doc["data"], text + proc.stderr)


class N8n:
    """A private n8n: its own user folder (SQLite, binary data), fixed encryption key, loopback only."""

    def __init__(self, binary: Path, folder: Path, server_url: str):
        self.binary, self.folder, self.server_url = binary, folder, server_url
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = folder.parent / f"{folder.name}-n8n.log"

    def env(self, **extra: str) -> dict[str, str]:
        # A clean environment: nothing from the caller's N8N_*/DB_* settings can point this n8n elsewhere.
        env = {k: os.environ[k] for k in ("PATH", "LANG", "TMPDIR") if k in os.environ}
        env.update(
            {
                "HOME": str(self.folder),
                "N8N_USER_FOLDER": str(self.folder),
                "N8N_ENCRYPTION_KEY": ENCRYPTION_KEY,
                "N8N_DIAGNOSTICS_ENABLED": "false",
                "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
                "N8N_TEMPLATES_ENABLED": "false",
                "N8N_PERSONALIZATION_ENABLED": "false",
                "N8N_COMMUNITY_PACKAGES_ENABLED": "false",
                "N8N_LICENSE_AUTO_RENEW_ENABLED": "false",
                "N8N_DIAGNOSTICS_CONFIG_FRONTEND": "",
                "N8N_DIAGNOSTICS_CONFIG_BACKEND": "",
                "EXTERNAL_FRONTEND_HOOKS_URLS": "",
                "DO_NOT_TRACK": "1",
                "N8N_LISTEN_ADDRESS": "127.0.0.1",
                "N8N_HOST": "127.0.0.1",
                "N8N_PORT": str(self.port),
                "WEBHOOK_URL": f"http://127.0.0.1:{self.port}/",
                "N8N_SECURE_COOKIE": "false",
                # A second n8n process (or another test session) must not clash on the task broker's port 5679.
                "N8N_RUNNERS_BROKER_PORT": str(free_port()),
                # n8n 2.x blocks $env in expressions unless this is "false"; the workflows then use Config's defaults.
                "N8N_BLOCK_ENV_ACCESS_IN_NODE": "false",
                "AVATAR_SERVER_URL": self.server_url,
                "AVATAR_CLIP_OPTIONS": json.dumps(QUICK),
            }
        )
        env.update(extra)
        return env

    def cli(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
        return run_bounded([str(self.binary), *args], env=self.env(**env), timeout=timeout, cwd=self.folder)

    def check(self, *args: str, timeout: float = 180) -> str:
        proc = self.cli(*args, timeout=timeout)
        assert proc.returncode == 0, f"n8n {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    def import_credential(self, key: str) -> None:
        path = self.folder.parent / f"{self.folder.name}-credential.json"
        path.write_text(
            json.dumps(
                [
                    {
                        "id": CREDENTIAL_ID,
                        "name": CREDENTIAL_NAME,
                        "type": "httpHeaderAuth",
                        "data": {"name": "Authorization", "value": f"Bearer {key}"},
                    }
                ]
            )
        )
        try:
            self.check("import:credentials", f"--input={path}")
        finally:
            path.unlink()

    def execute(self, workflow_id: str, timeout: float = 240, **env: str) -> Execution:
        proc = self.cli("execute", f"--id={workflow_id}", "--rawOutput", timeout=scaled(timeout), **env)
        execution = Execution.from_cli(proc)
        # n8n exits 0 on success and 1 on failure; the status in the JSON must agree.
        assert (proc.returncode == 0) == (execution.status == "success"), execution.log[-3000:]
        return execution

    def binary_file(self, binary: dict) -> Path:
        """Where n8n keeps a binary item in filesystem mode: <user folder>/.n8n/storage/<id without mode>."""
        mode, _, rel = binary["id"].partition(":")
        assert mode.startswith("filesystem"), binary
        return self.folder / ".n8n" / "storage" / rel

    # --- `n8n start` -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextmanager
    def serve(self, timeout: float = 150):
        self.proc = subprocess.Popen(
            [str(self.binary), "start"],
            env=self.env(),
            cwd=self.folder,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_for_webhook(timeout)
            yield self
        finally:
            _kill_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
            _kill_group(self.proc.pid)
            self.proc.wait(10)

    def _wait_for_webhook(self, timeout: float) -> None:
        # /healthz answers before workflows are active. A GET on the POST-only webhook path answers 404 until the
        # workflow is active, and then a 404 that says the path is registered for POST.
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"n8n start exited ({self.proc.returncode}):\n{self.log.read_text()[-4000:]}")
            try:
                answer = httpx.get(f"{self.url}/webhook/{HOOK_PATH}", timeout=5)
                if "Did you mean to make a POST request" in answer.text:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(
            f"the webhook workflow did not become active within {timeout} s\n" + self.log.read_text()[-4000:]
        )

    def wait_execution(self, execution_id: str, timeout: float = 180) -> Execution:
        db = self.folder / ".n8n" / "database.sqlite"
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con:
                row = con.execute(
                    "SELECT e.status, d.data FROM execution_entity e JOIN execution_data d "
                    "ON d.executionId = e.id WHERE e.id = ?",
                    (int(execution_id),),
                ).fetchone()
            status = row[0] if row else None
            if status in FINISHED:
                return Execution(status, unflatten(row[1]), self.log.read_text())
            time.sleep(0.5)
        raise AssertionError(
            f"n8n execution {execution_id} did not finish within {timeout} s (status {status})\n"
            + self.log.read_text()[-4000:]
        )


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def n8n_binary() -> Path:
    binary = N8N_DIR / "node_modules" / ".bin" / "n8n"
    if os.environ.get("AVATAR_SKIP_N8N") == "1" and not binary.exists():
        pytest.skip(
            "!!! n8n IS NOT INSTALLED and AVATAR_SKIP_N8N=1: the n8n workflow tests DID NOT RUN "
            "(./scripts/install_n8n.sh installs n8n 2.8.4; ./scripts/run_tests.sh does it for you) !!!"
        )
    # Idempotent: returns at once when this version is installed; the first install takes 5-8 minutes.
    proc = run_bounded([str(INSTALL), str(N8N_DIR)], env=dict(os.environ), timeout=1800, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, f"install_n8n.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert binary.exists()
    return binary


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # n8n listens on a free loopback port here (localhost:5678, the default allow-list entry, in real setups).
    live = LiveServer(
        tmp_path_factory.mktemp("n8n-server"),
        env={"AVATAR_API_KEYS": json.dumps([API_KEY]), "AVATAR_FETCH_ALLOW": '["127.0.0.1"]'},
    )
    live.client.headers["Authorization"] = f"Bearer {API_KEY}"
    with live:
        yield live


@pytest.fixture(scope="module")
def n8n(n8n_binary, server, tmp_path_factory) -> N8n:
    """n8n with the credential and the three shipped workflow files imported as they are."""
    instance = N8n(n8n_binary, tmp_path_factory.mktemp("n8n") / "home", server.url)
    instance.folder.mkdir()
    instance.import_credential(API_KEY)
    out = instance.check("import:workflow", "--separate", f"--input={WORKFLOWS}")  # every file, as shipped
    assert "Successfully imported 3 workflows" in out, out[-2000:]
    return instance


@pytest.fixture(scope="module")
def n8n_live(n8n, tmp_path_factory):
    """`n8n start` with the webhook workflow published, in a copy of the imported user folder."""
    live = N8n(n8n.binary, tmp_path_factory.mktemp("n8n-live") / "home", n8n.server_url)
    shutil.copytree(n8n.folder, live.folder)
    live.check("publish:workflow", f"--id={HOOK}")
    with live.serve():
        yield live


@pytest.fixture(scope="module")
def image_url(face_photo):
    """The face photo on a loopback HTTP server, as any public image URL would be."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(face_photo.parent))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/{face_photo.name}"
    finally:
        httpd.shutdown()


# ------------------------------------------------------------------------------------------- helpers


def job_ids(server) -> list[str]:
    return [doc["id"] for doc in server.client.get("/v1/predictions", params={"limit": 200}).json()["results"]]


def vanished_upload(server, face_photo) -> str:
    """An uploaded photo whose file is then deleted: the API accepts a job with it, the worker fails it."""
    with face_photo.open("rb") as f:
        upload = server.client.post("/v1/files", files={"file": ("me.png", f, "image/png")})
    assert upload.status_code == 201, upload.text
    for path in (server.root / "outputs" / ".state" / "uploads").rglob("*"):
        if path.is_file():
            path.unlink()
    return upload.json()["id"]


def idempotency_key(server, job_id: str) -> str | None:
    db = server.root / "outputs" / ".state" / "avatar.db"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        (key,) = con.execute("SELECT idempotency_key FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return key


def check_video(n8n: N8n, item: dict, job: dict) -> None:
    """The Result item carries the job's MP4 as binary `video`: same bytes as the server's, video + audio."""
    assert job["status"] == "succeeded"
    summary, binary = item["json"], item["binary"]["video"]
    assert summary["id"] == job["id"] and summary["status"] == "succeeded"
    assert summary["file_name"] == job["output"]["video"]
    assert summary["video_url"] == f"{n8n.server_url}/download/{job['output']['video']}"
    assert binary["mimeType"] == "video/mp4" and binary["fileName"] == job["output"]["video"]
    assert binary["bytes"] == summary["size"] == job["output"]["size"] > 0
    path = n8n.binary_file(binary)
    assert path.stat().st_size == job["output"]["size"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == summary["sha256"] == job["output"]["sha256"]
    info = probe(path)
    assert info.has_video and info.has_audio, info
    assert (info.width, info.height) == (job["input"]["width"], job["input"]["height"])


# ------------------------------------------------------------------------------------------- static checks


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_workflows", PROJECT_ROOT / "n8n" / "build_workflows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_workflow_files_are_what_the_builder_writes():
    assert _load_builder().main(["--check"]) == 0, "run: python n8n/build_workflows.py"


@pytest.mark.parametrize("name", ["text-to-avatar.json", "text-to-avatar-webhook.json", "chat-to-avatar.json"])
def test_server_url_in_one_place_and_every_server_call_authenticated(name):
    text = (WORKFLOWS / name).read_text()
    workflow = json.loads(text)
    assert text.count("http://127.0.0.1:8000") == 1  # Config's default, nowhere else
    config = next(n for n in workflow["nodes"] if n["name"] == "Config")
    assert "AVATAR_SERVER_URL" in json.dumps(config["parameters"])
    calls = [n for n in workflow["nodes"] if n["type"] == "n8n-nodes-base.httpRequest"]
    for node in calls:
        if node["name"] == "Download reference image":  # any URL the user gives: no API key sent there
            assert "credentials" not in node
            continue
        assert node["parameters"]["url"].startswith("={{ $('Config').first().json.server_url }}/"), node["name"]
        assert node["parameters"]["genericAuthType"] == "httpHeaderAuth"
        assert node["credentials"]["httpHeaderAuth"] == {"id": CREDENTIAL_ID, "name": CREDENTIAL_NAME}
    create = next(n for n in calls if n["name"] == "Create job")
    headers = {h["name"]: h["value"] for h in create["parameters"]["headerParameters"]["parameters"]}
    assert headers["Idempotency-Key"] == "={{ $json.idempotency_key }}"
    assert any(n["type"] == "n8n-nodes-base.stopAndError" for n in workflow["nodes"])


# ------------------------------------------------------------------------------------------- n8n execute


@pytest.mark.n8n
@pytest.mark.slow
def test_text_to_avatar_polls_the_job_and_downloads_the_mp4(n8n, server):
    before = set(job_ids(server))
    execution = n8n.execute(TEXT)
    assert execution.status == "success", execution.log[-3000:]
    (item,) = execution.items("Result")
    new = [j for j in job_ids(server) if j not in before]
    assert new == [item["json"]["id"]], "exactly one job per item"
    job = server.client.get(f"/v1/predictions/{new[0]}").json()
    assert job["input"]["text"] == SAMPLE_TEXT  # started with no input: the sample sentence
    assert {k: job["input"][k] for k in QUICK} == QUICK  # AVATAR_CLIP_OPTIONS reached the request
    check_video(n8n, item, job)
    # The Idempotency-Key reached the server: n8n-<workflow>-<execution>-<item>-<request fingerprint>.
    assert idempotency_key(server, job["id"]).startswith(f"n8n-{TEXT}-")


def caller_workflow(items: list[dict]) -> dict:
    """A workflow of the test's own that calls text-to-avatar the way a user's workflow would: an Execute
    Workflow node mapping text, image_url and options, run once with all items."""

    def field(name: str, type_: str) -> dict:
        return {
            "id": name,
            "displayName": name,
            "required": False,
            "defaultMatch": False,
            "display": True,
            "canBeUsedToMatch": True,
            "type": type_,
            "removed": False,
        }

    return {
        "id": "avatarTestCaller",
        "name": "test: calls text to avatar",
        "active": False,
        "settings": {"executionOrder": "v1"},
        "nodes": [
            {
                "id": "5b0e4a9e-1c11-4c57-9a47-0d1f00000001",
                "name": "Start",
                "type": "n8n-nodes-base.manualTrigger",
                "typeVersion": 1,
                "position": [0, 0],
                "parameters": {},
            },
            {
                "id": "5b0e4a9e-1c11-4c57-9a47-0d1f00000002",
                "name": "Clips",
                "type": "n8n-nodes-base.code",
                "typeVersion": 2,
                "position": [220, 0],
                "parameters": {"jsCode": f"return {json.dumps([{'json': i} for i in items])};"},
            },
            {
                "id": "5b0e4a9e-1c11-4c57-9a47-0d1f00000003",
                "name": "Make avatars",
                "type": "n8n-nodes-base.executeWorkflow",
                "typeVersion": 1.2,
                "position": [440, 0],
                "parameters": {
                    "workflowId": {"__rl": True, "value": TEXT, "mode": "id"},
                    "workflowInputs": {
                        "mappingMode": "defineBelow",
                        "value": {
                            "text": "={{ $json.text }}",
                            "image_url": "={{ $json.image_url }}",
                            "options": "={{ $json.options }}",
                        },
                        "matchingColumns": [],
                        "schema": [field("text", "string"), field("image_url", "string"), field("options", "object")],
                        "attemptToConvertTypes": False,
                        "convertFieldsToString": True,
                    },
                    "options": {},
                },
            },
        ],
        "connections": {
            "Start": {"main": [[{"node": "Clips", "type": "main", "index": 0}]]},
            "Clips": {"main": [[{"node": "Make avatars", "type": "main", "index": 0}]]},
        },
    }


@pytest.mark.n8n
@pytest.mark.slow
def test_text_to_avatar_as_a_sub_workflow_returns_every_item_in_order(n8n, server, image_url, tmp_path):
    clips = [
        {"text": "Without a photo.", "image_url": "", "options": {"seed": 7}},
        {"text": "With a photo.", "image_url": image_url, "options": {"seed": 8}},
    ]
    caller = tmp_path / "caller.json"
    caller.write_text(json.dumps(caller_workflow(clips)))
    n8n.check("import:workflow", f"--input={caller}")
    n8n.check("publish:workflow", f"--id={TEXT}")  # n8n 2.x runs only published workflows as sub-workflows
    before = set(job_ids(server))
    execution = n8n.execute("avatarTestCaller", timeout=300)
    assert execution.status == "success", (execution.error_message, execution.log[-3000:])
    # Both videos come back, in the caller's order, although the items took different branches (photo or
    # not) and may have finished in different polling passes.
    items = execution.items("Make avatars")
    assert [item["json"]["text"] for item in items] == ["Without a photo.", "With a photo."]
    assert len(set(job_ids(server)) - before) == 2
    for item, clip in zip(items, clips):
        job = server.client.get(f"/v1/predictions/{item['json']['id']}").json()
        assert job["input"]["seed"] == clip["options"]["seed"]
        assert bool(job["input"].get("image")) == bool(clip["image_url"])
        check_video(n8n, item, job)


@pytest.mark.n8n
@pytest.mark.slow
def test_a_job_that_fails_stops_the_workflow_with_the_servers_error(n8n, server, face_photo):
    file_id = vanished_upload(server, face_photo)
    started = time.monotonic()
    execution = n8n.execute(TEXT, AVATAR_CLIP_OPTIONS=json.dumps({**QUICK, "image": file_id}), timeout=180)
    assert execution.status == "error"
    assert execution.last_node == "Stop and Error"
    job = server.client.get(f"/v1/predictions/{job_ids(server)[0]}").json()
    assert job["status"] == "failed" and job["input"]["image"] == file_id
    assert "no longer exists" in job["error"]
    assert execution.error_message == f"Avatar job {job['id']} failed (invalid_input): {job['error']}"
    assert time.monotonic() - started < 120


@pytest.mark.n8n
@pytest.mark.slow
def test_a_canceled_job_stops_the_workflow(n8n, server):
    before = set(job_ids(server))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(n8n.execute, TEXT, timeout=240, AVATAR_CLIP_OPTIONS=json.dumps(LONG))

        def running_job():
            new = [j for j in job_ids(server) if j not in before]
            return new and server.client.get(f"/v1/predictions/{new[0]}").json()["status"] == "processing" and new[0]

        job_id = server.wait_for(running_job, 120, "the workflow's job to run")
        assert server.client.post(f"/v1/predictions/{job_id}/cancel").status_code == 200
        execution = running.result(timeout=scaled(240))
    assert execution.status == "error" and execution.last_node == "Stop and Error"
    job = server.client.get(f"/v1/predictions/{job_id}").json()
    assert job["status"] == "canceled"
    # Worded "cancelled": n8n would file an error message containing "canceled" as a user-canceled execution.
    assert execution.error_message.startswith(f"Avatar job {job_id} was cancelled on the server")


@pytest.mark.n8n
@pytest.mark.slow
def test_a_wrong_api_key_fails_with_a_clear_message(n8n, server, tmp_path):
    before = set(job_ids(server))
    wrong = N8n(n8n.binary, tmp_path / "home", n8n.server_url)
    shutil.copytree(n8n.folder, wrong.folder)
    wrong.import_credential("not-the-key")
    execution = wrong.execute(TEXT, timeout=120)
    assert execution.status == "error" and execution.last_node == "Stop and Error"
    assert execution.error_message.startswith("Avatar Generator answered HTTP 401: the API key was refused")
    assert set(job_ids(server)) == before


@pytest.mark.n8n
@pytest.mark.slow
def test_chat_to_avatar_speaks_the_composed_reply(n8n, server):
    execution = n8n.execute(CHAT)
    assert execution.status == "success", execution.log[-3000:]
    (message,) = execution.items("Message")
    assert message["json"]["chatInput"] == "Hi there! What can you do?"  # the sample, as no chat message came in
    (item,) = execution.items("Result")
    reply = item["json"]["reply"]
    assert reply.startswith("Hello, and welcome!")  # what "Compose reply" says to a greeting
    job = server.client.get(f"/v1/predictions/{item['json']['id']}").json()
    assert job["input"]["text"] == reply
    # The Chat Trigger answers with `output`: the reply and a link to the video.
    assert item["json"]["output"] == f"{reply}\n\n[Watch the reply]({n8n.server_url}/download/{job['output']['video']})"
    check_video(n8n, item, job)


# ------------------------------------------------------------------------------------------- n8n start (webhook)


def post_hook(n8n_live: N8n, body: dict) -> httpx.Response:
    return httpx.post(f"{n8n_live.url}/webhook/{HOOK_PATH}", json=body, timeout=120)


@pytest.mark.n8n
@pytest.mark.slow
def test_webhook_workflow_resumes_from_the_signed_callback(n8n_live, server, image_url):
    answer = post_hook(n8n_live, {"text": "Called back, not polled.", "image_url": image_url, "options": QUICK})
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    execution = n8n_live.wait_execution(accepted["execution_id"])
    assert execution.status == "success", (execution.error_message, execution.log[-3000:])
    job = server.client.get(f"/v1/predictions/{accepted['job_id']}").json()
    assert job["webhook"] == f"{n8n_live.url}/webhook-waiting/{accepted['execution_id']}"
    assert job["webhook_events_filter"] == ["completed"]
    assert job["input"]["image"]  # the photo was downloaded from its URL and uploaded to /v1/files

    # The Wait node resumed on our "completed" callback: check its Standard Webhooks signature against the exact
    # body the server sent (as the outbox recorded it: its signed URLs carry the time they were made).
    (callback,) = execution.items("Wait for the callback")
    headers, body = callback["json"]["headers"], callback["json"]["body"]
    assert body["id"] == job["id"] and body["status"] == "succeeded"
    store = JobStore(f"sqlite:///{server.root / 'outputs' / '.state' / 'avatar.db'}")
    try:
        with store.session() as session:
            sent = session.scalar(select(OutboxEvent.body).where(OutboxEvent.msg_id == headers["webhook-id"]))
    finally:
        store.close()
    assert json.loads(sent) == body
    sent = sent.encode()
    secret = (server.root / "outputs" / ".state" / "webhook_secret").read_text().strip()
    assert verify(secret, headers, sent)
    assert headers["webhook-id"] == f"msg_{job['id']}_completed_{job['status_sequence']}"

    (item,) = execution.items("Result")
    check_video(n8n_live, item, job)


@pytest.mark.n8n
@pytest.mark.slow
def test_webhook_workflow_stops_with_the_servers_error_when_the_job_fails(n8n_live, server, face_photo):
    file_id = vanished_upload(server, face_photo)
    answer = post_hook(n8n_live, {"text": "This one fails.", "options": {**QUICK, "image": file_id}})
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    execution = n8n_live.wait_execution(accepted["execution_id"], timeout=120)
    assert execution.status == "error" and execution.last_node == "Stop and Error"
    job = server.client.get(f"/v1/predictions/{accepted['job_id']}").json()
    assert job["status"] == "failed" and "no longer exists" in job["error"]
    assert execution.error_message == f"Avatar job {job['id']} failed (invalid_input): {job['error']}"


@pytest.mark.n8n
@pytest.mark.slow
def test_webhook_workflow_answers_422_when_there_is_no_job_to_wait_for(n8n_live, server):
    before = set(job_ids(server))
    refused = post_hook(n8n_live, {"text": "Odd size.", "options": {"width": 100}})
    assert refused.status_code == 422
    assert refused.json()["error"].startswith("Avatar Generator answered HTTP 422: input.width")
    empty = post_hook(n8n_live, {})
    assert empty.status_code == 422 and '"text" is required' in empty.json()["error"]
    assert set(job_ids(server)) == before
