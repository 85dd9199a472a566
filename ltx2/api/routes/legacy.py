"""The seed's endpoints, same paths and field names, as thin adapters over the services."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, UploadFile
from fastapi.responses import JSONResponse

from ltx2.api.deps import SettingsDep, StoreDep
from ltx2.api.schemas import Cleaned, Reset, SeedAccepted, SeedStatus, WorkspaceStatus
from ltx2.domain.limits import MAX_SPEED, MAX_TEXT_CHARS, MIN_SPEED
from ltx2.services import seed as svc
from ltx2.services import workspace
from ltx2.services.workspace import RESET_WORD

router = APIRouter(tags=["seed API"])


@router.post("/generate", response_model=SeedAccepted, summary="Seed API: queue a clip (multipart form)")
def generate(
    store: StoreDep,
    settings: SettingsDep,
    text: Annotated[str, Form(max_length=MAX_TEXT_CHARS)],
    reference_image: Annotated[UploadFile | None, File()] = None,
    reference_image_url: Annotated[
        str | None,
        Form(
            max_length=1_000_000,
            description="Instead of an upload: an http(s) URL (fetched through the guarded fetcher; "
            "AVATAR_FETCH_ALLOW lets local hosts through), a data: URI, or an uploaded file's id or URL.",
        ),
    ] = None,
    image_strength: Annotated[float, Form(ge=0.5, le=2.0)] = 1.9,
    random_avatar: Annotated[bool, Form()] = False,
    avatar_description: Annotated[str | None, Form(max_length=1000)] = None,
    use_trained_profile: Annotated[bool, Form()] = False,
    trained_person_name: Annotated[str | None, Form(max_length=100)] = None,
    fresh_start_mode: Annotated[bool, Form(description="Accepted for compatibility: every job starts clean.")] = False,
    playback_speed: Annotated[float, Form(ge=MIN_SPEED, le=MAX_SPEED)] = 1.25,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
):
    return svc.generate(
        store,
        settings,
        text=text,
        reference_image=reference_image,
        reference_image_url=reference_image_url,
        image_strength=image_strength,
        random_avatar=random_avatar,
        avatar_description=avatar_description,
        use_trained_profile=use_trained_profile,
        trained_person_name=trained_person_name,
        playback_speed=playback_speed,
        idempotency_key=idempotency_key,
    )


@router.get("/status/{job_id}", response_model=SeedStatus, summary="Seed API: a job's status")
def status(job_id: str, store: StoreDep, settings: SettingsDep):
    # Built to SeedStatus already; answered as is (see routes.predictions: the polled routes skip re-validation).
    return JSONResponse(svc.status(store, settings, job_id))


@router.get("/workspace-status", response_model=WorkspaceStatus, summary="Seed API: what the workspace holds")
def workspace_status(store: StoreDep, settings: SettingsDep):
    return workspace.status(store, settings)


@router.post(
    "/clean-workspace",
    response_model=Cleaned,
    summary="Seed API: empty the temp folder (and, if asked, finished outputs)",
)
def clean_workspace(store: StoreDep, settings: SettingsDep, include_outputs: Annotated[bool, Form()] = False):
    return workspace.clean(store, settings, include_outputs)


@router.post(
    "/master-reset", response_model=Reset, summary="Seed API: delete every job, upload and output (needs confirm=RESET)"
)
def master_reset(
    store: StoreDep,
    settings: SettingsDep,
    confirm: Annotated[str, Form(description=f"Type {RESET_WORD} to confirm")] = "",
):
    return workspace.master_reset(store, settings, confirm)
