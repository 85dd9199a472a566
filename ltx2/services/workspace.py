"""The workspace: what it holds, cleaning temp files (and finished jobs), and the master reset."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ltx2.domain.errors import Problem
from ltx2.domain.status import ACTIVE, TERMINAL, JobStatus
from ltx2.services import files, outputs
from ltx2.settings import Settings
from ltx2.store import lifecycle
from ltx2.store.jobs import JobStore

RESET_WORD = "RESET"
RESET_STOP_WAIT_S = 30


def _dir_usage(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
    return len(files), sum(p.stat().st_size for p in files)


def status(store: JobStore, settings: Settings) -> dict:
    videos = sorted(settings.outputs_dir.glob("*.mp4")) if settings.outputs_dir.exists() else []
    temp_n, temp_b = _dir_usage(settings.temp_dir)
    up_n, up_b = _dir_usage(settings.uploads_dir)
    out_b = (
        sum(p.stat().st_size for p in settings.outputs_dir.glob("*") if p.is_file())
        if settings.outputs_dir.exists()
        else 0
    )
    disk = shutil.disk_usage(settings.outputs_dir if settings.outputs_dir.exists() else settings.outputs_dir.parent)
    photos = sum(1 for _ in settings.uploads_dir.rglob("*.png")) if settings.uploads_dir.exists() else 0
    trash = outputs.list_trash(settings)["results"]
    owned, unowned = store.owned_counts()
    profile_photos = sum(len(p.photos) for p in store.list_profiles())
    return {
        "reference_images": photos,  # the seed's names, beside today's
        "cached_videos": len(videos),
        "videos": len(videos),
        "outputs_bytes": out_b,
        "temp_files": temp_n,
        "temp_bytes": temp_b,
        "uploads": up_n,
        "uploads_bytes": up_b,
        # Faces and voices kept: uploads a job or profile still uses, uploads no one uses (clean-workspace removes
        # them), the photos inside face profiles, and the folders they are in.
        "uploads_in_use": owned,
        "uploads_unused": unowned,
        "profile_photos": profile_photos,
        "uploads_folder": str(settings.uploads_dir),
        "profiles_folder": str(settings.profiles_dir),
        "retention_days": settings.retention_days,
        "jobs": store.counts(),
        "trash": len(trash),
        "trash_bytes": sum(e["bytes"] for e in trash),
        "trash_days": settings.trash_days,
        "disk_free_bytes": disk.free,
    }


def clean(store: JobStore, settings: Settings, include_outputs: bool) -> dict:
    """Empty the temp folder and delete the uploads no job or profile uses; with include_outputs also delete
    finished jobs (into the trash, like one delete) and the uploads only they used."""
    removed = empty_dir(settings.temp_dir)
    deleted_jobs = 0
    if include_outputs:
        cursor = None
        while True:
            jobs, cursor = store.list(status=TERMINAL, cursor=cursor, limit=200)
            for job in jobs:
                removed += outputs.discard(store, settings, job)
                deleted_jobs += store.get(job.id) is None
            if cursor is None:
                break
    uploads = files.clean_unowned(store, settings)
    return {
        "status": "success",
        "deleted_count": removed + uploads,
        "files_removed": removed + uploads,
        "jobs_deleted": deleted_jobs,
        "uploads_removed": uploads,
        "trash_days": settings.trash_days,  # > 0: the deleted jobs' videos can be restored until then
    }


def empty_dir(path: Path) -> int:
    """Delete what is inside `path` (never `path` itself, never following links out of it)."""
    if not path.exists():
        return 0
    removed = 0
    for child in path.iterdir():
        if child.name == ".gitkeep":
            continue
        if child.is_dir() and not child.is_symlink():
            removed += sum(1 for p in child.rglob("*") if p.is_file())
            shutil.rmtree(child)
        else:
            child.unlink(missing_ok=True)
            removed += 1
    return removed


def master_reset(store: JobStore, settings: Settings, confirm: str) -> dict:
    """Every job, upload, profile and output goes; work is stopped first, and nothing goes if it cannot be."""
    if confirm != RESET_WORD:
        raise Problem(400, f"master reset deletes every job, upload and video: send confirm={RESET_WORD}")
    # Stop work first: waiting jobs are canceled at once, running ones within a step. Their `completed`
    # webhooks are in the outbox already (written by each move), and the reset keeps undelivered messages.
    active, _ = store.list(status=ACTIVE, limit=10_000)
    for job in active:
        lifecycle.cancel(store, job.id)
    deadline = time.monotonic() + RESET_STOP_WAIT_S
    while store.list(status=(JobStatus.PROCESSING,), limit=1)[0] and time.monotonic() < deadline:
        time.sleep(0.2)
    if store.list(status=(JobStatus.PROCESSING,), limit=1)[0]:
        raise Problem(409, f"a job is still running and did not stop within {RESET_STOP_WAIT_S} s; nothing was deleted")
    store.clear_all()
    # Profile rows went with clear_all(); their photos and LoRA weights go too (faces must not linger).
    removed = sum(
        empty_dir(p)
        for p in (
            settings.uploads_dir,
            settings.profiles_dir,
            settings.temp_dir,
            settings.state_dir / "segments",
            settings.trash_dir,  # a reset is final: the trash goes too
        )
    )
    for path in settings.outputs_dir.glob("*"):
        if path.is_file() and path.suffix in (".mp4", ".jpg", ".json", ".srt", ".vtt"):
            path.unlink()
            removed += 1
    return {"status": "reset", "canceled_jobs": len(active), "files_removed": removed}
