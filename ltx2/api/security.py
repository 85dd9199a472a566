"""Who may talk to the API from a browser: a trusted-Host check and a cross-site check on state-changing requests.

The default setup is loopback with no key, reached through an SSH tunnel — so a web page the user visits is the
attacker. Two doors are shut here, before routing:

* **DNS rebinding**: a page on ``evil.example`` re-resolves its own name to 127.0.0.1 and then reads answers as
  "same origin". Its requests still carry ``Host: evil.example``. Only these Host values are answered: loopback
  names and literals, IP literals of this machine (a rebinding attack needs a name; an IP is its own origin), the
  host of ``AVATAR_PUBLIC_URL`` and ``AVATAR_ALLOWED_HOSTS`` (``"*"`` turns the check off). Others → 400.
* **Cross-site requests** (CSRF): a form POST from any page needs no preflight. On POST/PUT/PATCH/DELETE,
  ``Sec-Fetch-Site: cross-site`` and an ``Origin`` other than the server's own (or one in
  ``AVATAR_ALLOWED_ORIGINS``), including ``Origin: null``, → 403. A request with neither header (curl, n8n,
  the studio's server-side client, SDKs) is not a browser's cross-site request and passes.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from ltx2.domain.net import ip_literal, is_local_address, is_loopback
from ltx2.settings import Settings

PROBLEM = b"application/problem+json"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _split_host(value: str) -> tuple[str, int | None]:
    """'Host' / netloc → (lower-case host without brackets, port or None)."""
    try:
        parts = urlsplit(f"//{value}")
        return (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return "", None


class BrowserGuard:
    """Pure ASGI middleware (runs before routing and before any body is read)."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.any_host = "*" in settings.allowed_hosts
        hosts = {h.lower().rstrip(".") for h in settings.allowed_hosts}
        if settings.public_url:
            hosts.add(_split_host(urlsplit(settings.public_url).netloc)[0])
        if settings.host and settings.host not in ("0.0.0.0", "::"):
            hosts.add(settings.host.lower().strip("[]"))
        self.hosts = frozenset(hosts)
        self.origins = frozenset(o.lower().rstrip("/") for o in settings.allowed_origins)
        if settings.public_url:
            public = urlsplit(settings.public_url)
            self.origins |= {f"{public.scheme}://{public.netloc}".lower()}

    def host_allowed(self, host: str) -> bool:
        if self.any_host or host in self.hosts or is_loopback(host):
            return True
        ip = ip_literal(host)
        return ip is not None and is_local_address(str(ip))

    @staticmethod
    def same_origin(origin: str, host_header: str, scheme: str) -> bool:
        try:
            parts = urlsplit(origin.lower())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return False
            o_host, o_port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a malformed port
            return False
        h_host, h_port = _split_host(host_header)
        # Same origin: the page was served by this very host and port (the scheme may differ behind a TLS proxy).
        return o_host == h_host and o_port == (h_port or (443 if scheme == "https" else 80))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host_header = headers.get("host", "")
        host = _split_host(host_header)[0]
        if host_header and not self.host_allowed(host):
            return await _problem(
                scope,
                send,
                400,
                "Untrusted host",
                f"this server does not answer to the host name {host!r}; add it to "
                "AVATAR_ALLOWED_HOSTS (or set AVATAR_PUBLIC_URL) if it is yours",
            )
        if scope["method"] not in SAFE_METHODS:
            site = headers.get("sec-fetch-site")
            origin = headers.get("origin")
            listed = origin is not None and origin.lower().rstrip("/") in self.origins
            if not listed and (
                site == "cross-site"
                or (origin is not None and not self.same_origin(origin, host_header, scope.get("scheme", "http")))
            ):
                return await _problem(
                    scope,
                    send,
                    403,
                    "Cross-site request refused",
                    f"a {scope['method']} from another web site (Origin: {origin or 'none'}, "
                    f"Sec-Fetch-Site: {site or 'none'}) is refused; call the API from its own "
                    "pages, a server or curl, or list the origin in AVATAR_ALLOWED_ORIGINS",
                )
        return await self.app(scope, receive, send)


async def _problem(scope, send, status: int, title: str, detail: str) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": scope.get("path", "")}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", PROBLEM), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
