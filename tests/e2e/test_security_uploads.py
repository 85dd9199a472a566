"""Issue 14, items 2 and 6: every upload goes through one allow-listed decoder (PNG, JPEG, WebP), so EPS never
reaches Ghostscript and PSD/SPIDER never reach their decoders; counts and headers are checked before pixels;
decoding runs in a small pool; oversized chunked bodies are 413. Against a real `avatar serve`."""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from ltx2.services.uploads import UploadLimits, store_image
from tests.api_helpers import assert_problem
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow
MB = 2**20


def rgb_png(width: int, height: int) -> bytes:
    """A real 8-bit RGB PNG of one colour, compressed row by row (the pixels are never held here)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\0" + b"\x60\x90\xc0" * width
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def eps() -> bytes:
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 300 300\n%%EndComments\n"
        b"newpath 0 0 moveto 300 300 lineto stroke showpage\n%%EOF\n"
    )


def psd(width: int = 300, height: int = 300) -> bytes:
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    return header + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + b"\x80" * (width * height * 3)


def spider() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).random((300, 300), dtype=np.float32), "F").save(buf, "SPIDER")
    return buf.getvalue()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def fake_gs(tmp_path_factory) -> tuple[Path, Path]:
    """A `gs` first on the server's PATH that leaves a mark if anything ever runs it."""
    folder = tmp_path_factory.mktemp("fake-gs")
    marker = folder / "gs-was-run"
    gs = folder / "gs"
    gs.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    gs.chmod(0o755)
    return folder, marker


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_gs):
    folder, _ = fake_gs
    env = {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "AVATAR_MAX_UPLOAD_MB": "4"}
    with LiveServer(tmp_path_factory.mktemp("uploads"), workers=0, env=env) as live:
        yield live


def test_eps_psd_spider_are_refused_on_every_upload_route_and_gs_never_runs(server, fake_gs):
    _, marker = fake_gs
    # Pillow would open each of these if asked without an allow-list (EPS then runs gs on load).
    for data in (eps(), psd(), spider()):
        Image.open(io.BytesIO(data)).close()
    hostile = [("photo.eps", eps()), ("photo.psd", psd()), ("photo.spider", spider())]
    for name, data in hostile:
        body = assert_problem(server.client.post("/v1/files", files={"file": (name, data, "image/png")}), 415)
        assert "PNG, JPEG, WebP" in body["detail"]
    files = [("photos", (name, data, "image/png")) for name, data in hostile]
    trained = assert_problem(server.client.post("/v1/trainings", data={"name": "eve"}, files=files), 422)
    seed = assert_problem(
        server.client.post(
            "/train-face", data={"person_name": "eve"}, files=[("training_photos", f[1]) for f in files]
        ),
        422,
    )
    for body in (trained, seed):
        named = {p["photo"]: p["reason"] for p in body["problems"]}
        assert set(named) == {n for n, _ in hostile}, body
        assert all(r.startswith("not an image") for r in named.values()), named
    assert not marker.exists(), "Ghostscript ran on an uploaded file"
    uploads = server.root / "outputs" / ".state" / "uploads"
    assert not [p for p in uploads.iterdir() if not p.name.startswith(".")]


def test_oversized_chunked_body_is_413_not_400(server):
    def body():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        for _ in range(8):  # 8 MB against a 5 MB body limit, no Content-Length
            yield b"\0" * MB
        yield b"\r\n--b--\r\n"

    response = server.client.post(
        "/v1/files", content=body(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


def test_twelve_49_megapixel_photos_are_refused_without_decoding(tmp_path):
    photo = rgb_png(7000, 7000)  # 49 MP, ~150 KB: the request is 12 of them
    with LiveServer(tmp_path / "bomb", workers=0) as live:
        pid = live.proc.pid
        live.client.get("/health")
        before = peak_rss_mb(pid)
        started = time.monotonic()
        twelve = [("training_photos", (f"big{i}.png", photo, "image/png")) for i in range(12)]
        body = assert_problem(live.client.post("/train-face", data={"person_name": "Big"}, files=twelve), 422)
        elapsed_12 = time.monotonic() - started
        assert "12 photos given: at most 10" in body["detail"]
        # Ten: the count is fine, so each header is read — and each is refused before a pixel is decoded.
        started = time.monotonic()
        ten = [("photos", (f"big{i}.png", photo, "image/png")) for i in range(10)]
        body = assert_problem(live.client.post("/v1/trainings", data={"name": "Big"}, files=ten), 422)
        elapsed_10 = time.monotonic() - started
        assert len(body["problems"]) == 10 and all("too large (7000x7000" in p["reason"] for p in body["problems"])
        grown = peak_rss_mb(pid) - before
        print(f"12 x 49 MP refused in {elapsed_12:.2f}s, 10 x 49 MP in {elapsed_10:.2f}s; peak RSS +{grown:.0f} MB")
        # Decoding one of them would hold 147 MB of RGB pixels.
        assert grown < 60


def test_parallel_large_uploads_queue_for_the_decode_pool(tmp_path):
    """Four 39.7 MP photos at once. One decode and re-encode holds ~0.3 GB at its peak; with the default pool of
    two the server's peak RSS must grow by less than 800 MB (measured: ~0.6 GB; a pool of four: ~1.2 GB)."""
    photo = rgb_png(7000, 5670)
    with LiveServer(tmp_path / "parallel", workers=0) as live:
        pid = live.proc.pid
        live.client.get("/health")
        before = peak_rss_mb(pid)
        running, most = [0], [0]
        lock = threading.Lock()

        def upload(i):
            with httpx.Client(base_url=live.url, timeout=120) as c:
                with lock:
                    running[0] += 1
                    most[0] = max(most[0], running[0])
                try:
                    return c.post("/v1/files", files={"file": (f"p{i}.png", photo, "image/png")})
                finally:
                    with lock:
                        running[0] -= 1

        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(upload, range(4)))
        elapsed = time.monotonic() - started
        assert [r.status_code for r in responses] == [201] * 4, [r.text[:200] for r in responses]
        assert all(r.json()["meta"]["width"] == 7000 for r in responses)
        grown = peak_rss_mb(pid) - before
        print(f"4 parallel 39.7 MP uploads: {elapsed:.1f}s, peak RSS +{grown:.0f} MB (4 requests in flight: {most[0]})")
        assert most[0] == 4  # they really were sent at once
        assert grown < 800


def test_phone_sized_jpeg_is_downscaled_on_decode_not_refused(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (8000, 6000), (30, 90, 150)).save(buf, "JPEG", quality=80)  # 48 MP, as phones take them
    stored = store_image(buf.getvalue(), tmp_path / "up", UploadLimits())
    assert (stored.width, stored.height) == (4000, 3000)  # decoded at 1/2 scale by libjpeg, under 40 MP
    png = rgb_png(8000, 6000)
    with pytest.raises(Exception, match="the limit is 40 MP"):
        store_image(png, tmp_path / "up", UploadLimits())  # PNG cannot be decoded smaller: refused
