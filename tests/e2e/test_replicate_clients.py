"""The official Replicate clients, unchanged, against a real `avatar serve` with an API key (issue 15).

Python: `replicate` 1.0.7 from PyPI (a test extra). JavaScript: `replicate` 1.4.0 from npm, installed into
.cache/replicate-js by scripts/install_replicate_js.sh and driven by tests/e2e/js/replicate_client.cjs; without
node/npm those tests skip loudly. A client generated from /openapi.json by openapi-python-client calls create
and get. Files (`files.create`, file inputs) are another issue's.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ltx2.media import probe
from ltx2.settings import PROJECT_ROOT
from tests.api_helpers import png_bytes
from tests.live_server import LiveServer
from tests.pace import scaled
from tests.receiver import Receiver

replicate = pytest.importorskip(
    "replicate",
    reason="!!! replicate IS NOT INSTALLED: the Replicate client tests DID NOT RUN (pip install -e .[test]) !!!",
)
from replicate.exceptions import ReplicateError  # noqa: E402
from replicate.helpers import FileOutput  # noqa: E402
from replicate.prediction import Prediction  # noqa: E402

pytestmark = pytest.mark.slow
KEY = "test-key-replicate"
MODEL = "local/avatar"
QUICK = {"text": "Hello there.", "width": 64, "height": 64, "seconds": 0.4}
# Long enough to cancel mid-way (guided steps at 256x256 on the tiny checkpoint).
LONG = {"text": "A longer one.", "width": 256, "height": 256, "seconds": 1.5, "mode": "two-stage", "steps": 100}
JS_DIR = PROJECT_ROOT / ".cache" / "replicate-js"
JS_SCRIPT = Path(__file__).parent / "js" / "replicate_client.cjs"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"AVATAR_API_KEYS": json.dumps([KEY]), "AVATAR_FETCH_ALLOW": '["127.0.0.1"]'}
    with LiveServer(tmp_path_factory.mktemp("replicate"), env=env) as live:
        live.client.headers["Authorization"] = f"Bearer {KEY}"
        yield live


@pytest.fixture(scope="module")
def client(server):
    made = replicate.Client(api_token=KEY, base_url=server.url)
    made.poll_interval = 0.2  # instead of 0.5 s: the tiny jobs take about a second
    return made


@pytest.fixture(scope="module")
def version(server) -> str:
    return server.client.get(f"/v1/models/{MODEL}").json()["latest_version"]["id"]


def mp4_info(data: bytes, tmp: Path):
    path = tmp / f"out-{time.monotonic_ns()}.mp4"
    path.write_bytes(data)
    return probe(path)


@contextmanager
def worker_held(server):
    """The one worker busy on a long job until the block ends (then that job is canceled): a job queued inside
    outlasts any short wait, whatever this machine's speed."""
    job = server.client.post("/v1/predictions", json={"input": LONG}).json()
    server.wait_status(job["id"], ("processing",))
    try:
        yield job
    finally:
        server.client.post(f"/v1/predictions/{job['id']}/cancel")


def queued_behind(server, held: dict) -> dict:
    """The prediction a client just created while `held` runs."""

    def newest():
        waiting = server.client.get("/v1/predictions", params={"status": "starting"}).json()["results"]
        return waiting[0] if waiting and waiting[0]["created_at"] >= held["created_at"] else None

    return server.wait_for(newest, 60, "the client's prediction")


def queued_or_running(server) -> dict:
    """The prediction a client just created, once the worker runs it."""
    return server.wait_for(
        lambda: next(
            iter(server.client.get("/v1/predictions", params={"status": "processing"}).json()["results"]), None
        ),
        60,
        "the client's prediction to run",
    )


# ------------------------------------------------------------------------------------------------- Python


def test_model_and_version_documents_parse(client, version):
    model = client.models.get(MODEL)
    assert model.owner == "local" and model.name == "avatar"
    assert model.latest_version.id == version and len(version) == 64
    schema = model.latest_version.openapi_schema["components"]["schemas"]
    assert schema["Input"]["properties"]["text"]["maxLength"] == 5000  # the real GenerateInput
    assert "video_url" in schema["Output"]["properties"]
    assert [v.id for v in model.versions.list()] == [version]
    assert model.versions.get(version).id == version
    with pytest.raises(ReplicateError) as missing:
        client.models.get("someone/else")
    assert missing.value.status == 404


def test_run_returns_the_output_when_the_job_runs_past_a_short_wait(server, client, tmp_path):
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(client.run, MODEL, input={**LONG, "steps": 30}, wait=1)
        job = queued_or_running(server)
        time.sleep(1.5)  # past the 1 s wait: the blocking answer has come back while the job runs
        assert server.client.get(f"/v1/predictions/{job['id']}").json()["status"] == "processing"
        assert not running.done(), running.result()  # run() polls on; it does not return without output
        output = running.result(timeout=scaled(300))
    info = mp4_info(FileOutput(output["video_url"], client).read(), tmp_path)
    assert (info.width, info.height) == (256, 256) and info.has_audio


def test_run_returns_the_output_when_the_job_waits_past_a_short_wait(server, client, tmp_path):
    with ThreadPoolExecutor(1) as pool:
        with worker_held(server) as held:
            running = pool.submit(client.run, MODEL, input=QUICK, wait=1)
            queued_behind(server, held)
            time.sleep(2)  # past the 1 s wait: the blocking answer has come back (as `starting`)
            assert not running.done(), running.result()  # run() polls on; it does not return without output
        output = running.result(timeout=scaled(120))
    assert output["video"].endswith(".mp4")
    # Outputs are URLs: the client's own file object reads the MP4 (with the key, as the Python client does).
    data = FileOutput(output["video_url"], client).read()
    info = mp4_info(data, tmp_path)
    assert (info.width, info.height, info.frames) == (64, 64, 17) and info.has_audio


def test_blocking_create_that_times_out_while_processing_answers_starting(server, client):
    prediction = client.models.predictions.create(model=MODEL, input=LONG, wait=1)
    answered = datetime.now(UTC)
    assert prediction.status == "starting" and prediction.output is None
    try:
        doc = server.wait_status(prediction.id, ("processing",))
        # It was already running when the answer said `starting`: the status both clients poll on.
        assert datetime.fromisoformat(doc["started_at"]) < answered, (doc["started_at"], answered)
        prediction.reload()
        assert prediction.status == "processing"
    finally:
        client.predictions.cancel(prediction.id)


def test_create_by_model_and_by_version_with_wait(client, version):
    by_model = client.models.predictions.create(model=MODEL, input=QUICK, wait=60)
    assert by_model.status == "succeeded" and by_model.model == MODEL and by_model.version == version
    for ref in (version, f"{MODEL}:{version}"):
        by_version = client.predictions.create(version=ref, input=QUICK, wait=60)
        assert by_version.status == "succeeded" and by_version.input == QUICK
    with pytest.raises(ReplicateError) as unknown:
        client.predictions.create(version="0" * 64, input=QUICK)
    assert unknown.value.status == 422 and version in unknown.value.detail
    output = client.run(f"{MODEL}:{version}", input=QUICK)
    assert output["video_url"]


def test_deployments_alias(client):
    prediction = client.deployments.predictions.create(deployment=MODEL, input=QUICK, wait=60)
    assert prediction.status == "succeeded"


def test_get_and_list_with_pagination(server, client):
    made = [client.predictions.create(version=None, model=MODEL, input={**QUICK, "seed": n}) for n in range(3)]
    # Enough queued jobs for a second page (the server lists 50 a page), canceled at once afterwards.
    extra = [server.client.post("/v1/predictions", json={"input": QUICK}).json()["id"] for _ in range(50)]
    try:
        got = client.predictions.get(made[0].id)
        assert got.id == made[0].id and got.input == {**QUICK, "seed": 0} and got.urls["web"].endswith(made[0].id)
        first = client.predictions.list()
        assert len(first.results) == 50 and first.next
        second = client.predictions.list(first.next)
        ids = [p.id for p in first.results] + [p.id for p in second.results]
        assert len(ids) == len(set(ids)) and {p.id for p in made} <= set(ids) and set(extra) <= set(ids)
    finally:
        for job_id in extra:
            client.predictions.cancel(job_id)


def test_cancel_a_running_job(server, client):
    prediction = client.models.predictions.create(model=MODEL, input=LONG)
    server.wait_for(lambda: client.predictions.get(prediction.id).progress, 120, "the job to report progress")
    progress = client.predictions.get(prediction.id).progress  # parsed from the logs, as for Replicate's models
    assert progress.total > progress.current >= 0 and 0 <= progress.percentage < 1
    client.predictions.cancel(prediction.id)
    prediction.wait()
    assert prediction.status == "canceled" and prediction.output is None
    (done,) = [e for e in prediction.stream() if e.event.value == "done"]  # Prediction.stream, to the end
    assert json.loads(done.data) == {"reason": "canceled"}


def test_stream_to_done_and_download_the_output(server, client, tmp_path):
    events = list(client.stream(MODEL, input=QUICK))
    names = [e.event.value for e in events]
    assert names[-2:] == ["output", "done"] and "logs" in names
    progress = [Prediction.Progress.parse(e.data) for e in events if e.event.value == "logs"]
    steps = [p.current for p in progress if p is not None]
    # One count over the whole job (its percent), never going back, whatever phase the job is in.
    assert steps and steps == sorted(steps) and steps[-1] == 100 == progress[-1].total
    url = events[-2].data
    info = mp4_info(FileOutput(str(url), client).read(), tmp_path)
    assert (info.width, info.height) == (64, 64)


def test_signed_urls_open_without_the_key_and_only_their_path(server, client):
    prediction = client.models.predictions.create(model=MODEL, input=QUICK, wait=60)
    url = prediction.output["video_url"]
    with httpx.Client(timeout=30) as anonymous:
        response = anonymous.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
        path, _, token = url.partition("?")
        assert anonymous.get(path).status_code == 401
        thumb = prediction.output["thumbnail_url"].partition("?")[0]
        assert anonymous.get(f"{thumb}?{token}").status_code == 401  # a token opens its own path only
        assert anonymous.get(f"{path}?token=1.{token[-20:]}").status_code == 401
        stream = anonymous.get(prediction.urls["stream"])
        assert stream.status_code == 200 and "event: done" in stream.text
        # With the key (any of the three spellings) the bare URL works too.
        for headers in ({"Authorization": f"Token {KEY}"}, {"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
            assert anonymous.get(path, headers=headers).status_code == 200


@pytest.fixture(scope="module")
def webhook(server, client) -> tuple[str, dict]:
    """A prediction made with the client, with a webhook to a loopback receiver: (its id, what was received)."""
    receiver = Receiver()
    try:
        prediction = client.models.predictions.create(
            model=MODEL, input=QUICK, webhook=receiver.url, webhook_events_filter=["completed"]
        )
        prediction.wait()
        server.wait_for(lambda: receiver.requests, 30, "the completed webhook")
    finally:
        receiver.stop()
    (hook,) = receiver.requests
    return prediction.id, hook


def test_webhook_validates_with_the_clients_validator_and_the_secret_endpoint(client, webhook):
    prediction_id, hook = webhook
    secret = client.webhooks.default.secret()
    assert secret.key.startswith("whsec_")
    client.webhooks.validate(headers=hook["headers"], body=hook["body"].decode(), secret=secret)
    with pytest.raises(replicate.webhook.InvalidSignatureError):
        client.webhooks.validate(headers=hook["headers"], body=hook["body"].decode() + " ", secret=secret)
    assert json.loads(hook["body"])["id"] == prediction_id


def test_async_variants(server, client, version, tmp_path):
    async def scenario():
        output = await client.async_run(MODEL, input=QUICK)
        created = await client.predictions.async_create(version=version, input=QUICK, wait=60)
        got = await client.predictions.async_get(created.id)
        page = await client.predictions.async_list()
        events = [e async for e in await client.async_stream(MODEL, input=QUICK)]
        data = await FileOutput(output["video_url"], client).aread()
        return output, created, got, page, events, data

    output, created, got, page, events, data = asyncio.run(scenario())
    assert created.status == got.status == "succeeded" and got.id in [p.id for p in page.results]
    assert [e.event.value for e in events][-2:] == ["output", "done"]
    assert mp4_info(data, tmp_path).frames == 17


# ---------------------------------------------------------------------------------------------- JavaScript


@pytest.fixture(scope="module")
def node_client():
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(
            "!!! node/npm ARE NOT INSTALLED: the Replicate JS client tests DID NOT RUN (apt-get install nodejs npm) !!!"
        )
    proc = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "install_replicate_js.sh"), str(JS_DIR)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_ROOT,
    )
    if proc.returncode != 0:
        pytest.skip(f"!!! the Replicate JS client could not be installed: JS tests DID NOT RUN !!!\n{proc.stderr}")
    return JS_DIR / "node_modules" / "replicate"


def js_start(node_client, server, scenario: str, tmp_path: Path, **env) -> subprocess.Popen:
    values = {
        "REPLICATE_MODULE": str(node_client),
        "BASE_URL": server.url,
        "KEY": KEY,
        "MODEL": MODEL,
        "OUT_FILE": str(tmp_path / f"{scenario}.bin"),
        **{k: v if isinstance(v, str) else json.dumps(v) for k, v in env.items()},
    }
    return subprocess.Popen(
        ["node", str(JS_SCRIPT), scenario],
        env={**os.environ, **values},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def js_result(proc: subprocess.Popen, scenario: str) -> dict:
    stdout, stderr = proc.communicate(timeout=scaled(300))
    result = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    assert proc.returncode == 0, (scenario, result.get("thrown"), stderr[-3000:])
    return result


def js(node_client, server, scenario: str, tmp_path: Path, **env) -> dict:
    return js_result(js_start(node_client, server, scenario, tmp_path, **env), scenario)


def test_js_run_outlasting_a_short_wait_and_its_file_output(server, node_client, tmp_path):
    proc = js_start(node_client, server, "run", tmp_path, INPUT={**LONG, "steps": 30})
    job = queued_or_running(server)
    time.sleep(1.5)  # past the 1 s wait: the blocking answer has come back while the job runs
    assert server.client.get(f"/v1/predictions/{job['id']}").json()["status"] == "processing"
    assert proc.poll() is None, proc.communicate()  # run() polls on; it does not return without output
    result = js_result(proc, "run")
    assert result["output"]["video"].endswith(".mp4")
    assert result["file"]["type"] == "video/mp4"
    info = probe(tmp_path / "run.bin")
    assert (info.width, info.height) == (256, 256) and info.has_audio


def test_js_create_by_model_and_version_get_and_model(server, node_client, version, tmp_path):
    common = {"INPUT": QUICK, "VERSION": version}
    by_model = js(node_client, server, "create_by_model", tmp_path, **common)
    by_version = js(node_client, server, "create_by_version", tmp_path, **common)
    assert by_model["status"] == by_version["status"] == "succeeded"
    assert by_version["version"] == version and by_version["model"] == MODEL
    got = js(node_client, server, "get", tmp_path, PREDICTION=by_model["id"])
    assert got["id"] == by_model["id"] and got["output"]["video"] == by_model["output"]["video"]
    unknown = js(node_client, server, "unknown_version", tmp_path, **common)
    assert unknown["status"] == 422 and version in unknown["error"]
    assert js(node_client, server, "run_version", tmp_path, **common)["output"]["video_url"]
    described = js(node_client, server, "model", tmp_path, **common)
    assert described["model"]["latest_version"]["id"] == version == described["version"]["id"]
    assert [v["id"] for v in described["versions"]["results"]] == [version]


def test_js_paginate(server, node_client, tmp_path):
    queued = [server.client.post("/v1/predictions", json={"input": QUICK}).json()["id"] for _ in range(51)]
    try:
        pages = js(node_client, server, "paginate", tmp_path)["pages"]
    finally:
        for job_id in queued:
            server.client.post(f"/v1/predictions/{job_id}/cancel")
    seen = [i for page in pages for i in page]
    assert len(pages) >= 2 and len(pages[0]) == 50
    assert len(seen) == len(set(seen)) and set(queued) <= set(seen)


def test_js_cancel_a_running_job(server, node_client, tmp_path):
    job = server.client.post("/v1/predictions", json={"input": LONG}).json()
    server.wait_status(job["id"], ("processing",))
    canceled = js(node_client, server, "cancel", tmp_path, PREDICTION=job["id"])
    assert canceled["id"] == job["id"] and canceled["cancel_requested"] is True
    assert server.wait_status(job["id"], ("canceled", "succeeded", "failed"), timeout=30)["status"] == "canceled"


def test_js_stream_to_done_without_a_key_header(server, node_client, tmp_path):
    result = js(node_client, server, "stream", tmp_path, INPUT=QUICK)
    names = [e["event"] for e in result["events"]]
    assert names[-2:] == ["output", "done"] and "logs" in names
    assert result["file"]["bytes"] > 0 and probe(tmp_path / "stream.bin").frames == 17


def test_js_files_and_a_buffer_as_input(server, node_client, tmp_path):
    photo = tmp_path / "face.png"
    photo.write_bytes(png_bytes((64, 64), (180, 120, 90)))
    result = js(node_client, server, "files", tmp_path, INPUT=QUICK, PHOTO=str(photo))
    created = result["created"]
    assert created["content_type"] == "image/png" and created["metadata"] == {"person": "me"}
    assert result["got"]["checksums"]["sha256"] == created["checksums"]["sha256"] and created["id"] in result["listed"]
    prediction = result["prediction"]
    assert prediction["status"] == "succeeded", prediction
    uploaded = server.client.get(f"/v1/files/{prediction['input']['image']}").json()
    assert uploaded["checksums"]["sha256"] == created["checksums"]["sha256"]  # the same photo, uploaded again
    assert result["deleted"] is True and server.client.get(f"/v1/files/{created['id']}").status_code == 404


def test_js_validates_the_webhook(server, node_client, webhook, tmp_path):
    _, hook = webhook
    result = js(
        node_client, server, "webhook", tmp_path, WEBHOOK={"headers": hook["headers"], "body": hook["body"].decode()}
    )
    assert result == {"valid": True, "tampered": False}


# ------------------------------------------------------------------------------------- a generated client


def test_a_client_generated_from_openapi_json_creates_and_gets(server, tmp_path):
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    if generator is None:
        pytest.skip(
            "!!! openapi-python-client IS NOT INSTALLED: the generated-client test DID NOT RUN "
            "(pip install -e .[test]) !!!"
        )
    spec = tmp_path / "openapi.json"
    spec.write_text(server.client.get("/openapi.json").text)
    # The generator reads bodies as JSON or application/octet-stream only; its own option maps the others.
    config = tmp_path / "config.yaml"
    config.write_text(
        "content_type_overrides:\n"
        + "".join(f"  {kind}: application/octet-stream\n" for kind in ("image/png", "image/jpeg", "video/mp4"))
    )
    command = [generator, "generate", "--path", str(spec), "--output-path", str(tmp_path / "gen"), "--meta", "none"]
    proc = subprocess.run(
        [*command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout[-3000:] + proc.stderr[-3000:]
    program = f"""
import compileall, sys
sys.path.insert(0, {str(tmp_path)!r})
assert compileall.compile_dir({str(tmp_path / "gen")!r}, quiet=1)
from gen import AuthenticatedClient
from gen.api.predictions import create_prediction_v1_predictions_post as create, get_prediction_v1_predictions_job_id_get as get
from gen.models import PredictionRequest, GenerateInput
client = AuthenticatedClient(base_url={server.url!r}, token={KEY!r})
made = create.sync(client=client, body=PredictionRequest(input_=GenerateInput(text="Generated.", width=64, height=64, seconds=0.4)))
print(made.id, made.status)
got = get.sync(client=client, job_id=made.id)
print(got.id, got.model, got.version)
"""
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    (created, fetched) = run.stdout.split("\n")[:2]
    assert created.split()[1] == "starting" and fetched.split()[0] == created.split()[0]
    assert fetched.split()[1] == MODEL
