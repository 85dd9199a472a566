"""Device choice, the compute dtype, and the two CPU shims ltx-pipelines needs when CUDA is absent."""

from __future__ import annotations

import os
from pathlib import Path

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


# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) under which bf16 matmuls and convolutions run natively.
_NATIVE_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX10")


def cpu_has_native_bf16(cpuinfo: str | None = None, environ: dict[str, str] | None = None) -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX) rather than emulating it.

    Emulated bf16 is about 25x slower than float32 for the pipelines' convolutions and matmuls. A limit set
    with ONEDNN_MAX_CPU_ISA or ATEN_CPU_CAPABILITY (how a faster machine imitates a slower one) is honoured.
    """
    env = os.environ if environ is None else environ
    isa = env.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if isa and isa != "ALL" and not isa.startswith(_NATIVE_BF16_ISAS):
        return False
    if env.get("ATEN_CPU_CAPABILITY", "").lower() in ("default", "avx2"):
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False  # not Linux: float32 is the safe choice (correct everywhere, fast everywhere)
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def compute_dtype(device: torch.device, setting: str = "auto") -> torch.dtype:
    """The dtype the models compute in: bf16 (the release's) on CUDA and on CPUs with native bf16, else float32.

    `setting` ("auto", "bfloat16" or "float32", from AVATAR_CPU_DTYPE) overrides the choice on CPU. Outputs are
    deterministic per dtype, not across dtypes.
    """
    if device.type != "cpu":
        return torch.bfloat16
    if setting == "auto":
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return {"bfloat16": torch.bfloat16, "float32": torch.float32}[setting]
