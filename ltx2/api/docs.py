"""/openapi.json, /docs and /redoc behind the API key (README "Security"): with keys configured, the schema and the
interactive pages need one like every other route; a keyless (loopback) server shows them as before."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse


def install(app: FastAPI, dependencies: list) -> None:
    router = APIRouter(dependencies=dependencies, include_in_schema=False)

    @router.get("/openapi.json")
    def openapi():
        return JSONResponse(app.openapi())

    @router.get("/docs")
    def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @router.get("/redoc")
    def redoc():
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")

    app.include_router(router)
