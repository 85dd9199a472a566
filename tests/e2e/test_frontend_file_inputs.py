"""The studio takes a pasted image URL instead of an upload, says under the field why the server refused one, and
the Workspace page says how many faces and voices are kept, and where (AppTest against a real `avatar serve`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from tests.api_helpers import png_bytes, serve_photo
from tests.live_server import LiveServer
from tests.pace import scaled

APP = Path(__file__).resolve().parents[2] / "frontend" / "app.py"
PHOTO = png_bytes((96, 64), (40, 160, 90))


@pytest.fixture(scope="module")
def photo_site():
    with serve_photo(PHOTO) as address:
        yield address


@pytest.fixture(scope="module")
def server(tmp_path_factory, photo_site):
    # No worker: these jobs only need to be queued.
    env = {"AVATAR_FETCH_ALLOW": json.dumps([photo_site])}
    with LiveServer(tmp_path_factory.mktemp("studio-urls"), workers=0, env=env) as live:
        yield live


@pytest.fixture
def at(server, monkeypatch):
    monkeypatch.setenv("AVATAR_API_URL", server.url)
    monkeypatch.delenv("AVATAR_API_KEY", raising=False)
    old = st_config.get_option("server.address")
    st_config.set_option("server.address", "127.0.0.1")  # a studio on loopback: no sign-in page
    yield AppTest.from_file(str(APP), default_timeout=scaled(30)).run()
    st_config.set_option("server.address", old)


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_a_pasted_image_url_is_the_reference_photo(at, server, photo_site):
    at.radio(key="create_mode").set_value("photo").run()
    at.text_area(key="create_text").input("Hello there.").run()

    at.text_input(key="create_photo_url").input("http://127.0.0.1:9/face.png").run()
    at.button(key="create_submit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "did not take this link" in _texts(at.error) and "loopback" in _texts(at.error)
    assert server.client.get("/v1/predictions").json()["results"] == []

    at.text_input(key="create_photo_url").input(f"http://{photo_site}/face.png").run()
    at.button(key="create_submit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    doc = server.client.get(f"/v1/predictions/{at.session_state['focus_job']}").json()
    photo = server.client.get(f"/v1/files/{doc['input']['image']}").json()
    assert photo["meta"] == {"width": 96, "height": 64} and photo["name"] == "face.png"


def test_workspace_says_how_many_photos_are_kept_and_where(at, server):
    server.client.post("/v1/files", files={"content": ("spare.png", PHOTO, "image/png")})
    status = server.client.get("/workspace-status").json()
    at.switch_page("views/workspace.py").run()
    assert not at.exception, [e.value for e in at.exception]
    said = _texts(at.markdown) + _texts(at.caption)
    assert f"**{status['uploads_in_use']} upload" in said and f"**{status['uploads_unused']}** used by nothing" in said
    assert status["uploads_unused"] >= 1 and status["uploads_folder"] in said and status["profiles_folder"] in said
