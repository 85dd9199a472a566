"""Face photos do not outlive their use: uploads are owned by jobs and profiles; deleting either removes exactly the
uploads no one else uses; clean-workspace removes unowned ones; retention removes finished jobs' inputs.

The store tests run on SQLite and PostgreSQL (`db_url`); the API tests check the bytes on disk as well.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from ltx2.services import files as file_service
from ltx2.store import lifecycle
from ltx2.store.jobs import JobStore
from ltx2.store.models import Profile, utcnow
from tests.api_helpers import api, assert_problem, create_job, files_under, png_bytes, upload


@pytest.fixture
def store(db_url):
    s = JobStore(db_url)
    s.migrate()
    yield s
    s.close()


def _file(store: JobStore, name: str) -> str:
    return store.add_file(kind="image", content_type="image/png", path=f"{name}.png", sha256=name * 8, size=1).id


def _finished(store: JobStore, inp: dict, kind: str = "generate") -> str:
    job = store.create(kind, inp)[0]
    lifecycle.cancel(store, job.id)  # a waiting job is canceled at once: finished
    return job.id


def _ids(records) -> set[str]:
    return {r.id for r in records}


# ============================================================================ the store


def test_deleting_a_job_deletes_only_the_uploads_it_alone_used(store):
    alone, shared, unused = _file(store, "a"), _file(store, "b"), _file(store, "c")
    first = _finished(store, {"text": "hi", "image": alone, "audio": shared})
    second = store.create("generate", {"text": "hi", "image": shared})[0].id
    assert sorted(store.file_owners(shared)) == sorted([("job", first), ("job", second)])
    assert store.file_owners(unused) == []

    deleted, released = store.delete_with_files(first)
    assert deleted and _ids(released) == {alone}
    assert store.get_file(alone) is None
    assert store.get_file(shared) is not None and store.file_owners(shared) == [("job", second)]
    assert store.get_file(unused) is not None  # owned by nobody yet: not the job's to delete

    # A job that is not finished is not deleted, and keeps its uploads.
    assert store.delete_with_files(second) == (False, [])
    assert store.get_file(shared) is not None


def test_deleting_a_profile_deletes_its_training_photos_but_not_shared_ones(store):
    photos = [_file(store, x) for x in "pqr"]
    train = _finished(store, {"name": "ana", "photos": photos}, kind="train")
    reuse = _finished(store, {"text": "hi", "image": photos[0]})  # someone used one photo as a reference too
    profile = Profile(
        name="ana", trigger="ohwxana", folder="ab" * 10, lora="l", photos=["x"], best_photo="x", steps=1,
        training_job=train, created_at=utcnow(),
    )  # fmt: skip
    assert store.add_profile(profile)
    assert ("profile", "ana") in store.file_owners(photos[1])

    # Deleting the training job alone keeps the photos: the profile still has them.
    assert store.delete_with_files(train) == (True, [])

    gone, released = store.delete_profile("ana")
    assert gone is not None and _ids(released) == set(photos[1:])
    assert store.get_file(photos[0]) is not None and store.file_owners(photos[0]) == [("job", reuse)]
    assert store.delete_profile("ana") == (None, [])


def test_unowned_uploads_are_the_ones_clean_removes(store):
    used, unused = _file(store, "u"), _file(store, "n")
    store.create("generate", {"text": "hi", "image": used})
    assert store.owned_counts() == (1, 1)
    assert _ids(store.delete_unowned_files()) == {unused}
    assert store.get_file(used) is not None and store.owned_counts() == (1, 0)


def test_retention_releases_only_finished_jobs_older_than_the_cutoff(store):
    old_only, old_shared, recent_in = _file(store, "o"), _file(store, "s"), _file(store, "r")
    waiting_in = _file(store, "w")
    old = _finished(store, {"text": "hi", "image": old_only, "audio": old_shared})
    time.sleep(0.05)
    cutoff = utcnow()
    time.sleep(0.05)
    store.create("generate", {"text": "hi", "image": old_shared})  # still waiting: keeps the shared one
    store.create("generate", {"text": "hi", "image": waiting_in})
    recent = _finished(store, {"text": "hi", "image": recent_in})  # finished after the cutoff
    assert _ids(store.release_expired_inputs(cutoff - timedelta(days=1))) == set()  # nothing that old

    assert _ids(store.release_expired_inputs(cutoff)) == {old_only}
    assert store.file_owners(old_shared) != [] and store.get_file(waiting_in) is not None
    assert store.get_file(recent_in) is not None and store.get(recent) is not None
    assert store.get(old) is not None  # the job and its outputs stay; only its inputs go
    assert _ids(store.release_expired_inputs(cutoff)) == set()  # a second sweep finds nothing more


# ============================================================================ the API (bytes on disk too)


@pytest.fixture
def served(tmp_path):
    with api(tmp_path) as pair:
        yield pair


def _on_disk(settings) -> set[str]:
    return set(files_under(settings.uploads_dir))


def test_deleting_a_prediction_removes_its_photo_and_keeps_a_shared_one(served):
    client, settings = served
    mine = upload(client, png_bytes(color=(1, 2, 3))).json()["id"]
    shared = upload(client, png_bytes(color=(4, 5, 6))).json()["id"]
    spare = upload(client, png_bytes(color=(7, 8, 9))).json()["id"]
    job = create_job(client, image=mine)["id"]
    other = create_job(client, image=shared, seed=1)["id"]
    also = create_job(client, image=shared, seed=2)["id"]
    names = {f: client.get(f"/v1/files/{f}").json() for f in (mine, shared, spare)}
    assert len(_on_disk(settings)) == 3

    # A queued job's photo cannot be deleted on its own: 409 names the job, nothing goes.
    body = assert_problem(client.delete(f"/v1/files/{mine}"), 409)
    assert job in body["detail"] and len(_on_disk(settings)) == 3

    for j in (job, other):
        client.post(f"/v1/predictions/{j}/cancel")
        assert client.delete(f"/v1/predictions/{j}").status_code == 204
    assert_problem(client.get(f"/v1/files/{mine}"), 404)
    assert client.get(f"/v1/files/{shared}").status_code == 200  # `also` still uses it
    assert client.get(f"/v1/files/{spare}").status_code == 200
    assert len(_on_disk(settings)) == 2 and names[mine]["sha256"] not in files_under(settings.uploads_dir).values()

    client.post(f"/v1/predictions/{also}/cancel")
    assert client.delete(f"/v1/files/{shared}").status_code == 204  # finished now: the file may go on its own
    assert_problem(client.get(f"/v1/files/{shared}"), 404)
    assert_problem(client.delete(f"/v1/files/{shared}"), 404)
    assert len(_on_disk(settings)) == 1


def test_deleting_a_profile_removes_its_photos_lora_and_training_uploads(served):
    client, settings = served
    photos = [upload(client, png_bytes(color=(i, i, i))).json()["id"] for i in range(3)]
    other = upload(client, png_bytes(color=(9, 9, 9))).json()["id"]
    store = JobStore(settings.db_url)
    train = _finished(store, {"name": "ana", "photos": photos}, kind="train")
    folder = settings.profiles_dir / ("cd" * 10)
    folder.mkdir(parents=True)
    (folder / "lora.safetensors").write_bytes(b"weights")
    (folder / "photo-1.png").write_bytes(png_bytes())
    profile = Profile(
        name="ana", trigger="ohwxana", folder=folder.name, lora="lora.safetensors", photos=["photo-1.png"],
        best_photo="photo-1.png", steps=1, training_job=train, created_at=utcnow(),
    )  # fmt: skip
    assert store.add_profile(profile)
    assert client.get("/workspace-status").json()["profile_photos"] == 1

    assert client.delete("/v1/profiles/ana").status_code == 204
    assert not folder.exists()
    assert all(client.get(f"/v1/files/{p}").status_code == 404 for p in photos)
    assert client.get(f"/v1/files/{other}").status_code == 200  # not the profile's
    assert len(_on_disk(settings)) == 1


def test_clean_workspace_removes_unowned_uploads_and_keeps_used_ones(served):
    client, settings = served
    used = upload(client, png_bytes(color=(1, 2, 3))).json()["id"]
    unused = upload(client, png_bytes(color=(4, 5, 6))).json()["id"]
    create_job(client, image=used)
    status = client.get("/workspace-status").json()
    assert (status["uploads_in_use"], status["uploads_unused"]) == (1, 1)
    assert status["uploads_folder"] == str(settings.uploads_dir)

    response = client.post("/clean-workspace")
    assert response.status_code == 200, response.text
    assert response.json()["uploads_removed"] == 1
    assert_problem(client.get(f"/v1/files/{unused}"), 404)
    assert client.get(f"/v1/files/{used}").status_code == 200
    assert len(_on_disk(settings)) == 1
    status = client.get("/workspace-status").json()
    assert (status["uploads_in_use"], status["uploads_unused"]) == (1, 0)


def test_retention_sweep_removes_expired_inputs_and_is_off_by_default(tmp_path):
    with api(tmp_path) as (client, settings):
        photo = upload(client, png_bytes()).json()["id"]
        job = create_job(client, image=photo)["id"]
        client.post(f"/v1/predictions/{job}/cancel")
        later = utcnow() + timedelta(days=400)
        assert settings.retention_days is None
        assert file_service.sweep_expired(JobStore(settings.db_url), settings, now=later) == 0  # off: kept
        assert client.get(f"/v1/files/{photo}").status_code == 200

        kept = settings.model_copy(update={"retention_days": 30})
        store = JobStore(kept.db_url)
        assert file_service.sweep_expired(store, kept) == 0  # finished just now: not expired
        assert file_service.sweep_expired(store, kept, now=later) == 1
        assert_problem(client.get(f"/v1/files/{photo}"), 404)
        assert _on_disk(settings) == set()
        assert client.get(f"/v1/predictions/{job}").status_code == 200  # the job itself stays


def test_the_migration_gives_existing_uploads_their_owners(db_url):
    """A database from before ownership (revision 0003): its jobs' and profiles' uploads get owners on upgrade, so
    the first clean-workspace after the upgrade removes only what nothing uses."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    import ltx2.store.jobs as jobs_module

    config = Config()
    config.set_main_option("script_location", str(Path(jobs_module.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    command.upgrade(config, "0003")
    engine = create_engine(db_url)
    now = utcnow()
    with engine.begin() as c:
        for fid in ("f_used", "f_photo", "f_free"):
            c.execute(
                text(
                    "INSERT INTO files (id, kind, content_type, path, sha256, size, meta, created_at) "
                    "VALUES (:id, 'image', 'image/png', :path, :sha, 1, '{}', :now)"
                ),
                {"id": fid, "path": f"{fid}.png", "sha": fid, "now": now},
            )
        for jid, kind, inp in (
            ("j_gen", "generate", '{"text": "hi", "image": "f_used", "audio": null}'),
            ("j_train", "train", '{"name": "ana", "photos": ["f_photo", "gone"]}'),
        ):
            c.execute(
                text(
                    "INSERT INTO jobs (id, kind, status, input, logs, progress_step, progress_total, "
                    "progress_percent, priority, attempt, cancel_requested, status_sequence, created_at) "
                    "VALUES (:id, :kind, 'succeeded', :inp, '', 0, 0, 0, 0, 0, false, 0, :now)"
                ),
                {"id": jid, "kind": kind, "inp": inp, "now": now},
            )
        c.execute(
            text(
                "INSERT INTO profiles (name, trigger, folder, lora, photos, best_photo, steps, training_job, "
                "created_at) VALUES ('ana', 't', 'f', 'l', '[]', 'b', 1, 'j_train', :now)"
            ),
            {"now": now},
        )
    engine.dispose()
    store = JobStore(db_url)
    store.migrate()
    assert store.file_owners("f_used") == [("job", "j_gen")]
    assert sorted(store.file_owners("f_photo")) == [("job", "j_train"), ("profile", "ana")]
    assert store.file_owners("f_free") == []
    assert _ids(store.delete_unowned_files()) == {"f_free"}
    store.close()


def test_the_api_background_loop_sweeps_expired_inputs(tmp_path, monkeypatch):
    """AVATAR_RETENTION_DAYS set: the reaper thread of a running API removes a finished job's photo by itself."""
    from ltx2.api import app as app_module

    monkeypatch.setattr(app_module, "SWEEP_EVERY_S", 0.2)
    with api(tmp_path, retention_days=0.5 / 86400, stale_after_s=2) as (client, settings):  # half a second
        photo = upload(client, png_bytes()).json()["id"]
        kept = upload(client, png_bytes(color=(1, 1, 1))).json()["id"]
        job = create_job(client, image=photo)["id"]
        waiting = create_job(client, image=kept, seed=3)["id"]
        client.post(f"/v1/predictions/{job}/cancel")
        deadline = time.monotonic() + 30
        while client.get(f"/v1/files/{photo}").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert_problem(client.get(f"/v1/files/{photo}"), 404)
        assert client.get(f"/v1/files/{kept}").status_code == 200  # its job has not finished
        assert client.get(f"/v1/predictions/{waiting}").json()["status"] == "starting"
        assert len(_on_disk(settings)) == 1
