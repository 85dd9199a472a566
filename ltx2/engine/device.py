"""Device choice and the two CPU shims ltx-pipelines needs when CUDA is absent."""

from __future__ import annotations

import torch

_shimmed = False


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but this torch build sees no CUDA GPU")
    return device


def apply_cpu_shims() -> bool:
    """ltx-pipelines calls torch.cuda.synchronize()/empty_cache() unconditionally; a CPU torch raises.

    Only when CUDA is unavailable are both replaced with no-ops. Returns whether the shims are active.
    """
    global _shimmed
    if torch.cuda.is_available():
        return False
    if not _shimmed:
        torch.cuda.synchronize = lambda *a, **k: None
        torch.cuda.empty_cache = lambda *a, **k: None
        _shimmed = True
    return True
