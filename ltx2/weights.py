"""Real LTX-2 weights: what a GPU host needs, downloading them from the Hugging Face hub, checking them,
and resolving which weight set (real or tiny) a run uses.

No torch at import time: the CLI lists, checks and downloads weights without loading a model stack.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC
from pathlib import Path
from typing import Literal

from ltx2.domain.digest import sha256_file
from ltx2.settings import VERIFIED_FILE, Settings, read_verified

DEFAULT_LTX_REPO = "Lightricks/LTX-2"
DEFAULT_GEMMA_REPO = "google/gemma-3-12b-it-qat-q4_0-unquantized"
GEMMA_DIR = "gemma-3-12b-it-qat-q4_0-unquantized"

Role = Literal["checkpoint", "spatial_upsampler", "distilled_lora", "gemma"]
ROLES: tuple[str, ...] = ("checkpoint", "spatial_upsampler", "distilled_lora", "gemma")
FIX_COMMAND = "avatar models download"
# Env vars (Settings fields with the AVATAR_ prefix) that point at an existing copy of the weights.
LOCATION_ENV_VARS = (
    "AVATAR_MODELS_DIR",
    "AVATAR_CHECKPOINT",
    "AVATAR_SPATIAL_UPSAMPLER",
    "AVATAR_DISTILLED_LORA",
    "AVATAR_GEMMA_ROOT",
)


@dataclass(frozen=True)
class WeightFile:
    repo: str  # default repo id; download_plan() swaps in the repos configured in Settings
    filename: str  # path inside the repo
    local: str  # path under settings.models_dir
    role: Role
    size: int | None = None  # bytes, when known exactly
    sha256: str | None = None  # hex digest, when known
    # False for files the pipelines do not read (verify skips them when absent, so a repo that lacks
    # one does not fail a complete download).
    required: bool = True


def _gemma(name: str, required: bool = True) -> WeightFile:
    return WeightFile(DEFAULT_GEMMA_REPO, name, f"{GEMMA_DIR}/{name}", "gemma", required=required)


# THE file table. Names come from the Lightricks/LTX-2 model card and the ltx-pipelines README (the
# distilled FP8 checkpoint, x2 spatial upscaler 1.0 and rank-384 distilled LoRA) and from the layout of
# Google's Gemma 3 12B QAT "unquantized" repo (five bf16 shards with an index, SentencePiece + fast
# tokenizer, processor configs), as widely referenced by LTX-2 setups. They were not checked against the
# live hub from this machine (no access): correct them here if the hub differs. Sizes and hashes are left
# None (unknown); fill them in to make `verify` stricter. ltx-core needs, under the Gemma root,
# `tokenizer.model`, `preprocessor_config.json` and `model*.safetensors` (found by glob).
WEIGHT_FILES: tuple[WeightFile, ...] = (
    WeightFile(
        DEFAULT_LTX_REPO,
        "ltx-2-19b-distilled-fp8.safetensors",
        "ltx-2-19b-distilled-fp8.safetensors",
        "checkpoint",
    ),
    WeightFile(
        DEFAULT_LTX_REPO,
        "ltx-2-spatial-upscaler-x2-1.0.safetensors",
        "ltx-2-spatial-upscaler-x2-1.0.safetensors",
        "spatial_upsampler",
    ),
    WeightFile(
        DEFAULT_LTX_REPO,
        "ltx-2-19b-distilled-lora-384.safetensors",
        "ltx-2-19b-distilled-lora-384.safetensors",
        "distilled_lora",
    ),
    *(_gemma(f"model-{i:05d}-of-00005.safetensors") for i in range(1, 6)),
    _gemma("model.safetensors.index.json"),
    _gemma("config.json"),
    _gemma("tokenizer.model"),
    _gemma("tokenizer.json"),
    _gemma("tokenizer_config.json"),
    _gemma("special_tokens_map.json"),
    _gemma("preprocessor_config.json"),
    _gemma("generation_config.json", required=False),
    _gemma("added_tokens.json", required=False),
    _gemma("processor_config.json", required=False),
)

# What a Gemma snapshot download fetches: the whole repo's weights, tokenizer and configs (README, licence
# and .gitattributes are skipped), so a differing shard count upstream still downloads completely.
GEMMA_ALLOW_PATTERNS = ["*.safetensors", "*.json", "tokenizer.model", "*.jinja"]

# Rough total of the plan above (checkpoint ~27 GB, LoRA ~8 GB, upscaler ~1 GB, Gemma ~24 GB) plus headroom.
REAL_WEIGHTS_DISK_GB = 60


class WeightsError(RuntimeError):
    """Base class for weight problems the CLI prints as one line."""


class WeightsMissingError(WeightsError, FileNotFoundError):
    """Configured weights are not on disk."""


class WeightsDownloadError(WeightsError):
    """A download failed for a reason other than reachability (disk full, file not in repo...)."""


class HubUnreachableError(WeightsDownloadError):
    """The Hugging Face hub cannot be reached from this machine."""


class HubAccessError(WeightsDownloadError):
    """The hub answered but refused (gated repo without accepted licence, bad token)."""


@dataclass(frozen=True)
class VerifyResult:
    path: Path
    role: str
    ok: bool
    reason: str  # "ok", or what is wrong
    size: int | None = None


@dataclass(frozen=True)
class WeightSet:
    checkpoint: Path
    spatial_upsampler: Path
    distilled_lora: Path
    gemma_root: Path
    tiny: bool = False

    def items(self) -> list[tuple[str, Path]]:
        return [
            ("checkpoint", self.checkpoint),
            ("spatial_upsampler", self.spatial_upsampler),
            ("distilled_lora", self.distilled_lora),
            ("gemma", self.gemma_root),
        ]


# --------------------------------------------------------------------------------------------- plan


def download_plan(settings: Settings | None = None) -> list[WeightFile]:
    """The file table with the repos configured in `settings` (hf_repo, hf_gemma_repo)."""
    if settings is None:
        return list(WEIGHT_FILES)
    repos = {DEFAULT_LTX_REPO: settings.hf_repo, DEFAULT_GEMMA_REPO: settings.hf_gemma_repo}
    return [replace(entry, repo=repos.get(entry.repo, entry.repo)) for entry in WEIGHT_FILES]


def planned_path(settings: Settings, role: str) -> Path:
    """Where the download puts `role` (for Gemma: the folder that is the Gemma root)."""
    if role == "gemma":
        return settings.models_dir / GEMMA_DIR
    for entry in WEIGHT_FILES:
        if entry.role == role:
            return settings.models_dir / entry.local
    raise ValueError(f"unknown weight role {role!r}; expected one of {', '.join(ROLES)}")


def _check_roles(roles: Iterable[str] | None) -> list[str]:
    if roles is None:
        return list(ROLES)
    roles = list(roles)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown weight role(s) {', '.join(unknown)}; expected some of {', '.join(ROLES)}")
    return roles


# ------------------------------------------------------------------------------------------- verify


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    """The metadata dict of a safetensors file; raises if its header is unreadable or the file truncated."""
    from safetensors import safe_open

    # numpy keeps torch out of the CLI; safetensors checks the header and that the data covers the file.
    try:
        handle = safe_open(str(path), framework="numpy")
    except ModuleNotFoundError:
        handle = safe_open(str(path), framework="pt")
    with handle as f:
        return dict(f.metadata() or {})


def verify_file(
    path: str | Path,
    role: str,
    *,
    size: int | None = None,
    sha256: str | None = None,
    check_hash: bool = True,
) -> VerifyResult:
    """One file: present, expected size, expected sha256, readable safetensors header."""
    path = Path(path)
    if not path.is_file():
        return VerifyResult(path, role, False, "missing" if not path.exists() else "not a file")
    actual = path.stat().st_size
    if size is not None and actual != size:
        return VerifyResult(path, role, False, f"size {actual} bytes, expected {size} (incomplete or corrupt)", actual)
    if path.suffix == ".safetensors":
        try:
            read_safetensors_metadata(path)
        except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
            return VerifyResult(path, role, False, f"unreadable safetensors header ({_one_line(exc)})", actual)
    elif path.suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return VerifyResult(path, role, False, f"invalid JSON ({_one_line(exc)})", actual)
    if sha256 and check_hash and sha256_file(path, 8 << 20).lower() != sha256.lower():
        return VerifyResult(path, role, False, "sha256 mismatch (corrupt or a different version)", actual)
    return VerifyResult(path, role, True, "ok", actual)


def verify_gemma_root(root: str | Path, *, check_hash: bool = True) -> list[VerifyResult]:
    """A Gemma folder as ltx-core reads it: tokenizer.model, preprocessor_config.json, every weight shard."""
    root = Path(root)
    if not root.is_dir():
        return [VerifyResult(root, "gemma", False, "missing" if not root.exists() else "not a folder")]
    results: list[VerifyResult] = []
    for marker in ("tokenizer.model", "preprocessor_config.json"):
        found = sorted(root.rglob(marker))
        if found:
            results.append(verify_file(found[0], "gemma"))
        else:
            results.append(VerifyResult(root / marker, "gemma", False, "missing"))
    shards = sorted(root.rglob("model*.safetensors"))
    if not shards:
        results.append(VerifyResult(root / "model*.safetensors", "gemma", False, "missing (no weight shards)"))
    expected = set(shards)
    for index in sorted(root.rglob("model.safetensors.index.json")):
        # The index names every shard: catches a download that stopped between shards.
        try:
            names = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        except (OSError, ValueError) as exc:
            results.append(VerifyResult(index, "gemma", False, f"invalid JSON ({_one_line(exc)})"))
            continue
        expected |= {index.parent / name for name in names}
    results.extend(verify_file(shard, "gemma", check_hash=check_hash) for shard in sorted(expected))
    return results


def _plan_results(settings: Settings, roles: Sequence[str], check_hash: bool) -> list[VerifyResult]:
    results: list[VerifyResult] = []
    for entry in download_plan(settings):
        if entry.role in roles and (entry.required or (settings.models_dir / entry.local).exists()):
            path = settings.models_dir / entry.local
            results.append(verify_file(path, entry.role, size=entry.size, sha256=entry.sha256, check_hash=check_hash))
    return results


def _known_entry(settings: Settings | None, path: Path) -> WeightFile | None:
    """The table entry for `path` when it is a planned location, so its size and hash apply."""
    if settings is None:
        return None
    for entry in WEIGHT_FILES:
        if (settings.models_dir / entry.local).resolve() == path.resolve():
            return entry
    return None


def _verify_weight_set(weights: WeightSet, settings: Settings | None, check_hash: bool) -> list[VerifyResult]:
    results: list[VerifyResult] = []
    for role, path in weights.items():
        if role == "gemma":
            planned_root = settings is not None and path.resolve() == planned_path(settings, "gemma").resolve()
            if planned_root and not weights.tiny:
                # The planned folder: check every file the table names, then the folder as ltx-core reads it.
                planned = _plan_results(settings, ["gemma"], check_hash)
                seen = {r.path.resolve() for r in planned}
                results.extend(planned)
                extra = verify_gemma_root(path, check_hash=check_hash)
                results.extend(r for r in extra if r.path.resolve() not in seen)
            else:
                results.extend(verify_gemma_root(path, check_hash=check_hash))
            continue
        entry = _known_entry(settings, path)
        size, sha256 = (entry.size, entry.sha256) if entry else (None, None)
        results.append(verify_file(path, role, size=size, sha256=sha256, check_hash=check_hash))
    return results


def verify(
    settings_or_paths: Settings | WeightSet | object | Iterable[tuple[str | Path, str]],
    *,
    check_hash: bool = True,
) -> list[VerifyResult]:
    """Check weights on disk without loading them.

    Accepts Settings (the weight set a run would use; the tiny set is checked, never built), a WeightSet,
    a tiny.TinyPaths, or (path, role) pairs.
    """
    if isinstance(settings_or_paths, Settings):
        settings = settings_or_paths
        return _verify_weight_set(_configured_weights(settings), settings, check_hash)
    if isinstance(settings_or_paths, WeightSet):
        return _verify_weight_set(settings_or_paths, None, check_hash)
    if _is_tiny_paths(settings_or_paths):
        return _verify_weight_set(_tiny_weight_set(settings_or_paths), None, check_hash)
    results: list[VerifyResult] = []
    for path, role in settings_or_paths:  # type: ignore[union-attr]
        path = Path(path)
        if path.is_dir():
            results.extend(verify_gemma_root(path, check_hash=check_hash))
        else:
            results.append(verify_file(path, role, check_hash=check_hash))
    return results


def _is_tiny_paths(obj: object) -> bool:
    # Duck-typed so that importing this module does not import tiny.py (and with it torch).
    return type(obj).__name__ == "TinyPaths" and hasattr(obj, "gemma_root") and hasattr(obj, "root")


def _tiny_weight_set(paths) -> WeightSet:
    return WeightSet(
        checkpoint=Path(paths.checkpoint),
        spatial_upsampler=Path(paths.spatial_upsampler),
        distilled_lora=Path(paths.distilled_lora),
        gemma_root=Path(paths.gemma_root),
        tiny=True,
    )


# ------------------------------------------------------------------------------------------ resolve


def _configured_weights(settings: Settings) -> WeightSet:
    """The paths a run would use, without building or checking anything."""
    if settings.checkpoint is None:
        from ltx2.engine.tiny import TinyPaths

        return _tiny_weight_set(TinyPaths(settings.tiny_dir))
    return WeightSet(
        checkpoint=Path(settings.checkpoint),
        spatial_upsampler=Path(settings.spatial_upsampler or planned_path(settings, "spatial_upsampler")),
        distilled_lora=Path(settings.distilled_lora or planned_path(settings, "distilled_lora")),
        gemma_root=Path(settings.gemma_root or planned_path(settings, "gemma")),
        tiny=False,
    )


def resolved_weights(settings: Settings, *, required: Iterable[str] = ROLES) -> WeightSet:
    """The weight set a run uses: the configured real weights, or the tiny set (built on first use).

    Real weights: unset paths fall back to where `avatar models download` puts them; any `required` role
    that is not on disk raises WeightsMissingError naming the files and the fix.
    """
    if settings.checkpoint is None:
        from ltx2.engine.tiny import ensure_tiny

        return _tiny_weight_set(ensure_tiny(settings.tiny_dir))
    weights = _configured_weights(settings)
    required = set(_check_roles(required))
    missing = [
        (role, path)
        for role, path in weights.items()
        if role in required and not (path.is_dir() if role == "gemma" else path.is_file())
    ]
    if missing:
        listed = "; ".join(f"{role.replace('_', ' ')} {path}" for role, path in missing)
        raise WeightsMissingError(
            f"Weights not found: {listed}. Run `{FIX_COMMAND}` to fetch them into {settings.models_dir}, or point "
            f"{', '.join(LOCATION_ENV_VARS[1:])} at existing files (unset AVATAR_CHECKPOINT to use the tiny test "
            "checkpoint)."
        )
    return weights


def model_family(checkpoint: str | Path) -> Literal["LTX-2", "LTX-2.3"]:
    """Which release a checkpoint is, from its `model_version` metadata (as ltx-pipelines' detect_params).

    Unreadable metadata falls back to LTX-2, as ltx-pipelines does.
    """
    try:
        version = read_safetensors_metadata(Path(checkpoint)).get("model_version", "")
    except Exception:  # noqa: BLE001 - mirror detect_params: default to LTX-2
        return "LTX-2"
    return "LTX-2.3" if version.startswith("2.3") else "LTX-2"


# ----------------------------------------------------------------------------------------- download


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _offline() -> bool:
    import huggingface_hub.constants as hf_constants

    # Read at call time too: huggingface_hub reads HF_HUB_OFFLINE only once, at import.
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return env or bool(hf_constants.HF_HUB_OFFLINE)


def _endpoint() -> str:
    import huggingface_hub.constants as hf_constants

    return (os.environ.get("HF_ENDPOINT") or hf_constants.ENDPOINT).rstrip("/")


def _network_reason(exc: BaseException) -> str:
    """A short cause from the exception chain (requests nests the useful part several levels deep)."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return "offline mode is enabled"
    text, seen = "", exc
    for _ in range(6):
        if seen is None:
            break
        text += f" {type(seen).__name__} {seen}"
        seen = seen.__cause__ or seen.__context__
    lowered = text.lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("name or service not known", "host name not resolved"),
        ("temporary failure in name resolution", "host name not resolved"),
        ("nodename nor servname", "host name not resolved"),
        ("getaddrinfo", "host name not resolved"),
        ("network is unreachable", "network unreachable"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("ssl", "TLS error"),
        ("proxy", "proxy error"),
        ("connection reset", "connection reset"),
        ("connection aborted", "connection aborted"),
    ):
        if needle in lowered:
            return reason
    return _one_line(exc, 100)


def _unreachable(what: str, reason: str) -> HubUnreachableError:
    return HubUnreachableError(
        f"Cannot download {what} from {_endpoint()} ({reason}): this machine needs internet access to "
        f"huggingface.co, or a models folder that already holds the weights: set AVATAR_MODELS_DIR to it, or "
        f"{', '.join(LOCATION_ENV_VARS[1:])} to existing files."
    )


def _is_network_error(exc: BaseException) -> bool:
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError)):
        return True
    try:
        import requests

        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:
        pass
    try:
        import httpx  # huggingface_hub >= 1.0 talks httpx

        if isinstance(exc, (httpx.ConnectError, httpx.TimeoutException, httpx.NetworkError)):
            return True
    except ImportError:
        pass
    return False


def _translate(exc: BaseException, what: str) -> WeightsDownloadError:
    """One clear error for the CLI from whatever huggingface_hub / requests / the OS raised."""
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    if isinstance(exc, GatedRepoError):
        repo = what.split(":", 1)[0]
        return HubAccessError(
            f"Cannot download {what}: the repo is gated. Accept its licence at https://huggingface.co/{repo} and "
            "set HF_TOKEN to a token of that account."
        )
    if _is_network_error(exc):
        return _unreachable(what, _network_reason(exc))
    if isinstance(exc, RepositoryNotFoundError):
        return HubAccessError(
            f"Cannot download {what}: repository not found or not accessible (check the repo name, and HF_TOKEN "
            "for private or gated repos)."
        )
    if isinstance(exc, EntryNotFoundError):
        return WeightsDownloadError(
            f"Cannot download {what}: the file is not in the repository; the file table in ltx2/weights.py "
            "may need updating."
        )
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return HubAccessError(f"Cannot download {what}: access denied (HTTP {status}); set HF_TOKEN.")
        return _unreachable(what, _one_line(exc, 100))
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
        return WeightsDownloadError(f"Cannot write {what}: {_one_line(exc)}")
    if isinstance(exc, OSError):
        return _unreachable(what, _one_line(exc, 100))
    return WeightsDownloadError(f"Cannot download {what}: {_one_line(exc)}")


def _preflight(repo: str, token: str | None) -> None:
    """One quick request per repo before anything is written: fails fast instead of after minutes of retries."""
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=_endpoint(), token=token).model_info(repo, timeout=15)
    except Exception as exc:  # noqa: BLE001 - translated into one clear error
        raise _translate(exc, repo) from exc
    if getattr(info, "gated", False) and not token:
        raise HubAccessError(
            f"{repo} is gated: accept its licence at https://huggingface.co/{repo}, then set HF_TOKEN to a token "
            "of that account (or run `hf auth login`)."
        )


def _tidy_after_failure(models_dir: Path, created: bool) -> None:
    """Remove what a failed download left behind except partial data, which lets the next run resume.

    huggingface_hub writes into <models_dir>/.cache/huggingface/download/*.incomplete and only moves a
    finished file to its final name, so final paths never hold half-written files.
    """
    cache = models_dir / ".cache" / "huggingface"
    if cache.is_dir():
        for lock in cache.rglob("*.lock"):
            lock.unlink(missing_ok=True)
        has_partial = any(p.is_file() and p.stat().st_size > 0 and p.suffix == ".incomplete" for p in cache.rglob("*"))
        if not has_partial:
            shutil.rmtree(models_dir / ".cache", ignore_errors=True)
    if created:
        # Empty folders only: anything with content is real progress.
        for folder in sorted((p for p in models_dir.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                folder.rmdir()
            except OSError:
                pass
        try:
            models_dir.rmdir()
        except OSError:
            pass


def download(
    settings: Settings,
    *,
    roles: Iterable[str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> list[Path]:
    """Fetch the planned weights into settings.models_dir; returns the planned local paths.

    Files already present and verified are skipped (so a pre-populated folder needs no network). Interrupted
    downloads resume: huggingface_hub keeps partial data under models_dir/.cache. HF_TOKEN (or a saved
    `hf auth login`) authenticates; HF_ENDPOINT and HF_HUB_OFFLINE are honoured.
    """
    from huggingface_hub import get_token, hf_hub_download, snapshot_download
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    wanted = _check_roles(roles)
    plan = [e for e in download_plan(settings) if e.role in wanted]
    models_dir = Path(settings.models_dir)

    def done(entry: WeightFile) -> bool:
        path = models_dir / entry.local
        if not entry.required and not path.exists():
            return True  # optional and absent: nothing to fetch, nothing to complain about
        return verify_file(path, entry.role, size=entry.size, sha256=entry.sha256).ok

    todo = plan if force else [e for e in plan if not done(e)]
    if not todo:
        record_verified(settings)
        return [models_dir / e.local for e in plan if e.required or (models_dir / e.local).exists()]

    names = ", ".join(sorted({e.repo for e in todo}))
    if _offline():
        raise _unreachable(names, "HF_HUB_OFFLINE is set")
    token = os.environ.get("HF_TOKEN") or get_token()
    for repo in sorted({e.repo for e in todo}):
        _preflight(repo, token)

    created = not models_dir.exists()
    bars_were_off = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        for entry in todo:
            if entry.role == "gemma":
                continue
            what = f"{entry.repo}:{entry.filename}"
            try:
                hf_hub_download(
                    entry.repo,
                    entry.filename,
                    local_dir=models_dir / Path(entry.local).parent,
                    token=token,
                    endpoint=_endpoint(),
                    force_download=force,
                )
            except Exception as exc:  # noqa: BLE001 - translated into one clear error
                raise _translate(exc, what) from exc
        gemma = [e for e in todo if e.role == "gemma"]
        if gemma:
            repo = gemma[0].repo
            try:
                snapshot_download(
                    repo,
                    local_dir=models_dir / GEMMA_DIR,
                    allow_patterns=GEMMA_ALLOW_PATTERNS,
                    token=token,
                    endpoint=_endpoint(),
                    force_download=force,
                )
            except Exception as exc:  # noqa: BLE001 - translated into one clear error
                raise _translate(exc, repo) from exc
        # snapshot_download returns an existing folder when the hub drops mid-way; check what arrived.
        still_missing = [e for e in todo if not done(e)]
        if still_missing:
            first = still_missing[0]
            raise WeightsDownloadError(
                f"Download incomplete: {len(still_missing)} file(s) missing or invalid, first "
                f"{first.repo}:{first.filename} -> {models_dir / first.local}. Run `{FIX_COMMAND}` again to resume "
                "(if the file is not in the repo, the file table in ltx2/weights.py needs updating)."
            )
    except BaseException:
        _tidy_after_failure(models_dir, created)
        raise
    finally:
        if not progress and not bars_were_off:
            enable_progress_bars()
    record_verified(settings)
    return [models_dir / e.local for e in plan if e.required or (models_dir / e.local).exists()]


# ------------------------------------------------------------------------------- the verified record


def planned_weights(settings: Settings) -> WeightSet:
    """The weight set where `avatar models download` puts it."""
    return WeightSet(*(planned_path(settings, role) for role in ROLES))


def record_verified(settings: Settings) -> Path | None:
    """Write models_dir/verified.json when the whole downloaded set verifies, so runs use it without
    AVATAR_CHECKPOINT (Settings reads it back). Returns the record's path, or None when the set is incomplete."""
    weights = planned_weights(settings)
    results = _verify_weight_set(weights, settings, check_hash=True)
    if not results or not all(r.ok for r in results):
        return None
    from datetime import datetime

    record = {
        "verified_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **{
            field: str(path)
            for field, (_, path) in zip(
                ("checkpoint", "spatial_upsampler", "distilled_lora", "gemma_root"), weights.items(), strict=True
            )
        },
        # Every verified file and its size: a file deleted or truncated later voids the record.
        "files": {str(r.path): r.path.stat().st_size for r in results},
    }
    target = Path(settings.models_dir) / VERIFIED_FILE
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    partial.replace(target)
    return target


def weights_banner(settings: Settings) -> str:
    """What `scripts/launch_ltx2.sh` prints first: which weights this run uses, and why."""
    line = "=" * 92
    if settings.weights_source == "configured":
        return f"WEIGHTS: real, configured by AVATAR_CHECKPOINT={settings.checkpoint}"
    if settings.weights_source == "verified":
        verified_at = (read_verified(settings.models_dir) or {}).get("verified_at", "?")
        return (
            f"WEIGHTS: real, verified by `avatar models download` at {verified_at} "
            f"({Path(settings.models_dir) / VERIFIED_FILE}):\n  checkpoint {settings.checkpoint}\n"
            f"  Gemma {settings.gemma_root}"
        )
    stale = (Path(settings.models_dir) / VERIFIED_FILE).exists() and settings.use_verified
    why = (
        f" {Path(settings.models_dir) / VERIFIED_FILE} lists weight files that are gone or changed since they\n"
        " were verified: run ./scripts/complete_ltx2_setup.sh again.\n"
        if stale
        else ""
    )
    return (
        f"{line}\n NO REAL WEIGHTS: using the TINY test checkpoint (random weights, CPU-friendly).\n"
        " The real LTX-2 pipeline runs end to end, but motion and sound are noise (a photo shows at frame 0).\n"
        f"{why} For real videos on a GPU host: ./scripts/complete_ltx2_setup.sh (downloads and verifies;\n"
        f" the next launch uses them).\n{line}"
    )
