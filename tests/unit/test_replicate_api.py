"""The Replicate-shaped /v1 in process (issue 15): models and versions, `version` on create, the document's
Replicate fields, `Token` auth, signed URLs, the webhook secret, Replicate's stream events and the OpenAPI
schema's errors and security. The official clients themselves run in tests/e2e/test_replicate_clients.py."""

from __future__ import annotations

import time

from ltx2.domain.progress_lines import progress_line
from ltx2.domain.signing import UrlSigner
from ltx2.services.streams import new_log_lines
from ltx2.store.notifier import webhook_secret
from tests.api_helpers import api, assert_problem, create_job, job_ids

TEXT = "Hello there, this is a short line."


def test_the_model_its_version_and_unknown_names(tmp_path):
    with api(tmp_path, model_name="acme/face") as (client, _):
        model = client.get("/v1/models/acme/face").json()
        version = model["latest_version"]
        assert (model["owner"], model["name"]) == ("acme", "face") and len(version["id"]) == 64
        assert version["openapi_schema"]["components"]["schemas"]["Input"]["required"] == ["text"]
        assert client.get("/v1/models/acme/face/versions").json()["results"] == [version]
        assert client.get(f"/v1/models/acme/face/versions/{version['id']}").json() == version
        assert "acme/face" in assert_problem(client.get("/v1/models/local/avatar"), 404)["detail"]
        assert_problem(client.get("/v1/models/acme/face/versions/abc"), 404)
        assert_problem(client.post("/v1/models/x/y/predictions", json={"input": {"text": TEXT}}), 404)
        assert job_ids(client) == []


def test_create_by_version_model_and_deployment(tmp_path):
    with api(tmp_path) as (client, _):
        version = client.get("/v1/models/local/avatar").json()["latest_version"]["id"]
        for body in ({"version": version}, {"version": f"local/avatar:{version}"}, {}):
            response = client.post("/v1/predictions", json={"input": {"text": TEXT}, **body})
            assert response.status_code == 201, response.text
        for bad in ("0" * 64, f"other/model:{version}", "local/avatar"):
            body = assert_problem(client.post("/v1/predictions", json={"input": {"text": TEXT}, "version": bad}), 422)
            assert f"local/avatar:{version}" in body["detail"]
        for path in ("/v1/models/local/avatar/predictions", "/v1/deployments/local/avatar/predictions"):
            response = client.post(path, json={"input": {"text": TEXT, "seed": 7}, "stream": True})
            assert response.status_code == 201, response.text
            doc = response.json()
            assert doc["model"] == "local/avatar" and doc["version"] == version
            assert doc["input"]["seed"] == 7 and doc["data_removed"] is False and doc["source"] == "api"
            assert doc["urls"]["web"] == f"http://127.0.0.1:8501/jobs?prediction={doc['id']}"
        assert_problem(client.post("/v1/models/local/avatar/predictions", json={"input": {"text": TEXT}, "x": 1}), 422)
        assert len(job_ids(client)) == 5


def test_a_blocking_create_that_times_out_answers_starting(tmp_path):
    with api(tmp_path) as (client, _):
        job = create_job(client)
        started = time.monotonic()
        response = client.post("/v1/predictions", json={"input": {"text": TEXT}}, headers={"Prefer": "wait=1"})
        assert 0.5 < time.monotonic() - started < 5
        assert response.json()["status"] == "starting" and response.json()["id"] != job["id"]


def test_token_auth_signed_urls_and_the_webhook_secret(tmp_path):
    with api(tmp_path, api_keys=["k1"]) as (client, settings):
        (settings.outputs_dir / "x.mp4").write_bytes(b"0123456789")
        assert client.get("/v1/predictions", headers={"Authorization": "Token k1"}).status_code == 200
        assert_problem(client.get("/v1/predictions", headers={"Authorization": "Token nope"}), 401)
        signer = client.app.state.store.links.signer
        token = signer.token("/download/x.mp4", time.time())
        assert client.get(f"/download/x.mp4?token={token}").content == b"0123456789"
        assert_problem(client.get("/download/x.mp4"), 401)
        assert_problem(client.get(f"/download/y.mp4?token={token}"), 401)  # another path
        assert_problem(client.get(f"/v1/predictions?token={token}"), 401)
        expired = signer.token("/download/x.mp4", time.time() - 2 * settings.url_ttl_s)
        assert_problem(client.get(f"/download/x.mp4?token={expired}"), 401)
        other = UrlSigner(b"another secret", settings.url_ttl_s).token("/download/x.mp4", time.time())
        assert_problem(client.get(f"/download/x.mp4?token={other}"), 401)
        client.headers["Authorization"] = "Bearer k1"
        assert client.get("/v1/webhooks/default/secret").json() == {"key": webhook_secret(settings)}
        job = create_job(client)
        client.post(f"/v1/predictions/{job['id']}/cancel")
        del client.headers["Authorization"]
        stream = client.get(job["urls"]["stream"].removeprefix("http://testserver"))
        assert stream.status_code == 200 and "event: done" in stream.text  # the signed stream URL, no key
        assert_problem(client.get(f"/v1/predictions/{job['id']}/stream"), 401)


def test_a_new_secret_per_state_folder_and_the_same_across_restarts(tmp_path):
    with api(tmp_path / "a") as (client, _):
        first = client.app.state.store.links.signer.secret
    with api(tmp_path / "a") as (client, _):
        assert client.app.state.store.links.signer.secret == first
    with api(tmp_path / "b") as (client, _):
        assert client.app.state.store.links.signer.secret != first


def test_progress_lines_parse_like_replicate_models_logs():
    from replicate.prediction import Prediction

    line = progress_line(45.7, 40, 121, "decode")
    parsed = Prediction.Progress.parse("starting\n" + line)
    assert (parsed.current, parsed.total) == (45, 100) and parsed.percentage == 0.45 and "decode 40/121" in line
    assert Prediction.Progress.parse(progress_line(0.0, 0, 11, None)).current == 0
    assert new_log_lines("a\nb\n", "a\nb\nc\n") == ["c"]
    assert new_log_lines("a\nb\n", "…\nb\nc\nd\n") == ["c", "d"]  # the head was cut at 64 KB
    assert new_log_lines("", "") == []


def test_openapi_errors_security_and_media_types(tmp_path):
    with api(tmp_path) as (client, _):
        schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer KEY (or Token KEY)",
    }
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    create = schema["paths"]["/v1/predictions"]["post"]
    for code in ("401", "409", "422"):
        assert create["responses"][code]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobDocument")
    get = schema["paths"]["/v1/predictions/{job_id}"]["get"]
    assert {"401", "404", "422"} <= set(get["responses"]) and get["security"]
    assert "security" not in schema["paths"]["/health"]["get"]
    assert "401" not in schema["paths"]["/health"]["get"]["responses"]
    stream = schema["paths"]["/v1/predictions/{job_id}/stream"]["get"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"]
    assert "video/mp4" in schema["paths"]["/download/{filename}"]["get"]["responses"]["200"]["content"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            ok = [c for c in operation["responses"] if c.startswith("2")]
            assert ok, (method, path)
            for code in ok:  # every JSON answer has its response model in the schema
                content = operation["responses"][code].get("content") or {}
                json_schema = content.get("application/json", {}).get("schema")
                assert "application/json" not in content or json_schema not in (None, {}), (method, path, code)
