"""Request dependencies: the store, settings and API-key auth, as `Annotated` types routes declare."""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import Depends, Header, Request

from ltx2.domain.errors import Problem
from ltx2.domain.signing import TOKEN_PARAM
from ltx2.settings import Settings
from ltx2.store.jobs import JobStore


# The dependencies are `async def` because they do no I/O: FastAPI runs a plain `def` dependency in its
# threadpool, and these three hops per request cost more CPU than the database read itself.
async def store(request: Request) -> JobStore:
    return request.app.state.store


async def settings(request: Request) -> Settings:
    return request.app.state.settings


StoreDep = Annotated[JobStore, Depends(store)]
SettingsDep = Annotated[Settings, Depends(settings)]
PreferHeader = Annotated[str | None, Header(description="wait or wait=N: block up to N s (≤60) for the result")]
IdempotencyHeader = Annotated[str | None, Header(max_length=255)]


def has_key(request: Request) -> bool:
    """Whether the request may see keyed things: no keys configured, or a valid one given."""
    keys: list[str] = request.app.state.settings.api_keys
    if not keys:
        return True
    given = request.headers.get("x-api-key")
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if given is None and scheme.lower() in ("bearer", "token"):  # Token: Replicate's own spelling
        given = credentials.strip()
    return bool(given) and any(hmac.compare_digest(given.encode(), k.encode()) for k in keys)


def has_signed_url(request: Request) -> bool:
    """A GET of a URL the server signed (output files, the stream): valid for its path until it expires."""
    signer = request.app.state.store.links.signer
    if request.method not in ("GET", "HEAD") or signer is None:
        return False
    return signer.verify(request.url.path, request.query_params.get(TOKEN_PARAM), time.time())


async def require_key(request: Request) -> None:
    """`Authorization: Bearer KEY` (or `Token KEY`) or `X-API-Key: KEY`, when keys are configured; a signed URL
    stands in for the key on the one path it names."""
    if has_key(request) or has_signed_url(request):
        return
    raise Problem(
        401,
        "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)",
        headers={"WWW-Authenticate": "Bearer"},
    )
