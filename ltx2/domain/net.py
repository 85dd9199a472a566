"""Addresses: what counts as loopback, what a server told to listen on a host really binds, and which addresses
belong to this machine. The one copy of these rules: the API, `avatar serve`, the fetcher and the studio use it."""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_literal(host: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` (and ``*.localhost``, which resolvers and browsers pin to loopback) and loopback IP
    literals. Never resolves a name; ``""`` and None are *not* loopback (they mean every interface)."""
    if not host:
        return False
    name = host.strip().rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = ip_literal(name)
    return ip is not None and ip.is_loopback


def bind_addresses(host: str | None, port: int = 0) -> list[IPAddress]:
    """The addresses a server told to listen on ``host`` will really bind: ``""``/None is every interface
    (asyncio binds 0.0.0.0 and ::), a name is whatever the resolver answers for it."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve the listen address {host!r}: {exc}") from None
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


def binds_loopback_only(host: str | None) -> bool:
    """Whether listening on ``host`` stays on this machine (every bound address is loopback)."""
    try:
        addresses = bind_addresses(host)
    except ValueError:
        return False
    return bool(addresses) and all(is_loopback(str(a)) for a in addresses)


@lru_cache(maxsize=256)
def is_local_address(ip: str) -> bool:
    """Whether ``ip`` belongs to this machine (it can be bound here)."""
    addr = ipaddress.ip_address(ip)
    if addr.is_loopback or addr.is_unspecified:
        return True
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False
