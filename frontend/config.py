"""Studio settings from the environment (no Streamlit here, so the launcher and tests can use it too)."""

from __future__ import annotations

import os

from ltx2.domain.net import is_loopback  # noqa: F401 - the one loopback rule, used by frontend.ui

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_UI_PORT = 8501
# What Create's boxes hold on a first visit: a real text to make the first clip with one click.
DEFAULT_TEXT = "Hello there, welcome to the studio. This is my very first clip."
DEFAULT_DESCRIPTION = "a friendly presenter with short dark hair and a blue shirt, in a bright studio"


def api_url() -> str:
    return (os.environ.get("AVATAR_API_URL") or DEFAULT_API_URL).rstrip("/")


def api_key() -> str | None:
    return os.environ.get("AVATAR_API_KEY") or None


def connect_host(host: str) -> str:
    """Where a local client reaches a server bound to `host` (a wildcard bind is reached on loopback)."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        return "127.0.0.1"
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host
