"""Long scripts through the job server: a real uvicorn and worker process on the tiny checkpoint (SQLite).

Create a captioned script, retake one segment (the others' frames stay byte-identical), finalize a draft,
cancel mid-script, and the seed's /generate with a long text.
"""

from __future__ import annotations

import hashlib

import pytest

from ltx2.media import probe
from ltx2.script.stitch import SegmentFiles, read_frames
from tests.api_helpers import assert_problem
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow
SCRIPT = (
    "Hello and welcome to the studio. Today we make a video from a script. "
    "Every sentence becomes part of one clip. The face stays the same all the way. Thanks for watching!"
)
SMALL = {"width": 64, "height": 64, "segment_seconds": 3.0}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("script-live")) as live:
        yield live


def create(server, **input_) -> dict:
    response = server.client.post("/v1/predictions", json={"input": {"text": SCRIPT, **SMALL, **input_}})
    assert response.status_code == 201, response.text
    return response.json()


def finished(server, job_id: str, timeout: float = 300) -> dict:
    doc = server.wait_status(job_id, ("succeeded", "failed", "canceled"), timeout=timeout)
    assert doc["status"] == "succeeded", doc
    return doc


def segment_hashes(server, job_id: str, count: int) -> list[list[str]]:
    folder = server.root / "outputs" / ".state" / "segments" / job_id
    return [
        [hashlib.sha256(f.tobytes()).hexdigest() for f in read_frames(SegmentFiles(folder, i).video)]
        for i in range(count)
    ]


def download(server, url: str, path):
    response = server.client.get(url.replace(server.url, ""))
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return response


@pytest.fixture(scope="module")
def captioned(server):
    job = create(server, captions=["srt", "vtt"])
    return finished(server, job["id"])


def test_a_script_becomes_one_captioned_video(server, captioned, tmp_path):
    out = captioned["output"]
    segments = out["segments"]
    assert len(segments) >= 4 and [s["number"] for s in segments] == list(range(1, len(segments) + 1))
    info = probe(download(server, out["video_url"], tmp_path / "a.mp4") and tmp_path / "a.mp4")
    assert info.frames == sum(s["frames"] for s in segments) and info.has_audio
    assert info.audio_duration == pytest.approx(info.video_duration, abs=0.05)
    vtt = download(server, out["captions_urls"]["vtt"], tmp_path / "a.vtt")
    assert vtt.headers["content-type"].startswith("text/vtt") and vtt.text.startswith("WEBVTT")
    srt = download(server, out["captions_urls"]["srt"], tmp_path / "a.srt").text
    assert srt.startswith("1\n00:00:00,000 --> ")
    assert "Thanks for watching!" in srt
    assert captioned["progress"]["segments"] == len(segments)
    for i in range(1, len(segments) + 1):  # per-segment progress, as the log shows it
        assert f"segment {i}/{len(segments)} · stage 1: " in captioned["logs"]
        assert f"segment {i}/{len(segments)} · encode: " in captioned["logs"]


def test_retake_of_segment_2_changes_only_segment_2(server, captioned, tmp_path):
    parent = captioned
    n = len(parent["output"]["segments"])
    new_text = "Now we make a film."
    response = server.client.post(f"/v1/predictions/{parent['id']}/segments/2/retake", json={"text": new_text})
    assert response.status_code == 201, response.text
    retake = finished(server, response.json()["id"])
    assert retake["input"]["source"] == {"prediction": parent["id"], "action": "retake", "segment": 2, "text": new_text}
    assert new_text in retake["input"]["text"]  # the job's text is the script as it now reads
    segs = retake["output"]["segments"]
    assert [s["reused"] for s in segs] == [i != 1 for i in range(n)]
    assert (
        segs[1]["text"] == new_text
        and segs[1]["take"] == 2
        and segs[1]["seed"] != parent["output"]["segments"][1]["seed"]
    )
    assert [s["text"] for i, s in enumerate(segs) if i != 1] == [
        s["text"] for i, s in enumerate(parent["output"]["segments"]) if i != 1
    ]
    before, after = segment_hashes(server, parent["id"], n), segment_hashes(server, retake["id"], n)
    for i in range(n):
        if i == 1:
            assert after[i] != before[i]
        else:
            assert after[i] == before[i]
    # The new video is stitched again: its frames are the new segment lengths, captions carry the new line.
    info = probe(download(server, retake["output"]["video_url"], tmp_path / "r.mp4") and tmp_path / "r.mp4")
    assert info.frames == sum(s["frames"] for s in segs)
    assert new_text in server.client.get(retake["output"]["captions_urls"]["srt"].replace(server.url, "")).text
    # The original is untouched.
    assert server.client.get(f"/v1/predictions/{parent['id']}").json()["output"] == parent["output"]


def test_retake_refuses_what_cannot_be_retaken(server, captioned):
    pid = captioned["id"]
    n = len(captioned["output"]["segments"])
    assert_problem(server.client.post(f"/v1/predictions/{pid}/segments/{n + 1}/retake"), 404)
    assert_problem(server.client.post(f"/v1/predictions/{pid}/segments/0/retake"), 404)
    assert_problem(server.client.post("/v1/predictions/nope/segments/1/retake"), 404)
    body = assert_problem(
        server.client.post(f"/v1/predictions/{pid}/segments/1/retake", json={"text": " ".join(["word"] * 60)}), 422
    )
    assert "segment 1 is about" in body["detail"] and "at most 3 s" in body["detail"]


def test_a_draft_is_finalized_at_full_size_with_the_same_segments(server, tmp_path):
    draft = finished(server, create(server, draft=True, width=128, height=128)["id"])
    meta = draft["output"]["metadata"]
    assert (meta["width"], meta["height"], meta["draft"]) == (64, 64, True)
    response = server.client.post(f"/v1/predictions/{draft['id']}/finalize", json={"mode": "distilled"})
    assert response.status_code == 201, response.text
    final = finished(server, response.json()["id"])
    assert final["input"]["draft"] is False and final["input"]["source"]["action"] == "finalize"
    info = probe(download(server, final["output"]["video_url"], tmp_path / "f.mp4") and tmp_path / "f.mp4")
    assert (info.width, info.height) == (128, 128)
    pick = ("number", "text", "seed", "take")
    assert [{k: s[k] for k in pick} for s in final["output"]["segments"]] == [
        {k: s[k] for k in pick} for s in draft["output"]["segments"]
    ]


def test_cancel_mid_script_stops_cleanly_and_the_worker_moves_on(server):
    job = create(server, width=192, height=192, mode="two-stage", steps=60)
    server.wait_for(
        lambda: (
            (server.client.get(f"/v1/predictions/{job['id']}").json()["progress"].get("segment") or 0) >= 1
            and server.client.get(f"/v1/predictions/{job['id']}").json()["progress"]["step"] >= 2
        ),
        180,
        "the script to start",
    )
    server.client.post(f"/v1/predictions/{job['id']}/cancel")
    doc = server.wait_status(job["id"], ("canceled", "failed", "succeeded"), timeout=60)
    assert doc["status"] == "canceled" and doc["output"] is None
    assert not (server.root / "outputs" / ".state" / "segments" / job["id"]).exists()
    follow_up = server.client.post(
        "/v1/predictions", json={"input": {"text": "Quick one.", "width": 64, "height": 64, "seconds": 0.4}}
    ).json()
    assert server.wait_status(follow_up["id"], ("succeeded", "failed"))["status"] == "succeeded"


def test_seed_generate_takes_a_long_text_as_a_script(server):
    long_text = " ".join(["This sentence is one of many in a long script."] * 6)  # ~25 s: over one clip
    response = server.client.post("/generate", data={"text": long_text, "playback_speed": "1.0"})
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    doc = server.wait_for(
        lambda: (d := server.client.get(f"/v1/predictions/{job_id}").json())["progress"].get("segments") and d,
        120,
        "the script's first segment",
    )
    assert doc["input"]["text"] == long_text and doc["progress"]["segments"] == 2
    # `phase` names the phase (stage 1, decode, …); `label` says it for people, with the segment.
    assert doc["progress"]["label"].startswith("segment 1/2 · ")
    server.client.post(f"/v1/predictions/{job_id}/cancel")  # 768x512 segments take long on a CPU
    assert server.wait_status(job_id, ("canceled", "failed", "succeeded"), timeout=60)["status"] == "canceled"
