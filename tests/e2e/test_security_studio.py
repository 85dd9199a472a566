"""Issue 14, item 1 for the Streamlit studio: a page on another site cannot open the studio's WebSocket, and a
DNS-rebinding page (its own name pointed at 127.0.0.1, so its Origin and Host agree) gets a refusal instead of
the studio. Real Streamlit, started by the same launcher `avatar serve` uses, spoken to over its real WebSocket
protocol (what the browser's JavaScript sends)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from frontend.launcher import Studio
from tests.live_server import free_port

pytestmark = pytest.mark.slow
REFUSAL = "does not answer to this host name"


@pytest.fixture(scope="module")
def studio():
    port = free_port()
    # The API address is never reached in these tests: only what the studio itself does with the request counts.
    app = Studio(host="127.0.0.1", port=port, api_url=f"http://127.0.0.1:{free_port()}").start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).text == "ok":
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    else:
        app.stop()
        pytest.fail("the studio did not start")
    yield app
    app.stop()


def run_page(port: int, host: str, origin: str) -> str:
    """Open the studio's WebSocket as a browser on `origin` showing `host` would, run the page, return what it
    sent back (as text)."""
    sock = socket.create_connection(("127.0.0.1", port))  # the rebound name resolves to this machine
    with connect(
        f"ws://{host}/_stcore/stream",
        sock=sock,
        additional_headers={"Origin": origin},
        subprotocols=["streamlit"],
        open_timeout=10,
    ) as ws:
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        rerun.rerun_script.page_script_hash = ""
        ws.send(rerun.SerializeToString())
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                raw = ws.recv(timeout=10)
            except TimeoutError:
                break
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            seen.append(str(msg))
            if msg.WhichOneof("type") == "script_finished":
                break
    return "\n".join(seen)


def test_launcher_turns_on_streamlits_cross_site_protection():
    command = Studio(host="127.0.0.1", port=1, api_url="http://127.0.0.1:2").command()
    first = next(i for i, part in enumerate(command) if part.startswith("--"))
    flags = dict(zip(command[first::2], command[first + 1 :: 2]))
    assert flags["--server.enableXsrfProtection"] == "true"
    assert flags["--server.enableCORS"] == "true"  # Streamlit's name for refusing other origins


def test_another_site_cannot_open_the_studio_websocket(studio):
    with pytest.raises(InvalidStatus) as refused:
        run_page(studio.port, f"127.0.0.1:{studio.port}", "https://evil.example")
    assert refused.value.response.status_code == 403


def test_a_rebinding_page_gets_a_refusal_not_the_studio(studio):
    port = studio.port
    rebound = run_page(port, f"evil.example:{port}", f"http://evil.example:{port}")
    assert REFUSAL in rebound
    assert "Create" not in rebound and "Gallery" not in rebound  # no page, no navigation
    local = run_page(port, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}")
    assert REFUSAL not in local and "Create" in local
