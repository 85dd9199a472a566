"""The one guarded fetcher for outbound URLs (what counts as loopback and what the server binds: ltx2.domain.net).

Every URL the server fetches on a user's behalf (webhooks today, image URLs next) goes through
:func:`guarded_client` / :func:`fetch`. The policy is the one trusted platforms use against SSRF:

* the name is resolved once; **every** address it resolves to is checked, and the connection goes to the checked
  address (the URL's host is swapped for it, the ``Host`` header and TLS SNI keep the name), so a second DNS answer
  (rebinding) cannot slip in between check and connect;
* refused: loopback, private (RFC 1918, ULA), link-local (169.254/16 cloud metadata, fe80::/10), CGNAT 100.64/10,
  unspecified, multicast, reserved, and this server's own listening ports on any local address. Odd spellings
  (``127.1``, ``0x7f000001``, ``2130706433``, ``::ffff:127.0.0.1``, ``127。0。0。1``) are normalised by the
  resolver and the URL parser first, so they are checked as the address they really reach;
* an explicit allow-list (``AVATAR_FETCH_ALLOW``: ``host`` or ``host:port`` entries, compared with the URL as
  written) lets a local receiver through — by default n8n on this machine, ``localhost:5678``/``127.0.0.1:5678``;
* no proxies from the environment (a proxy would connect somewhere we did not check), redirects never followed,
  timeouts on every phase, response bodies capped.

No torch here: the API process imports this module.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

import httpx

from ltx2.domain.net import IPAddress, is_local_address

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DEFAULT_MAX_BYTES = 20 * 2**20
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class FetchRefused(ValueError):
    """The URL may not be fetched: its reason is safe to show to the client. `status`: the HTTP status to answer."""

    status = 422


class FetchTooLarge(FetchRefused):
    status = 413


class FetchWrongType(FetchRefused):
    status = 415


# ----------------------------------------------------------------------------------------------------- policy


def refused_reason(ip: IPAddress) -> str | None:
    """Why an address may not be fetched, or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified (this machine)"
    if ip.is_link_local:
        return "link-local (cloud metadata)"
    if ip.version == 4 and ip in _CGNAT:
        return "shared address space 100.64.0.0/10"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return "private"
    return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _entry(text: str) -> tuple[str, int | None]:
    text = text.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, None


@dataclass(frozen=True)
class FetchPolicy:
    allow: tuple[tuple[str, int | None], ...] = ()
    own_ports: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, settings) -> FetchPolicy:
        return cls(
            allow=tuple(_entry(e) for e in settings.fetch_allow), own_ports=frozenset({settings.port, settings.ui_port})
        )

    def allowed(self, host: str, port: int) -> bool:
        return any(h == host and p in (None, port) for h, p in self.allow)

    def resolve(self, url: httpx.URL) -> IPAddress:
        """Check ``url`` and return the one address to connect to; raises FetchRefused."""
        if url.scheme not in ("http", "https"):
            raise FetchRefused(f"only http and https URLs are fetched, not {url.scheme or 'no scheme'!r}")
        host = url.host.lower().rstrip(".")
        if not host:
            raise FetchRefused("the URL has no host")
        if not host.isascii():
            raise FetchRefused(f"the host {host!r} is not a valid name")
        port = url.port or _default_port(url.scheme)
        try:
            infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchRefused(f"the host {host!r} does not resolve ({exc})") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(i[4][0].split("%")[0]) for i in infos))
        if not addresses:
            raise FetchRefused(f"the host {host!r} does not resolve")
        allowed = self.allowed(host, port)
        for ip in addresses:
            if port in self.own_ports and is_local_address(str(ip)):
                raise FetchRefused(f"{host}:{port} is this server itself ({ip})")
            reason = None if allowed else refused_reason(ip)
            if reason:
                raise FetchRefused(
                    f"{host} resolves to {ip}, a {reason} address; local receivers must be listed in "
                    "AVATAR_FETCH_ALLOW (e.g. '[\"localhost:5678\"]')"
                )
        return addresses[0]

    def check(self, url: str) -> None:
        """Create-time check of a URL a client gave (e.g. a webhook): raises FetchRefused.

        A name that does not resolve yet is let through here; delivery checks again and fails it then."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise FetchRefused(f"the URL is malformed: {exc}") from None
        try:
            self.resolve(parsed)
        except FetchRefused as exc:
            if "does not resolve" not in str(exc):
                raise


# -------------------------------------------------------------------------------------------------- fetching


class PolicyRefusal(httpx.ConnectError):
    """The transport would not connect: the policy refused the address. Final, not a network hiccup to retry."""


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: FetchPolicy, **kwargs):
        super().__init__(**kwargs)
        self.policy = policy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        name = request.url.host
        try:
            ip = self.policy.resolve(request.url)
        except FetchRefused as exc:
            raise PolicyRefusal(f"refused: {exc}", request=request) from None
        # Connect to the address that was checked; the Host header (set when the request was built) and SNI keep
        # the name, so virtual hosts and certificates still work.
        request.url = request.url.copy_with(host=str(ip))
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": name}
        return super().handle_request(request)


def guarded_client(policy: FetchPolicy, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT) -> httpx.Client:
    """An httpx client whose every request goes through ``policy``; redirects are never followed."""
    return httpx.Client(transport=_GuardedTransport(policy), timeout=timeout, follow_redirects=False, trust_env=False)


def fetch(
    url: str,
    policy: FetchPolicy,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    accept: tuple[str, ...] | None = None,
) -> bytes:
    """GET ``url`` through the policy: a 2xx body of at most ``max_bytes``, else FetchRefused.

    ``accept``: media types (``image/png``) or families (``image/``) the response's Content-Type must match; a body
    of another type, or one that says it is larger than the cap, is refused before it is read."""
    policy.check(url)
    with guarded_client(policy, timeout=timeout) as client:
        try:
            with client.stream("GET", url) as response:
                if not 200 <= response.status_code < 300:
                    raise FetchRefused(f"{url} answered HTTP {response.status_code} (redirects are not followed)")
                media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if accept is not None and not any(media_type.startswith(a) for a in accept):
                    raise FetchWrongType(f"{url} is {media_type or 'of no stated type'}, not {' or '.join(accept)}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise FetchTooLarge(f"{url} is larger than {_size(max_bytes)}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise FetchTooLarge(f"{url} is larger than {_size(max_bytes)}")
                return bytes(body)
        except httpx.HTTPError as exc:
            raise FetchRefused(f"{url} could not be fetched: {exc}") from None


def _size(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n} bytes"
