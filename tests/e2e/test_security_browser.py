"""Issue 14, item 1: a web page the user visits cannot change anything on a loopback `avatar serve` (no key), and
a DNS-rebinding page (foreign Host) gets no answers. Against a real `avatar serve`, with the requests a browser
sends for a cross-site form POST."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from tests.api_helpers import assert_problem, files_under
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow
EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
QUICK = {"width": 64, "height": 64, "seconds": 0.4}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # No worker: queued jobs stay put, so "nothing changed" is exact.
    with LiveServer(tmp_path_factory.mktemp("browser"), workers=0) as live:
        yield live


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 96), (90, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def _state(server) -> dict:
    jobs = server.client.get("/v1/predictions", params={"limit": 200}).json()["results"]
    return {
        "jobs": sorted((j["id"], j["status"]) for j in jobs),
        "profiles": server.client.get("/v1/profiles").json(),
        "files": {
            k: v for k, v in files_under(server.root / "outputs").items() if not k.startswith(".state/avatar.db")
        },  # the WAL changes on every read
        "temp": files_under(server.root / "temp"),
    }


def _state_changing_routes(server) -> list[tuple[str, str]]:
    """Every POST/PUT/PATCH/DELETE the server publishes (so a route added later is covered too)."""
    paths = server.client.get("/openapi.json").json()["paths"]
    routes = [(m.upper(), p) for p, item in paths.items() for m in item if m in ("post", "put", "patch", "delete")]
    assert len(routes) >= 14, routes
    return routes


def test_cross_site_requests_to_every_state_changing_route_are_refused(server):
    # No Origin (curl, n8n, the studio's server-side client) still works: this is the state to protect.
    job = server.client.post("/v1/predictions", json={"input": {"text": "Hello there.", **QUICK}})
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    upload = server.client.post("/v1/files", files={"file": ("me.png", _png(), "image/png")})
    assert upload.status_code == 201, upload.text
    (server.root / "temp").mkdir(exist_ok=True)
    (server.root / "temp" / "keep.txt").write_text("scratch")
    before = _state(server)

    routes = _state_changing_routes(server)
    for method, path in routes:
        url = re.sub(r"\{job_id\}", job_id, path)
        url = re.sub(r"\{number\}", "1", url)
        url = re.sub(r"\{name\}", "someone", url)
        url = re.sub(r"\{[^}]+\}", job_id, url)
        for headers in (EVIL, {"Origin": "null"}, {"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            response = server.client.request(method, url, headers=headers, data={"confirm": "RESET", "text": "pwned"})
            body = assert_problem(response, 403)
            assert "another web site" in body["detail"], (method, url, body)

    # The attack from the issue, byte for byte: a multipart form POST from a page on another site.
    for path, fields in (
        ("/master-reset", {"confirm": "RESET"}),
        ("/clean-workspace", {}),
        ("/generate", {"text": "queued by a web page"}),
    ):
        response = server.client.post(
            path,
            headers=EVIL,
            files={k: (None, v) for k, v in fields.items()} or None,
            data=None if fields else {"x": "1"},
        )
        assert_problem(response, 403)
    assert _state(server) == before


def test_same_origin_and_no_origin_requests_still_work(server):
    port = server.port
    same = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    created = server.client.post("/v1/predictions", headers=same, json={"input": {"text": "Hi.", **QUICK}})
    assert created.status_code == 201, created.text
    canceled = server.client.post(f"/v1/predictions/{created.json()['id']}/cancel", headers=same)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    # The Swagger page posts with Origin and no Sec-Fetch-Site in some browsers; localhost is this host too.
    local = server.client.post(
        "/generate",
        headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"},
        data={"text": "From the docs page."},
    )
    assert local.status_code == 200, local.text
    plain = server.client.post("/v1/predictions", json={"input": {"text": "From curl.", **QUICK}})
    assert plain.status_code == 201
    # A different port on the same machine is a different origin (another local web app).
    other = server.client.post(
        "/v1/predictions", headers={"Origin": f"http://127.0.0.1:{port + 1}"}, json={"input": {"text": "Hi.", **QUICK}}
    )
    assert_problem(other, 403)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io", "attacker.localhost.evil"])
def test_foreign_host_is_refused_even_for_reads(server, host):
    # DNS rebinding: the page's own name now points at 127.0.0.1; its requests say Host: <its name>.
    for method, path in (
        ("GET", "/v1/predictions"),
        ("GET", "/health-check"),
        ("GET", "/health"),
        ("POST", "/master-reset"),
    ):
        response = server.client.request(method, path, headers={"Host": host}, data={"confirm": "RESET"})
        body = assert_problem(response, 400)
        assert "AVATAR_ALLOWED_HOSTS" in body["detail"]
    for host_ok in ("127.0.0.1", f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"[::1]:{server.port}"):
        assert server.client.get("/health", headers={"Host": host_ok}).status_code == 200, host_ok


def test_allowed_hosts_and_origins_setting(tmp_path):
    env = {"AVATAR_ALLOWED_HOSTS": '["avatar.example"]', "AVATAR_ALLOWED_ORIGINS": '["https://tools.example"]'}
    with LiveServer(tmp_path / "hosts", workers=0, env=env) as live:
        assert live.client.get("/health", headers={"Host": "avatar.example"}).status_code == 200
        assert_problem(live.client.get("/health", headers={"Host": "other.example"}), 400)
        ok = live.client.post(
            "/v1/predictions",
            headers={"Origin": "https://tools.example", "Sec-Fetch-Site": "cross-site"},
            json={"input": {"text": "Hi.", **QUICK}},
        )
        assert ok.status_code == 201, ok.text
        assert_problem(
            live.client.post(
                "/v1/predictions", headers={"Origin": "https://evil.example"}, json={"input": {"text": "Hi.", **QUICK}}
            ),
            403,
        )
