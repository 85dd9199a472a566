"""The studio answers only to this machine's names: a DNS-rebinding page (Host: evil.example) gets a refusal.

Streamlit itself serves its static page to any Host and checks only the WebSocket's Origin against the Host
(with CORS protection on, as the launcher sets it). A rebinding page passes that check — its Origin and Host are
both its own name — so every script run checks the Host here, before anything talks to the API.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

from ltx2.domain.net import ip_literal, is_local_address, is_loopback


def allowed_hosts() -> set[str]:
    """AVATAR_ALLOWED_HOSTS (a JSON list, as the API reads it) plus AVATAR_PUBLIC_URL's host."""
    raw = os.environ.get("AVATAR_ALLOWED_HOSTS", "").strip()
    try:
        hosts = json.loads(raw) if raw.startswith("[") else [h for h in raw.split(",") if h.strip()]
    except ValueError:
        hosts = []
    names = {str(h).strip().lower().rstrip(".") for h in hosts}
    public = os.environ.get("AVATAR_PUBLIC_URL")
    if public:
        names.add((urlsplit(public).hostname or "").lower())
    return names


def host_allowed(host_header: str | None) -> bool:
    if not host_header:
        return True  # no Host: not a browser, so not a rebinding page
    try:
        host = (urlsplit(f"//{host_header}").hostname or "").rstrip(".")
    except ValueError:
        return False
    allowed = allowed_hosts()
    if "*" in allowed or host in allowed or is_loopback(host):
        return True
    ip = ip_literal(host)
    return ip is not None and is_local_address(str(ip))
