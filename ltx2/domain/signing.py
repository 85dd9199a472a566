"""Signed, expiring URL tokens: a link to one path that works without the API key until it expires.

Replicate's clients fetch output files and the stream URL without an `Authorization` header (the JS client
always, a browser's `<video src>` and n8n's plain HTTP node too), so those URLs carry `?token=EXPIRES.SIG` where
SIG is an HMAC-SHA256 of the path and the expiry under a server secret. The token names the path, so it opens
nothing else; it is checked in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from dataclasses import dataclass

TOKEN_PARAM = "token"
# Expiries are rounded up to this grain so repeated reads of a document hand out the same URL (browser caches).
_GRAIN_S = 60


def _mac(secret: bytes, path: str, expires: int) -> str:
    digest = hmac.new(secret, f"{expires}:{path}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class UrlSigner:
    secret: bytes
    ttl_s: float

    def token(self, path: str, now: float) -> str:
        expires = int(math.ceil((now + self.ttl_s) / _GRAIN_S) * _GRAIN_S)
        return f"{expires}.{_mac(self.secret, path, expires)}"

    def sign(self, url: str, path: str, now: float) -> str:
        """`url` (whose path is `path`) with a token for that path appended."""
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}{TOKEN_PARAM}={self.token(path, now)}"

    def verify(self, path: str, token: str | None, now: float) -> bool:
        expires, _, mac = (token or "").partition(".")
        if not expires.isdigit() or not mac or int(expires) < now:
            return False
        return hmac.compare_digest(mac, _mac(self.secret, path, int(expires)))
