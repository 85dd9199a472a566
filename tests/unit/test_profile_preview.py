"""A face profile's preview frame is served with the profile; a profile without one answers a clear 404."""

from __future__ import annotations

import io

from PIL import Image

from ltx2.store.jobs import JobStore
from ltx2.store.models import Profile, utcnow
from tests.api_helpers import api, assert_problem

FOLDER = "0123456789abcdef0123"


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def test_profile_preview_is_served_and_a_missing_one_is_a_404(tmp_path):
    with api(tmp_path) as (client, settings):
        folder = settings.profiles_dir / FOLDER
        folder.mkdir(parents=True)
        (folder / "lora.safetensors").write_bytes(b"lora")
        Image.new("RGB", (16, 16)).save(folder / "photo-1.png")
        store = JobStore(settings.db_url)
        store.add_profile(
            Profile(
                name="Ada",
                trigger="ohwxada",
                folder=FOLDER,
                lora="lora.safetensors",
                photos=["photo-1.png"],
                best_photo="photo-1.png",
                steps=10,
                final_loss=0.1,
                validation_loss=0.1,
                training_job="j1",
                created_at=utcnow(),
            )
        )
        doc = client.get("/v1/profiles/Ada").json()
        assert doc["preview_url"] == "http://testserver/v1/profiles/Ada/preview"
        # A profile trained before previews were made: a problem document that says so.
        problem = assert_problem(client.get("/v1/profiles/Ada/preview"), 404)
        assert "no preview frame" in problem["detail"]
        (folder / "preview.jpg").write_bytes(_jpeg())
        response = client.get("/v1/profiles/Ada/preview")
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        assert response.content == (folder / "preview.jpg").read_bytes()
        assert_problem(client.get("/v1/profiles/nobody/preview"), 404)
        store.close()
