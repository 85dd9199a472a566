"""Request dependencies: the store, settings and API-key auth, as `Annotated` types routes declare."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from ltx2.domain.errors import Problem
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


def has_key(request: Request) -> bool:
    """Whether the request may see keyed things: no keys configured, or a valid one given."""
    keys: list[str] = request.app.state.settings.api_keys
    if not keys:
        return True
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return bool(given) and any(hmac.compare_digest(given.encode(), k.encode()) for k in keys)


async def require_key(request: Request) -> None:
    """`Authorization: Bearer KEY` or `X-API-Key: KEY`, when keys are configured."""
    if has_key(request):
        return
    raise Problem(
        401,
        "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)",
        headers={"WWW-Authenticate": "Bearer"},
    )
