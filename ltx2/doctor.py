"""`avatar doctor`: can this machine generate, and with which weights? Every check reports, none raises."""

from __future__ import annotations

import platform
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from ltx2.settings import VERIFIED_FILE, Settings
from ltx2.weights import FIX_COMMAND, REAL_WEIGHTS_DISK_GB, model_family, verify

Status = Literal["ok", "warn", "fail"]

# Below this much VRAM the 19B model is unlikely to fit even with FP8 weights (~19 GB for the transformer).
MIN_VRAM_GB = 24
# Free space wanted for rendered clips and intermediate files.
MIN_OUTPUT_GB = 2
_GB = 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def _check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", "ok" if ok else "fail", f"{platform.python_version()} ({sys.executable})")


def _check_torch() -> Check:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install is what doctor reports
        return Check("torch", "fail", f"cannot import torch: {exc}")
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    return Check("torch", "ok", f"{torch.__version__} ({build})")


def _check_gpu() -> Check:
    try:
        import torch
    except Exception:  # noqa: BLE001 - reported by the torch check
        return Check("gpu", "warn", "torch unavailable, GPU not checked")
    if not torch.cuda.is_available():
        hint = "" if torch.version.cuda else " (and this torch is a CPU-only build)"
        return Check("gpu", "warn", f"no GPU: only the tiny checkpoint is practical{hint}")
    try:
        index = torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        free, total = torch.cuda.mem_get_info(index)
    except Exception as exc:  # noqa: BLE001 - a driver problem is a finding, not a crash
        return Check("gpu", "fail", f"CUDA is available but the GPU cannot be queried: {exc}")
    detail = f"{name}: {total / _GB:.1f} GB VRAM, {free / _GB:.1f} GB free ({torch.cuda.device_count()} device(s))"
    if total / _GB < MIN_VRAM_GB:
        return Check("gpu", "warn", f"{detail}; under {MIN_VRAM_GB} GB the 19B model will likely not fit")
    return Check("gpu", "ok", detail)


def _existing_parent(path: Path) -> Path:
    """disk_usage needs an existing path; a folder not created yet lives on its nearest existing parent."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _weights_complete(settings: Settings) -> bool:
    return settings.checkpoint is not None and all(r.ok for r in verify(settings, check_hash=False))


def _check_disk(name: str, folder: Path, min_gb: float, need: str) -> Check:
    try:
        usage = shutil.disk_usage(_existing_parent(folder))
    except OSError as exc:
        return Check(name, "warn", f"{folder}: cannot read free space ({exc})")
    free_gb = usage.free / _GB
    detail = f"{folder}: {free_gb:.1f} GB free of {usage.total / _GB:.1f} GB"
    if free_gb < min_gb:
        return Check(name, "warn", f"{detail}; under {min_gb:g} GB, not enough for {need}")
    return Check(name, "ok", detail)


def _check_weights(settings: Settings, deep: bool) -> Check:
    try:
        results = verify(settings, check_hash=deep)
    except Exception as exc:  # noqa: BLE001
        return Check("weights", "fail", f"cannot check weights: {exc}")
    bad = [r for r in results if not r.ok]
    if settings.checkpoint is None:
        root = settings.tiny_dir
        record = Path(settings.models_dir) / VERIFIED_FILE
        if settings.use_verified and record.exists():
            return Check(
                "weights",
                "fail",
                f"{record} lists real weights that are gone or changed since they were "
                f"verified, so runs fall back to the tiny checkpoint; run `{FIX_COMMAND}` again",
            )
        if not bad:
            return Check("weights", "ok", f"tiny test checkpoint set at {root} (random weights: output is noise)")
        if all(r.reason == "missing" for r in bad):
            return Check("weights", "warn", f"tiny test checkpoint not built yet; it is built at {root} on first use")
        first = bad[0]
        return Check("weights", "fail", f"tiny set damaged: {first.path}: {first.reason}; delete {root} to rebuild it")
    if not bad:
        total = sum(r.size or 0 for r in results) / _GB
        return Check("weights", "ok", f"{len(results)} files verified ({total:.1f} GB)")
    first = bad[0]
    count = f"{len(bad)} of {len(results)} weight files missing or invalid, first: " if len(bad) > 1 else ""
    return Check("weights", "fail", f"{count}{first.role} {first.path}: {first.reason}; run `{FIX_COMMAND}`")


def _check_family(settings: Settings) -> Check:
    if settings.checkpoint is None:
        return Check("checkpoint", "ok", "tiny (LTX-2 layout, for tests and development only)")
    path = Path(settings.checkpoint)
    if not path.is_file():
        return Check("checkpoint", "fail", f"{path} not found; run `{FIX_COMMAND}`")
    return Check("checkpoint", "ok", f"{model_family(path)} ({path.name})")


def _check_codecs() -> Check:
    try:
        import av
    except Exception as exc:  # noqa: BLE001
        return Check("codecs", "fail", f"cannot import PyAV: {exc}")
    missing = []
    for codec in ("libx264", "aac"):
        try:
            av.codec.Codec(codec, "w")
        except Exception:  # noqa: BLE001 - an absent encoder raises UnknownCodecError (or similar)
            missing.append(codec)
    if missing:
        return Check("codecs", "fail", f"PyAV {av.__version__} lacks encoder(s) {', '.join(missing)}: MP4 export fails")
    return Check("codecs", "ok", f"PyAV {av.__version__}: libx264 and aac encoders available")


def _check_packages() -> Check:
    versions, missing = [], []
    for dist in ("ltx-core", "ltx-pipelines"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            missing.append(dist)
    if missing:
        return Check("ltx packages", "fail", f"not installed: {', '.join(missing)}")
    return Check("ltx packages", "ok", ", ".join(versions))


def run_doctor(settings: Settings, *, deep: bool = False) -> list[Check]:
    """All checks, in the order the CLI prints them.

    `deep` also compares sha256 hashes where the file table knows them (minutes for ~60 GB), so it is opt-in.
    """
    real_needed = not _safe(lambda: _weights_complete(settings), False)
    disk_need = f"the real weights (~{REAL_WEIGHTS_DISK_GB} GB)"
    models_min_gb = REAL_WEIGHTS_DISK_GB if real_needed else 0  # already downloaded: nothing more to fit
    checks: list[Callable[[], Check]] = [
        _check_python,
        _check_torch,
        _check_gpu,
        lambda: _check_disk("disk (models)", settings.models_dir, models_min_gb, disk_need),
        lambda: _check_disk("disk (outputs)", settings.outputs_dir, MIN_OUTPUT_GB, "rendered clips"),
        lambda: _check_weights(settings, deep),
        lambda: _check_family(settings),
        _check_codecs,
        _check_packages,
    ]
    out = []
    for check in checks:
        try:
            out.append(check())
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            out.append(Check(getattr(check, "__name__", "check").lstrip("_"), "fail", f"check crashed: {exc}"))
    return out


def _safe(fn: Callable, default):
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return default


_MARK = {"ok": " ok ", "warn": "warn", "fail": "FAIL"}


def format_checks(checks: Iterable[Check]) -> str:
    checks = list(checks)
    width = max((len(c.name) for c in checks), default=0)
    lines = [f"[{_MARK.get(c.status, c.status)}] {c.name.ljust(width)}  {c.detail}" for c in checks]
    fails = sum(c.status == "fail" for c in checks)
    warns = sum(c.status == "warn" for c in checks)
    lines.append(f"{fails} failed, {warns} warning(s), {len(checks) - fails - warns} ok")
    return "\n".join(lines)


def exit_status(checks: Iterable[Check]) -> int:
    """Process exit code for the CLI: 1 when any check failed, warnings alone are fine."""
    return 1 if any(c.status == "fail" for c in checks) else 0
