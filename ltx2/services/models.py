"""The one model this server serves, as Replicate's clients see it: the model, its version, which model or
version a create names. The version id is a digest of the code and weights in use (`ltx2.store.links`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ltx2.domain.errors import Problem
from ltx2.domain.inputs import GenerateInput
from ltx2.settings import Settings
from ltx2.store.jobs import JobStore

COG_VERSION = "0.16.0"  # the Cog schema conventions the version's openapi_schema follows (Input, Output)


class ClipOutput(BaseModel):
    """A finished prediction's `output`: file names and their (signed) URLs, the video's digest and metadata."""

    model_config = ConfigDict(extra="allow")

    video: str = Field(description="The MP4's file name.")
    video_url: str = Field(description="The MP4; opens without the key until it expires (urls are signed).")
    thumbnail: str | None = None
    thumbnail_url: str | None = None
    metadata_file: str | None = None
    metadata_file_url: str | None = None
    sha256: str | None = None
    size: int | None = None
    captions_urls: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None


def _schemas() -> dict:
    template = "#/components/schemas/{model}"
    schemas: dict = {}
    for name, model in (("Input", GenerateInput), ("Output", ClipOutput)):
        schema = model.model_json_schema(ref_template=template)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return schemas


def version_document(store: JobStore) -> dict:
    links = store.links
    return {
        "id": links.version,
        "created_at": links.version_created_at,
        "cog_version": COG_VERSION,
        "openapi_schema": {
            "openapi": "3.0.2",
            "info": {"title": links.model, "version": links.version},
            "paths": {},
            "components": {"schemas": _schemas()},
        },
    }


def model_document(store: JobStore, settings: Settings) -> dict:
    owner, name = store.links.model.split("/")
    return {
        "url": f"{settings.base_url}/v1/models/{owner}/{name}",
        "owner": owner,
        "name": name,
        "description": "Talking-avatar videos (LTX-2): text or a voice recording, a photo or a face profile, in; "
        "an MP4 out.",
        "visibility": "private",
        "github_url": None,
        "paper_url": None,
        "license_url": None,
        "run_count": sum(store.counts(kind="generate").values()),
        "cover_image_url": None,
        "default_example": None,
        "latest_version": version_document(store),
    }


def check_model(store: JobStore, owner: str, name: str) -> None:
    if f"{owner}/{name}" != store.links.model:
        raise Problem(404, f"no model {owner}/{name}; this server serves {store.links.model}")


def check_version(store: JobStore, version_id: str) -> None:
    if version_id != store.links.version:
        raise Problem(404, f"no version {version_id} of {store.links.model}; the one it runs is {store.links.version}")


def check_version_ref(store: JobStore, ref: str) -> None:
    """A create's `version`: the id, or `owner/name:id`; anything else is a 422 naming the one this server runs."""
    links = store.links
    model, _, version = ref.rpartition(":")
    if (model in ("", links.model)) and version == links.version:
        return
    raise Problem(
        422, f"version: unknown version {ref!r}; this server runs {links.model}:{links.version} (use either form)"
    )
