"""What a job document's links and model fields are made of: the base URL, the model's name and version, the
studio's address and the URL signer. Built once per process from the settings (API and workers alike, so a
webhook body reads like a GET)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from ltx2 import __version__
from ltx2.domain.signing import UrlSigner
from ltx2.settings import Settings

DEFAULT_MODEL = "local/avatar"


@dataclass(frozen=True)
class Links:
    base_url: str
    model: str = DEFAULT_MODEL
    version: str = ""
    version_created_at: str | None = None
    studio_url: str | None = None  # the studio's base; `urls.web` points at its page for the job
    signer: UrlSigner | None = None  # output and stream URLs open without the key until they expire

    def signed(self, path: str) -> str:
        url = f"{self.base_url}{path}"
        return self.signer.sign(url, path, time.time()) if self.signer else url


def state_secret(settings: Settings, name: str, make) -> str:
    """A secret generated once into the state folder (so restarts and every process share it)."""
    path = settings.state_dir / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Several processes (machines, on shared storage) may get here at once: each writes its own temp file
        # and links it into place; a link never replaces an existing file, so the first one wins for everyone.
        tmp = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(make())
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def _package(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _code() -> tuple[str, float]:
    """Every source file of the ltx2 package (names and bytes), the code that runs whatever its version number
    says; and the newest file's mtime."""
    root = Path(__file__).resolve().parent.parent
    h, newest = hashlib.sha256(), 0.0
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
        newest = max(newest, path.stat().st_mtime)
    return h.hexdigest(), newest


def _weights_identity(settings: Settings) -> dict:
    if settings.uses_tiny:
        return {"tiny": True}  # built deterministically by the code itself (its digest is pinned there)
    files = {}
    for field in ("checkpoint", "spatial_upsampler", "distilled_lora", "gemma_root"):
        path: Path | None = getattr(settings, field)
        if path is not None:
            files[field] = [path.name, path.stat().st_size if path.is_file() else None]
    return {"files": files, "quantization": settings.quantization, "lora_strength": settings.distilled_lora_strength}


def model_version(settings: Settings) -> tuple[str, str]:
    """(id, created_at) of the model version: a digest of the code and the weights this server runs (Replicate
    ids are 64 hex digits), dated by the newest of those files."""
    digest, newest = _code()
    for field in ("checkpoint", "spatial_upsampler", "distilled_lora", "gemma_root"):
        path: Path | None = getattr(settings, field)
        if path is not None and path.exists():
            newest = max(newest, path.stat().st_mtime)
    identity = {
        "code": [__version__, digest],
        "ltx-core": _package("ltx-core"),
        "ltx-pipelines": _package("ltx-pipelines"),
        "weights": _weights_identity(settings),
    }
    created = datetime.fromtimestamp(newest, UTC).isoformat().replace("+00:00", "Z")
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest(), created


def links_for(settings: Settings) -> Links:
    secret = settings.url_secret or state_secret(settings, "url_secret", lambda: secrets.token_urlsafe(32))
    version, created = model_version(settings)
    return Links(
        base_url=settings.base_url,
        model=settings.model_name,
        version=version,
        version_created_at=created,
        studio_url=settings.studio_base_url,
        signer=UrlSigner(secret.encode(), settings.url_ttl_s),
    )
