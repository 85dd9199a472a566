"""A finished job's files in outputs/ (video, thumbnail, metadata, captions; a script's kept segments), and the
trash a deleted job waits in.

Deleting a finished job moves its row (as JSON) and its files into `outputs/.state/trash/<job id>/` for
`AVATAR_TRASH_DAYS` (7 by default): restore puts both back as they were, and the sweeper (the API's reaper
thread) deletes entries older than that for good. With 0 days a delete is final at once. The job's uploads are
not kept: the ones only it used are deleted with the row (they are people's faces and voices; ltx2.services.files),
so a restored job has its video back but not its inputs.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta

from ltx2.domain.errors import Problem
from ltx2.services import files
from ltx2.settings import Settings
from ltx2.store.jobs import JobStore
from ltx2.store.models import utcnow

ENTRY = "entry.json"
JOB_ID = re.compile(r"[0-9a-f]{20}")


def output_files(job) -> list[str]:
    out = job.output or {}
    names = [out[k] for k in ("video", "thumbnail", "metadata_file") if out.get(k)]
    return names + list((out.get("captions") or {}).values())


def remove_outputs(settings: Settings, job) -> int:
    """Delete a job's files: its outputs and, for a script, its kept segments. Returns the files removed."""
    removed = 0
    for name in output_files(job):
        path = settings.outputs_dir / name
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    folder = settings.state_dir / "segments" / job.id
    if folder.is_dir():
        removed += sum(1 for p in folder.iterdir() if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def discard(store: JobStore, settings: Settings, job) -> int:
    """Delete a finished job: into the trash (restorable) when trash_days > 0, else for good.

    Returns the number of its files that left outputs/ and of its uploads deleted. The row is deleted last, so a crash in between leaves
    the job listed with its trash entry beside it (restore or the sweeper tidies that), never a lost video.
    """
    if settings.trash_days <= 0:
        deleted, released = store.delete_with_files(job.id)
        return remove_outputs(settings, job) + files.remove_bytes(settings, released) if deleted else 0
    entry = settings.trash_dir / job.id
    shutil.rmtree(entry, ignore_errors=True)
    (entry / "files").mkdir(parents=True)
    moved = []
    for name in output_files(job):
        path = settings.outputs_dir / name
        if path.is_file():
            path.replace(entry / "files" / name)
            moved.append(name)
    segments = settings.state_dir / "segments" / job.id
    if segments.is_dir():
        segments.replace(entry / "segments")
    record = {"job": store.snapshot(job), "deleted_at": utcnow().isoformat(), "files": moved}
    (entry / ENTRY).write_text(json.dumps(record), encoding="utf-8")
    deleted, released = store.delete_with_files(job.id)
    if not deleted:  # gone or no longer finished meanwhile: put everything back
        _put_back(settings, job.id, entry, moved)
        return 0
    return len(moved) + files.remove_bytes(settings, released)


def _put_back(settings: Settings, job_id: str, entry, names: list[str]) -> None:
    for name in names:
        (entry / "files" / name).replace(settings.outputs_dir / name)
    if (entry / "segments").is_dir():
        (settings.state_dir / "segments").mkdir(parents=True, exist_ok=True)
        (entry / "segments").replace(settings.state_dir / "segments" / job_id)
    shutil.rmtree(entry, ignore_errors=True)


def _read(settings: Settings, job_id: str) -> dict | None:
    if not JOB_ID.fullmatch(job_id or ""):
        return None
    try:
        return json.loads((settings.trash_dir / job_id / ENTRY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _expires(settings: Settings, record: dict) -> datetime:
    return datetime.fromisoformat(record["deleted_at"]) + timedelta(days=settings.trash_days)


def trash_document(settings: Settings, record: dict) -> dict:
    job = record["job"]
    return {
        "id": job["id"],
        "kind": job["kind"],
        "status": job["status"],
        "text": (job.get("input") or {}).get("text"),
        "created_at": job["created_at"],
        "deleted_at": record["deleted_at"],
        "expires_at": _expires(settings, record).isoformat(),
        "files": record["files"],
        "bytes": sum(p.stat().st_size for p in (settings.trash_dir / job["id"] / "files").glob("*") if p.is_file()),
    }


def list_trash(settings: Settings) -> dict:
    """What the trash holds, newest deletion first."""
    entries = []
    if settings.trash_dir.is_dir():
        for folder in settings.trash_dir.iterdir():
            record = _read(settings, folder.name)
            if record is not None:
                entries.append(trash_document(settings, record))
    entries.sort(key=lambda e: e["deleted_at"], reverse=True)
    return {"results": entries, "trash_days": settings.trash_days}


def restore(store: JobStore, settings: Settings, job_id: str):
    """Put a deleted job back: its row as it was and its files where they were. Returns the job."""
    record = _read(settings, job_id)
    if record is None:
        raise Problem(404, f"no deleted job {job_id} in the trash (emptied after {settings.trash_days:g} days)")
    entry = settings.trash_dir / job_id
    taken = [n for n in record["files"] if (settings.outputs_dir / n).exists()]
    if taken:
        raise Problem(409, f"cannot restore {job_id}: outputs/{taken[0]} exists again; nothing was changed")
    job = store.restore(record["job"])
    if job is None:
        raise Problem(409, f"a job {job_id} exists already; nothing was changed")
    settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    _put_back(settings, job_id, entry, record["files"])
    return job


def purge(settings: Settings, job_id: str) -> None:
    """Empty one trash entry now, for good."""
    if _read(settings, job_id) is None:
        raise Problem(404, f"no deleted job {job_id} in the trash")
    shutil.rmtree(settings.trash_dir / job_id)


def sweep(settings: Settings, now: datetime | None = None) -> int:
    """Delete trash entries older than trash_days (and half-written ones); returns the entries removed."""
    if not settings.trash_dir.is_dir():
        return 0
    now = now or utcnow()
    removed = 0
    for folder in settings.trash_dir.iterdir():
        record = _read(settings, folder.name)
        if record is not None and _expires(settings, record) > now:
            continue
        if record is None and (now.timestamp() - folder.stat().st_mtime) < 3600:
            continue  # being written right now (entry.json comes last); an hour-old one without it is debris
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed
