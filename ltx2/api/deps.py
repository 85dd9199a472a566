"""Request dependencies: the store, settings and API-key auth, as `Annotated` types routes declare."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from ltx2.domain.errors import Problem
from ltx2.settings import Settings
from ltx2.store.jobs import JobStore


def store(request: Request) -> JobStore:
    return request.app.state.store


def settings(request: Request) -> Settings:
    return request.app.state.settings


StoreDep = Annotated[JobStore, Depends(store)]
SettingsDep = Annotated[Settings, Depends(settings)]


def require_key(request: Request) -> None:
    """`Authorization: Bearer KEY` or `X-API-Key: KEY`, when keys are configured."""
    keys: list[str] = request.app.state.settings.api_keys
    if not keys:
        return
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if given and any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
        return
    raise Problem(401, "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)",
                  headers={"WWW-Authenticate": "Bearer"})
