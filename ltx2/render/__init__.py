"""Rendering on the resident engine: one clip (`clip`: plan, generate, encode) and a long script (`script`:
segments with continuity, resume and retake, stitched into one video)."""

from ltx2.render.clip import ClipSpec, RenderResult, audio_seconds, plan_request, render, render_model
from ltx2.render.script import PlannedSegment, ScriptResult, ScriptSpec, plan_script, render_script

__all__ = [
    "ClipSpec",
    "PlannedSegment",
    "RenderResult",
    "ScriptResult",
    "ScriptSpec",
    "audio_seconds",
    "plan_request",
    "plan_script",
    "render",
    "render_model",
    "render_script",
]
