"""The trash for deleted videos and the seed's answers, through the API with no worker (torch unimportable).

A finished job is made the way a worker finishes one (claim, then the succeeded move with its output document);
its files are small stand-ins, since what is tested is where they go, not what they show. The real video
round trip is in tests/e2e/test_seed_replay.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from ltx2.services import outputs
from ltx2.store import lifecycle
from ltx2.store.jobs import JobStore
from ltx2.store.models import Profile, utcnow
from tests.api_helpers import api, assert_problem, create_job


@pytest.fixture
def served(tmp_path):
    with api(tmp_path) as pair:
        yield pair


def finished_clip(client, settings, text: str = "Hello there, this is a short line.") -> dict:
    job = create_job(client, text)
    store = JobStore(settings.db_url)
    try:
        assert lifecycle.claim(store, "w1", ["generate"]).id == job["id"]
        names = {"video": f"{job['id']}.mp4", "thumbnail": f"{job['id']}.jpg", "metadata_file": f"{job['id']}.json"}
        for name in names.values():
            (settings.outputs_dir / name).write_bytes(f"bytes of {name}".encode())
        assert lifecycle.move(store, job["id"], "succeeded", worker_id="w1", output=names)
    finally:
        store.close()
    return client.get(f"/v1/predictions/{job['id']}").json()


def add_profile(settings, name: str, minutes_ago: float) -> None:
    store = JobStore(settings.db_url)
    try:
        store.add_profile(
            Profile(
                name=name,
                trigger=f"ohwx{name.lower()}",
                folder="0" * 20,
                lora="lora.safetensors",
                photos=["photo-1.png"],
                best_photo="photo-1.png",
                steps=10,
                created_at=utcnow() - timedelta(minutes=minutes_ago),
            )
        )
    finally:
        store.close()


def test_delete_moves_the_files_to_the_trash_and_restore_puts_everything_back(served):
    client, settings = served
    job = finished_clip(client, settings)
    video = settings.outputs_dir / job["output"]["video"]
    assert client.delete(f"/v1/predictions/{job['id']}").status_code == 204
    assert not video.exists() and client.get(f"/v1/predictions/{job['id']}").status_code == 404
    (entry,) = client.get("/v1/trash").json()["results"]
    assert entry["id"] == job["id"] and entry["text"] == job["input"]["text"] and len(entry["files"]) == 3
    assert client.get("/workspace-status").json()["trash"] == 1

    restored = client.post(f"/v1/trash/{job['id']}/restore")
    assert restored.status_code == 200
    back = client.get(f"/v1/predictions/{job['id']}").json()
    for field in ("status", "input", "output", "created_at", "completed_at"):
        assert back[field] == job[field], field
    assert video.read_bytes() == f"bytes of {video.name}".encode()
    assert client.get("/v1/trash").json()["results"] == []


def test_restore_refuses_when_its_file_name_is_taken_and_changes_nothing(served):
    client, settings = served
    job = finished_clip(client, settings)
    client.delete(f"/v1/predictions/{job['id']}")
    (settings.outputs_dir / job["output"]["video"]).write_bytes(b"someone else's")
    assert_problem(client.post(f"/v1/trash/{job['id']}/restore"), 409)
    assert client.get(f"/v1/predictions/{job['id']}").status_code == 404
    assert [e["id"] for e in client.get("/v1/trash").json()["results"]] == [job["id"]]


def test_the_sweeper_empties_only_expired_entries(served):
    client, settings = served
    old, fresh = finished_clip(client, settings, "An old one."), finished_clip(client, settings, "A new one.")
    client.delete(f"/v1/predictions/{old['id']}")
    client.delete(f"/v1/predictions/{fresh['id']}")
    assert outputs.sweep(settings) == 0  # nothing is old yet
    later = utcnow() + timedelta(days=settings.trash_days, seconds=1)
    assert outputs.sweep(settings, now=later) == 2
    assert client.get("/v1/trash").json()["results"] == []
    assert_problem(client.post(f"/v1/trash/{old['id']}/restore"), 404)
    assert not any(settings.trash_dir.iterdir())


def test_with_no_trash_days_a_delete_is_final(tmp_path):
    with api(tmp_path, trash_days=0) as (client, settings):
        job = finished_clip(client, settings)
        client.delete(f"/v1/predictions/{job['id']}")
        assert not (settings.outputs_dir / job["output"]["video"]).exists()
        assert client.get("/v1/trash").json() == {"results": [], "trash_days": 0}


def test_clean_workspace_with_outputs_uses_the_trash_and_answers_in_the_seed_shape(served):
    client, settings = served
    job = finished_clip(client, settings)
    cleaned = client.post("/clean-workspace", data={"include_outputs": "true"}).json()
    assert cleaned["status"] == "success" and cleaned["jobs_deleted"] == 1
    assert cleaned["deleted_count"] == cleaned["files_removed"] == 3 and cleaned["trash_days"] == 7
    assert client.post(f"/v1/trash/{job['id']}/restore").status_code == 200
    assert client.get("/workspace-status").json()["cached_videos"] == 1


def test_master_reset_empties_the_trash(served):
    client, settings = served
    job = finished_clip(client, settings)
    client.delete(f"/v1/predictions/{job['id']}")
    client.post("/master-reset", data={"confirm": "RESET"})
    assert client.get("/v1/trash").json()["results"] == []


def test_trash_routes_refuse_odd_ids(served):
    client, _ = served
    for bad in ("..", "0" * 19, "../../etc"):
        assert client.post(f"/v1/trash/{bad}/restore").status_code == 404
    assert_problem(client.delete(f"/v1/trash/{'a' * 20}"), 404)


def test_use_trained_profile_without_a_name_takes_the_newest_and_says_so(served):
    client, settings = served
    add_profile(settings, "Older", minutes_ago=30)
    add_profile(settings, "Newer", minutes_ago=5)
    answer = client.post("/generate", data={"text": "Hello.", "use_trained_profile": "true"}).json()
    assert answer["profile"] == "Newer" and "Newer" in answer["message"]
    assert client.get(f"/v1/predictions/{answer['job_id']}").json()["input"]["profile"] == "Newer"
    named = client.post(
        "/generate", data={"text": "Hello.", "use_trained_profile": "true", "trained_person_name": "Older"}
    ).json()
    assert named["profile"] == "Older"
    # A CLI-made profile (no training job) newer than any training is the seed's "latest training".
    status = client.get("/training-status").json()
    assert status["has_training"] and status["person_name"] == "Newer" and status["status"] == "completed"
    assert status["current_step"] == status["training_steps"] == 10 and status["current_accuracy"] is None


def test_docs_say_current_accuracy_is_null(served):
    client, _ = served
    schema = client.get("/openapi.json").json()["components"]["schemas"]["TrainingStatus"]
    assert schema["properties"]["current_accuracy"]["description"].startswith("Always null")
    assert "training_started" in client.get("/openapi.json").text


def test_health_check_names_the_weights_the_workers_run(tmp_path):
    with api(tmp_path) as (client, _):
        store = client.app.state.store
        check = client.get("/health-check").json()
        assert check["weights"] == "tiny"  # no worker yet: what this host would load (no real weights here)
        verified = {"device": "cuda:0", "tiny": False, "weights_source": "verified"}
        store.worker_seen("gpu-a-1-aaaaaa", state="ready", device="cuda:0", model=verified, pid=101)
        check = client.get("/health-check").json()
        assert check["weights"] == "verified" and "avatar models download" in check["weights_note"]
        tiny = {"device": "cpu", "tiny": True, "weights_source": "tiny"}
        store.worker_seen("cpu-b-2-bbbbbb", state="ready", device="cpu", model=tiny, pid=202)
        assert client.get("/health-check").json()["weights"] == "mixed"
    with api(tmp_path / "keyed", api_keys=["k1"]) as (client, _):
        assert "weights" not in client.get("/health-check").json()  # the open answer stays state and queue
        assert client.get("/health-check", headers={"X-API-Key": "k1"}).json()["weights"] == "tiny"
