"""/openapi.json, /docs and /redoc behind the API key (README "Security"): with keys configured, the schema and the
interactive pages need one like every other route; a keyless (loopback) server shows them as before.

The schema says what really comes back: every error as `application/problem+json` (RFC 9457; 401 on keyed
routes, 404 where a path names something, 409 on state changes, 422 where input is read), and the key as a
bearer (or `X-API-Key`) security scheme, so a generated client sends it and knows the error shape."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from ltx2.api.errors import PROBLEM

PROBLEM_SCHEMA = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; a validation error lists every field in `errors`.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
    },
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": True,
}
_WHY = {
    "401": "No valid API key (or signed URL)",
    "404": "Not found",
    "409": "Conflict with the current state",
    "422": "Invalid input",
}


def _problem(code: str) -> dict:
    return {"description": _WHY[code], "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def build_schema(app: FastAPI, open_routes: list) -> dict:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 shape, which this API never sends
        schemas.pop(unused, None)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY (or Token KEY)"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    public = {(route.path, method.lower()) for route in open_routes for method in route.methods}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            codes = []
            if (path, method) not in public:
                codes.append("401")
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
            if "{" in path:
                codes.append("404")
            if method in ("post", "put", "patch", "delete"):
                codes.append("409")
            if operation.get("parameters") or operation.get("requestBody"):
                codes.append("422")
            for code in codes:
                responses[code] = _problem(code)
            for response in responses.values():  # bytes and text routes: say so, for generated clients
                for media_type, content in (response.get("content") or {}).items():
                    if not content.get("schema") and "json" not in media_type:
                        text = media_type.startswith("text/")
                        content["schema"] = {"type": "string"} if text else {"type": "string", "format": "binary"}
    return schema


def install(app: FastAPI, dependencies: list, open_routers: list[APIRouter]) -> None:
    """`open_routers`: the routers served without a key; every other operation is documented as keyed."""
    open_routes = [route for router in open_routers for route in router.routes if isinstance(route, APIRoute)]

    def openapi_schema() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = build_schema(app, open_routes)
        return app.openapi_schema

    app.openapi = openapi_schema
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
