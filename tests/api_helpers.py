"""Helpers for the API contract tests: a client on a fresh state folder, problem checks, raw requests."""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import struct
import threading
import wave
import zlib
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from ltx2.api.app import create_app
from ltx2.settings import PROJECT_ROOT, Settings

PROBLEM = "application/problem+json"


def make_settings(tmp: Path, **overrides) -> Settings:
    # Everything that could point outside the temp folder is pinned (AVATAR_* variables must not leak in).
    values = dict(
        outputs_dir=tmp / "out",
        temp_dir=tmp / "tmp",
        models_dir=PROJECT_ROOT / "models",
        api_keys=[],
        public_url="http://testserver",
        database_url=None,
        webhook_secret=None,
    )
    values.update(overrides)
    return Settings(**values)


@contextmanager
def api(tmp: Path, **overrides):
    """(client, settings) for a fresh app; the lifespan (migrations, folders) runs on entry."""
    settings = make_settings(tmp, **overrides)
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, settings


# --------------------------------------------------------------------------- checks


def assert_problem(response, status: int | tuple[int, ...]) -> dict:
    """An RFC 9457 problem document with the expected status; returns the body."""
    wanted = (status,) if isinstance(status, int) else status
    assert response.status_code in wanted, (response.status_code, response.text[:500])
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM, response.headers
    body = response.json()
    for field in ("type", "title", "status", "detail"):
        assert field in body, (field, body)
    assert body["status"] == response.status_code
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def files_under(root: Path) -> dict[str, str]:
    """relative path → sha256 of every file under root (dotfiles included)."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def outputs_snapshot(settings: Settings) -> dict[str, str]:
    """What a user can see in outputs/, leaving out the database (its WAL changes on every read)."""
    return {
        k: v
        for k, v in files_under(settings.outputs_dir).items()
        if not k.startswith(".state/avatar.db") and not k.startswith(".state/uploads/")
    }


def job_ids(client) -> list[str]:
    response = client.get("/v1/predictions", params={"limit": 200})
    assert response.status_code == 200, response.text
    return [j["id"] for j in response.json()["results"]]


class NothingWritten:
    """Snapshot before a rejected request; `check()` afterwards: no job, no upload, outputs unchanged."""

    def __init__(self, client, settings: Settings):
        self.client, self.settings = client, settings
        self.jobs = job_ids(client)
        self.uploads = files_under(settings.uploads_dir)
        self.outputs = outputs_snapshot(settings)

    def check(self) -> None:
        assert job_ids(self.client) == self.jobs, "a rejected request created a job"
        assert files_under(self.settings.uploads_dir) == self.uploads, "a rejected request left an upload"
        assert outputs_snapshot(self.settings) == self.outputs, "a rejected request changed outputs/"


def create_job(client, text: str = "Hello there, this is a short line.", **extra) -> dict:
    response = client.post("/v1/predictions", json={"input": {"text": text, **extra}})
    assert response.status_code == 201, response.text
    return response.json()


# --------------------------------------------------------------------------- media


def png_bytes(size=(128, 96), color=(30, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG whose header claims width x height; built without ever holding the pixels."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    squeeze = zlib.compressobj(9)
    # Only the first rows are really written: a truncated IDAT is still "valid enough" for the header to parse,
    # and keeps the bytes small while the claimed size is huge.
    scanline = bytes(1 + width)
    body = b"".join(squeeze.compress(scanline) for _ in range(64)) + squeeze.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * math.pi * 220.0 * t) * 32767).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def upload(client, data: bytes, name: str = "photo.png", content_type: str = "image/png"):
    return client.post("/v1/files", files={"file": (name, data, content_type)})


# --------------------------------------------------------------------------- raw requests


def raw_get(app, target: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET `target` exactly as written, the way uvicorn hands it over: raw_path as sent, path percent-decoded.

    httpx removes dot segments ("/a/../b" → "/b") before sending, which would hide traversal attempts.
    """
    raw_path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1"),
        "root_path": "",
        "query_string": query.encode("latin-1"),
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
    }
    sent: list[dict] = []

    async def call():
        finished = asyncio.Event()
        asked = False

        async def receive():
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await finished.wait()  # the client stays connected until the response is complete
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished.set()

        await asyncio.wait_for(app(scope, receive, send), timeout=30)

    asyncio.run(call())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    head = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], head, body


@contextmanager
def serve_photo(photo: bytes):
    """A local web site serving `photo` as /face.png (404 elsewhere); yields its host:port for AVATAR_FETCH_ALLOW."""

    class Photo(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200 if self.path == "/face.png" else 404)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(photo)))
            self.end_headers()
            self.wfile.write(photo)

        def log_message(self, *args):
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Photo)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()
