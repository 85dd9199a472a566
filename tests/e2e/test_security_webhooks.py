"""Issue 14, item 4: webhooks (every URL the server fetches) cannot reach the server itself, loopback, private or
metadata addresses, in any spelling; the address that was checked is the one connected to; redirects are never
followed. A real receiver on another loopback port records every request that reaches it."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ltx2.net import FetchPolicy, FetchRefused, fetch, guarded_client
from tests.api_helpers import api, assert_problem
from tests.live_server import LiveServer

QUICK = {"width": 64, "height": 64, "seconds": 0.4}


class Receiver:
    """A loopback HTTP server that counts every request; `redirect_to` makes it answer 307."""

    def __init__(self, redirect_to: str | None = None):
        self.requests: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                outer.requests.append((self.command, self.path, dict(self.headers)))
                if redirect_to:
                    self.send_response(307)
                    self.send_header("Location", redirect_to)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _any

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def spellings(port: int, server_port: int) -> list[str]:
    """Every way the issue found (and a few more) to write an address that reaches this machine or its network."""
    return [
        f"http://127.0.0.1:{port}/hook",
        f"http://localhost:{port}/hook",
        f"http://vm:{port}/hook",  # an /etc/hosts name for 127.0.0.1
        f"http://127.1:{port}/hook",  # short form
        f"http://2130706433:{port}/hook",  # decimal
        f"http://0x7f000001:{port}/hook",  # hex
        f"http://0x7f.0.0.1:{port}/hook",
        f"http://0177.0.0.1:{port}/hook",  # octal
        f"http://[::ffff:127.0.0.1]:{port}/hook",  # IPv4-mapped IPv6
        f"http://[::ffff:7f00:1]:{port}/hook",
        f"http://127\u30020\u30020\u30021:{port}/hook",  # ideographic full stops
        f"http://127\uff0e0\uff0e0\uff0e1:{port}/hook",  # fullwidth full stops
        f"http://0.0.0.0:{port}/hook",
        f"http://0:{port}/hook",
        f"http://[::]:{port}/hook",
        f"http://[::1]:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://100.64.0.1/hook",  # CGNAT
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://224.0.0.1/hook",
        f"http://127.0.0.1:{server_port}/clean-workspace",  # the server itself
        f"http://localhost:{server_port}/master-reset",
    ]


@pytest.mark.slow
def test_webhooks_to_internal_addresses_are_422_and_never_contacted(tmp_path, receiver):
    with LiveServer(tmp_path / "hooks", workers=0) as live:
        (live.root / "temp").mkdir(exist_ok=True)
        (live.root / "temp" / "keep.txt").write_text("scratch")
        for url in spellings(receiver.port, live.port):
            response = live.client.post("/v1/predictions", json={"input": {"text": "Hi.", **QUICK}, "webhook": url})
            body = assert_problem(response, 422)
            assert body["detail"].startswith("webhook:"), (url, body)
        assert live.client.get("/v1/predictions").json()["results"] == []
    assert receiver.requests == []
    assert (live.root / "temp" / "keep.txt").exists()


def test_the_default_allow_list_is_n8n_on_this_machine(tmp_path):
    with api(tmp_path) as (client, settings):
        assert settings.fetch_allow == ["localhost:5678", "127.0.0.1:5678"]
        ok = client.post(
            "/v1/predictions",
            json={"input": {"text": "Hi.", **QUICK}, "webhook": "http://localhost:5678/webhook-waiting/12"},
        )
        assert ok.status_code == 201, ok.text
        assert_problem(
            client.post(
                "/v1/predictions", json={"input": {"text": "Hi.", **QUICK}, "webhook": "http://localhost:5679/hook"}
            ),
            422,
        )


def test_delivery_connects_to_the_checked_address_once_resolved(receiver, monkeypatch):
    """DNS rebinding at delivery: the name is resolved once, and the connection goes to that answer, with the
    name kept in the Host header. A second lookup (the attacker's second answer) never happens."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "10.9.9.9"])  # the second answer would be the attack
    lookups = []

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            lookups.append(host)
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    policy = FetchPolicy(allow=(("rebind.test", receiver.port),))
    with guarded_client(policy) as client:
        response = client.post(f"http://rebind.test:{receiver.port}/hook", content=b"{}")
    assert response.status_code == 200
    assert lookups == ["rebind.test"]
    ((method, path, headers),) = receiver.requests
    assert (method, path, headers["Host"]) == ("POST", "/hook", f"rebind.test:{receiver.port}")


def test_a_public_name_that_resolves_inward_is_refused_at_delivery(receiver, monkeypatch):
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: real("127.0.0.1" if host == "hooks.example.com" else host, port, *a, **k),
    )
    with guarded_client(FetchPolicy()) as client, pytest.raises(httpx.ConnectError, match="loopback"):
        client.post(f"http://hooks.example.com:{receiver.port}/hook", content=b"{}")
    assert receiver.requests == []


def test_redirects_are_never_followed(receiver):
    bouncer = Receiver(redirect_to=f"http://127.0.0.1:{receiver.port}/inside")
    try:
        policy = FetchPolicy(allow=(("127.0.0.1", bouncer.port),))
        with guarded_client(policy) as client:
            assert client.post(f"http://127.0.0.1:{bouncer.port}/hook", content=b"{}").status_code == 307
        with pytest.raises(FetchRefused, match="307"):
            fetch(f"http://127.0.0.1:{bouncer.port}/photo.png", policy)
    finally:
        bouncer.close()
    assert len(bouncer.requests) == 2 and receiver.requests == []


def test_fetch_caps_the_body(receiver):
    policy = FetchPolicy(allow=(("127.0.0.1", receiver.port),))
    assert fetch(f"http://127.0.0.1:{receiver.port}/x", policy) == b"ok"
    with pytest.raises(FetchRefused, match="larger than"):
        fetch(f"http://127.0.0.1:{receiver.port}/x", policy, max_bytes=1)


def test_allow_list_never_reaches_the_servers_own_port(receiver):
    policy = FetchPolicy(allow=(("127.0.0.1", None),), own_ports=frozenset({receiver.port}))
    with pytest.raises(FetchRefused, match="this server itself"):
        policy.check(f"http://127.0.0.1:{receiver.port}/clean-workspace")
    assert receiver.requests == []
