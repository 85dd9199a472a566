"""Addresses: which listen addresses keep a server on this machine."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    """Only loopback counts as private. No address at all means every interface to uvicorn and Streamlit."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
