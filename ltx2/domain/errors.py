"""Typed engine errors: callers (CLI, worker) turn them into one clear line or a job's error_code."""

from __future__ import annotations


class EngineError(Exception):
    code = "engine_error"


class InvalidInputError(EngineError, ValueError):
    """The request cannot run as given (size, frame count, file that is not an image/audio…)."""

    code = "invalid_input"


class JobCanceled(EngineError):
    code = "canceled"


class OutOfMemoryError(EngineError):
    code = "out_of_memory"
