"""`avatar serve` refuses to expose the API without a key; the supervisor restarts crashed workers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ltx2.domain.net import is_loopback
from ltx2.serve import check_bind
from ltx2.settings import Settings


@pytest.mark.parametrize(
    "host, loop",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_loopback_detection(host, loop):
    assert is_loopback(host) is loop


def test_public_bind_without_key_is_refused():
    with pytest.raises(SystemExit, match="without an API key"):
        check_bind(Settings(host="0.0.0.0"))
    check_bind(Settings(host="0.0.0.0", api_keys=["secret"]))
    check_bind(Settings(host="127.0.0.1"))
    # Bug: the server's copy took "" for loopback, but an empty host means every interface.
    with pytest.raises(SystemExit, match="without an API key"):
        check_bind(Settings(host=""))


def test_cli_serve_refuses_before_starting_anything(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ltx2.cli", "serve", "--no-ui", "--host", "0.0.0.0", "--port", "9"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "AVATAR_OUTPUTS_DIR": str(tmp_path), "AVATAR_API_KEYS": "[]"},
    )
    assert proc.returncode != 0
    assert "refusing to listen on 0.0.0.0 without an API key" in proc.stderr
    assert not (tmp_path / ".state").exists()  # nothing was started or written
