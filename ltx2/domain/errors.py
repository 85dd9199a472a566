"""Typed errors. Engine errors: callers (CLI, worker) turn them into one clear line or a job's error_code.
`Problem`: a use case refused (services raise it; the API answers it as RFC 9457 problem+json)."""

from __future__ import annotations

from http import HTTPStatus


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        extra: dict | None = None,
        headers: dict | None = None,
    ):
        super().__init__(detail)
        self.status, self.detail, self.type = status, detail, type_
        self.title = title or HTTPStatus(status).phrase
        self.extra = extra or {}
        self.headers = headers


class EngineError(Exception):
    code = "engine_error"


class InvalidInputError(EngineError, ValueError):
    """The request cannot run as given (size, frame count, file that is not an image/audio…)."""

    code = "invalid_input"


class JobCanceled(EngineError):
    code = "canceled"


class OutOfMemoryError(EngineError):
    code = "out_of_memory"
