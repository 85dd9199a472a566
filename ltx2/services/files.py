"""Uploaded files: store an upload (after the allow-listed decoder), list, read and delete them, turn a file input
(id, this server's file URL, `data:` URI, http(s) URL through the guarded fetcher) into an upload, and remove uploads
their owners no longer keep (job or profile deleted, clean-workspace, retention)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote_to_bytes

import httpx

from ltx2.domain.errors import Problem
from ltx2.domain.net import is_local_address, is_loopback
from ltx2.net import FetchPolicy, FetchRefused, fetch
from ltx2.services.uploads import UploadError, UploadLimits, safe_child, store_audio, store_image, store_upload
from ltx2.settings import Settings
from ltx2.store.documents import iso
from ltx2.store.jobs import JobStore
from ltx2.store.models import utcnow

MAX_METADATA_CHARS = 10_000
# What a URL or data: input may declare itself to be (the decoder still decides from the bytes).
ACCEPT = {"image": ("image/png", "image/jpeg", "image/webp"), "audio": ("audio/", "video/mp4", "video/webm")}
_OWN_FILE_PATH = re.compile(r"/v1/files/([0-9a-f]{20})(?:/content)?/?")
_DATA_URI = re.compile(r"data:(?P<type>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.DOTALL)

MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".json": "application/json",
    ".srt": "application/x-subrip; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
}


def file_document(record, base_url: str) -> dict:
    """Replicate's File object (id, name, content_type, size, etag, checksums, metadata, created_at, expires_at,
    urls.get) plus this server's own fields (kind, sha256, original_name, meta with the decoded size)."""
    return {
        "id": record.id,
        "name": record.original_name or record.path,
        "content_type": record.content_type,
        "size": record.size,
        "etag": record.sha256,
        "checksums": {"sha256": record.sha256},
        "metadata": record.user_metadata or {},
        "created_at": iso(record.created_at),
        "expires_at": None,  # kept while a job or profile uses it; unused ones go with clean-workspace
        "urls": {"get": f"{base_url}/v1/files/{record.id}", "content": f"{base_url}/v1/files/{record.id}/content"},
        "kind": record.kind,
        "sha256": record.sha256,
        "original_name": record.original_name,
        "meta": record.meta,
    }


def create_file(store: JobStore, settings: Settings, part, filename: str | None, metadata):
    """POST /v1/files: the multipart part (`content` or `file`), a name to keep, the client's JSON metadata (a
    text field, or a JSON part as the JS client sends it)."""
    if part is None:
        raise Problem(422, "content: send the file as the multipart field `content` (or `file`)")
    if metadata is not None and not isinstance(metadata, str):
        metadata = metadata.file.read(MAX_METADATA_CHARS * 4 + 1).decode("utf-8", errors="replace")
    meta = parse_metadata(metadata)  # checked before a byte is stored
    return add_upload(store, settings, part.file, filename or part.filename, metadata=meta)


def parse_metadata(text: str | None) -> dict | None:
    """POST /v1/files `metadata`: a JSON object, as Replicate's clients send it."""
    if text is None or text == "":
        return None
    if len(text) > MAX_METADATA_CHARS:
        raise Problem(422, f"metadata: at most {MAX_METADATA_CHARS} characters of JSON")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise Problem(422, f"metadata: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise Problem(422, "metadata: must be a JSON object")
    return value


def upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(
        max_image_bytes=min(20, settings.max_upload_mb) * 2**20,
        max_audio_bytes=settings.max_upload_mb * 2**20,
        max_audio_seconds=settings.max_script_seconds,
        max_image_pixels=int(settings.max_image_mp * 1_000_000),
    )


def add_upload(
    store: JobStore,
    settings: Settings,
    stream,
    filename: str | None,
    *,
    kind: str | None = None,
    field: str = "",
    metadata: dict | None = None,
):
    """An image or audio upload (`kind` None: whichever the bytes are), decoded and re-encoded, recorded; 4xx for
    anything else, and then nothing is kept. The problem names `field` when one is given."""
    store_fn = {None: store_upload, "image": store_image, "audio": store_audio}[kind]
    try:
        stored = store_fn(stream, settings.uploads_dir, upload_limits(settings))
    except UploadError as exc:
        raise Problem(exc.status, f"{field}: {exc.detail}" if field else exc.detail, title=exc.title) from exc
    meta = {k: getattr(stored, k) for k in ("width", "height", "duration") if getattr(stored, k, None) is not None}
    return store.add_file(
        kind=stored.kind,
        content_type=stored.content_type,
        path=stored.path.relative_to(settings.uploads_dir).as_posix(),
        sha256=stored.sha256,
        size=stored.size,
        original_name=(filename or "")[:255] or None,
        meta=meta,
        user_metadata=metadata,
    )


def add_image(
    store: JobStore, settings: Settings, stream, filename: str | None, *, field: str, purpose: str | None = None
):
    """An image upload (reference photo, training photo); the problem names `field`."""
    try:
        stored = store_image(stream, settings.uploads_dir, upload_limits(settings))
    except UploadError as exc:
        raise Problem(exc.status, f"{field}: {exc.detail}" if field else exc.detail, title=exc.title) from exc
    meta = {"width": stored.width, "height": stored.height}
    if purpose:
        meta["purpose"] = purpose
    return store.add_file(
        kind="image",
        content_type=stored.content_type,
        path=stored.path.relative_to(settings.uploads_dir).as_posix(),
        sha256=stored.sha256,
        size=stored.size,
        original_name=filename,
        meta=meta,
    )


def drop(store: JobStore, settings: Settings, file_id: str) -> None:
    """Delete an upload's bytes and record (a rejected request keeps nothing)."""
    record = store.get_file(file_id)
    if record is not None:
        (settings.uploads_dir / record.path).unlink(missing_ok=True)
        store.delete_file(file_id)


def remove_bytes(settings: Settings, records) -> int:
    """Delete the stored bytes of upload records the store already let go of; returns how many files went."""
    removed = 0
    for record in records:
        path = safe_child(settings.uploads_dir, record.path)
        if path is not None:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def list_files(store: JobStore, settings: Settings, url: httpx.URL, cursor: str | None, limit: int) -> dict:
    """One page of uploads, newest first, as Replicate pages them: results, next, previous (URLs or null)."""
    position = None
    if cursor:
        stamp, _, file_id = cursor.partition("~")
        try:
            position = (datetime.fromisoformat(stamp), file_id)
        except ValueError as exc:
            raise Problem(422, "cursor: not a cursor this server gave out") from exc
    records, after = store.list_files(cursor=position, limit=limit)
    nxt = str(url.copy_set_param("cursor", f"{after[0].isoformat()}~{after[1]}")) if after else None
    return {"results": [file_document(r, settings.base_url) for r in records], "next": nxt, "previous": None}


def delete_file(store: JobStore, settings: Settings, file_id: str) -> None:
    """DELETE /v1/files/{id}: refused (409, naming the jobs) while a waiting or running job needs it."""
    record = get_record(store, file_id)
    users = store.active_users(file_id)
    if users:
        raise Problem(
            409,
            f"file {file_id} is an input of {', '.join(users)}, still queued or running: cancel "
            f"{'it' if len(users) == 1 else 'them'} first, or delete the file once finished",
            extra={"predictions": users},
        )
    drop(store, settings, record.id)


def clean_unowned(store: JobStore, settings: Settings) -> int:
    """Clean-workspace: delete the uploads no job or profile keeps. Returns the files removed."""
    return remove_bytes(settings, store.delete_unowned_files())


def sweep_expired(store: JobStore, settings: Settings, now: datetime | None = None) -> int:
    """Retention (AVATAR_RETENTION_DAYS): finished jobs older than the limit lose their inputs. Off when unset."""
    if not settings.retention_days:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=settings.retention_days)
    return remove_bytes(settings, store.release_expired_inputs(cutoff))


# --------------------------------------------------------------------------- file inputs


def resolve_input(store: JobStore, settings: Settings, value: str | None, *, field: str, kind: str):
    """A file input as a client may send it → (upload id, fresh). Fresh uploads were made here (from a data: URI
    or a fetched URL) and are the caller's to drop if the request fails; ids and this server's file URLs are
    passed through for the usual existence check."""
    if value is None:
        return None, False
    if value.startswith("data:"):
        return _from_data_uri(store, settings, value, field=field, kind=kind).id, True
    if not value.startswith(("http://", "https://")):
        if "://" in value:
            raise Problem(422, f"{field}: only http(s) URLs, data: URIs and file ids are taken, not {value[:40]!r}")
        return value, False
    own = own_file_id(settings, value)
    if own is not None:
        return own, False
    limits = upload_limits(settings)
    cap = limits.max_image_bytes if kind == "image" else limits.max_audio_bytes
    try:
        body = fetch(value, FetchPolicy.from_settings(settings), max_bytes=cap, accept=ACCEPT[kind])
    except FetchRefused as exc:
        raise Problem(exc.status, f"{field}: {exc}") from exc
    name = httpx.URL(value).path.rsplit("/", 1)[-1] or None
    return add_upload(store, settings, body, name, kind=kind, field=field).id, True


def own_file_id(settings: Settings, url: str) -> str | None:
    """The upload id when `url` is this server's own file URL (a File's `urls.get`, as Replicate's clients pass
    an uploaded file on), else None."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return None
    match = _OWN_FILE_PATH.fullmatch(parsed.path)
    if match is None:
        return None
    ours = url.startswith(settings.base_url + "/") or (
        (parsed.port or (443 if parsed.scheme == "https" else 80)) == settings.port
        and (is_loopback(parsed.host) or is_local_address(parsed.host.strip("[]")))
    )
    return match.group(1) if ours else None


def _from_data_uri(store: JobStore, settings: Settings, uri: str, *, field: str, kind: str):
    match = _DATA_URI.fullmatch(uri)
    if match is None:
        raise Problem(422, f"{field}: a data: URI is data:<type>;base64,<data>")
    media_type = match["type"].strip().lower()
    if media_type and not any(media_type.startswith(a) for a in ACCEPT[kind]):
        raise Problem(415, f"{field}: the data: URI is {media_type}, not {' or '.join(ACCEPT[kind])}")
    limits = upload_limits(settings)
    cap = limits.max_image_bytes if kind == "image" else limits.max_audio_bytes
    encoded, is_base64 = match["data"], ";base64" in match["params"].lower()
    # Refused on its length before anything is decoded (base64: 4 characters per 3 bytes; %XX: 3 per byte).
    if len(encoded) > (cap * 4 // 3 + 4 if is_base64 else cap * 3):
        raise Problem(413, f"{field}: the data: URI holds more than {cap // 2**20} MB")
    try:
        data = base64.b64decode(encoded, validate=True) if is_base64 else unquote_to_bytes(encoded)
    except (binascii.Error, ValueError) as exc:
        raise Problem(422, f"{field}: the data: URI's base64 does not decode ({exc})") from exc
    return add_upload(store, settings, data, None, kind=kind, field=field)


def earlier_copy(store: JobStore, settings: Settings, idempotency_key: str | None, field: str, file_id: str):
    """A repeat under the same Idempotency-Key whose file has the same bytes reuses the first request's upload.

    Every upload gets a new id, so without this the repeat's input would never equal the first one and an
    idempotent retry would be answered 409. The new copy is dropped; returns the earlier upload's id (or None)."""
    earlier = store.by_idempotency_key(idempotency_key) if idempotency_key else None
    earlier_id = (earlier.input or {}).get(field) if earlier is not None else None
    old = store.get_file(earlier_id) if earlier_id else None
    new = store.get_file(file_id)
    if old is None or new is None or old.sha256 != new.sha256 or old.kind != new.kind:
        return None
    drop(store, settings, file_id)
    return old.id


def get_record(store: JobStore, file_id: str):
    record = store.get_file(file_id)
    if record is None:
        raise Problem(404, f"no file {file_id}")
    return record


def content_path(store: JobStore, settings: Settings, file_id: str) -> tuple[Path, str]:
    record = store.get_file(file_id)
    path = safe_child(settings.uploads_dir, record.path) if record else None
    if path is None or not path.is_file():
        raise Problem(404, f"no file {file_id}")
    return path, record.content_type


def output_path(settings: Settings, filename: str) -> tuple[Path, str]:
    """A finished video, thumbnail, metadata or caption file inside outputs/, or 404."""
    path = safe_child(settings.outputs_dir, filename) if "/" not in filename else None
    if path is None or path.suffix not in MEDIA_TYPES or not path.is_file():
        raise Problem(404, f"no output file {filename!r}")
    return path, MEDIA_TYPES[path.suffix]
