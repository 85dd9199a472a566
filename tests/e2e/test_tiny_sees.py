"""The right picture in the right frame: checks that need a video VAE that sees (the tiny set's is trained).

The transformer is random, so only what the pipelines pin without it can be checked: the latent frame a
reference photo replaces, and what the VAE makes of it. Frames are compared with PSNR against the photo as the
pipeline frames it (the library's own resize and centre crop), so a wrong frame, a wrong crop or a photo that
never reaches the video all fail.

Not checkable here: keyframe anchors are extra tokens the transformer attends to (ltx-pipelines'
VideoConditionByKeyframeIndex), not replaced latents, so with a random transformer the anchor frames stay noise
(measured: 7.5 dB against the photo with and without an anchor). A face LoRA (150 steps, rank 8) moves the frames
~0.8 dB toward any picture, not toward its own face: a random 2-layer transformer does not learn a face.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ltx_pipelines.utils.media_io import decode_image, resize_and_center_crop
from PIL import Image

from ltx2.engine.pipelines import GenerationRequest
from ltx2.render import ClipSpec
from ltx2.render.script import ScriptSpec, plan_script, render_script
from ltx2.script.stitch import read_frames
from ltx2.services.seed import seed_to_ltx_strength
from ltx2.settings import Settings

SIZE = 128  # the studio's clip size on the tiny checkpoint
# The trained VAE reconstructs the astronaut framed whole at 128x128 (a picture it never saw) at 19.9 dB, and
# held-out 128x128 crops at 25.4 dB on average (scripts/train_tiny_vae.py). On the way through a pipeline the
# photo is first compressed by the library (H.264 at crf 33, as every conditioning image is): frame 0 measured
# 19.0 dB. 17 dB leaves 2 dB for other machines' arithmetic; a random VAE's frame 0 is 6-10 dB from any photo.
FRAME_0_DB = 17.0
# A segment continues from the previous one's last frame (saved as PNG, encoded as its frame 0, that frame then
# dropped): its first kept frame is 7/8 of the way from that picture to the next random latent frame in the
# decoder's feature space. At 64x64 that measured 20.7-21.3 dB against the previous last frame (steps inside a
# segment: 22-28 dB; two unrelated frames: 10-12 dB).
SEAM_DB = 18.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def framed(path, height: int, width: int) -> np.ndarray:
    """The photo as the pipeline frames it: uint8 [h, w, 3]."""
    image = torch.tensor(decode_image(str(path)), dtype=torch.float32)
    return resize_and_center_crop(image, height, width)[0, :, 0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()


def generate(engine, **kwargs) -> np.ndarray:
    request = GenerationRequest(
        prompt='A woman says: "Hello there."', **{"width": SIZE, "height": SIZE, "num_frames": 9, **kwargs}
    )
    result = engine.generate(request)
    return torch.cat([chunk for chunk in result.video]).numpy()


@pytest.fixture(scope="module")
def other_photo(tmp_path_factory):
    """A different photograph from scikit-image (a cat)."""
    from skimage import data

    path = tmp_path_factory.mktemp("img") / "chelsea.png"
    Image.fromarray(data.chelsea()).save(path)
    return path


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(outputs_dir=tmp_path / "out", temp_dir=tmp_path / "tmp")


def test_the_video_vae_reconstructs_a_held_out_photograph(tiny, face_photo):
    """The checkpoint's own encoder and decoder, as ltx-core loads them: astronaut crops never seen in training."""
    from ltx_pipelines.utils.model_ledger import ModelLedger

    ledger = ModelLedger(dtype=torch.float32, device=torch.device("cpu"), checkpoint_path=str(tiny.checkpoint))
    encoder, decoder = ledger.video_encoder(), ledger.video_decoder()
    photo = np.asarray(Image.open(face_photo))
    crops = [photo[y : y + 128, x : x + 128] for y in (0, 192, 384) for x in (0, 192, 384)]
    crops.append(framed(face_photo, 128, 128))
    with torch.no_grad():
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)[:, :, None].float() / 127.5 - 1
        decoded = decoder(encoder(batch))[:, :, 0]
    back = ((decoded.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    scores = [psnr(a, b) for a, b in zip(back, crops)]
    assert np.mean(scores) >= 24.0, scores


@pytest.mark.parametrize("mode", ["distilled", "two-stage"])
def test_the_reference_photo_is_frame_zero(engine, face_photo, other_photo, mode):
    frames = generate(engine, mode=mode, steps=3, image=face_photo, image_strength=1.0)
    own = psnr(frames[0], framed(face_photo, SIZE, SIZE))
    other = psnr(frames[0], framed(other_photo, SIZE, SIZE))
    assert own >= FRAME_0_DB, (own, other)
    assert own >= other + 6.0, (own, other)
    # It is frame 0 that carries it: the last frame (random latents) does not.
    assert psnr(frames[-1], framed(face_photo, SIZE, SIZE)) < own - 6.0


def test_the_seeds_image_strength_is_monotone_at_frame_zero(engine, face_photo):
    photo = framed(face_photo, SIZE, SIZE)
    scores = [
        psnr(generate(engine, image=face_photo, image_strength=seed_to_ltx_strength(s), seed=5)[0], photo)
        for s in (2.0, 1.0, 0.5)
    ]
    assert scores[0] > scores[1] > scores[2], scores
    assert scores[0] >= FRAME_0_DB, scores


def three_segments(photo, **extra) -> ScriptSpec:
    text = "First line here. Second line follows. Third line ends it."
    return ScriptSpec(
        clip=ClipSpec(text=text, width=64, height=64, image=photo), text=text, segment_seconds=3.0, **extra
    )


def seams(result) -> list[int]:
    """Index in the stitched video of each segment's first frame (after the first), with no crossfade."""
    starts, at = [], 0
    for seg in result.segments[:-1]:
        at += seg["frames"]
        starts.append(at)
    return starts


def test_each_segment_starts_where_the_previous_one_ended(engine, settings, tmp_path, face_photo):
    spec = three_segments(face_photo)
    result = render_script(engine, spec, plan_script(spec, settings), tmp_path / "seg", tmp_path / "a.mp4", settings)
    frames = list(read_frames(result.video))
    starts = seams(result)
    assert len(starts) == 2
    for start in starts:
        joined = psnr(frames[start - 1], frames[start])
        assert joined >= SEAM_DB, (start, joined)
        # A wrong continuity frame (the reference photo instead of the previous last frame) would not match.
        assert joined > psnr(frames[start], frames[0]) + 3.0


def speech_like(path, seconds: float = 1.5, rate: int = 16000):
    """Voiced syllables: a gliding pitch with harmonics, four syllables a second, pauses between words."""
    import wave

    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5 * (np.sin(2 * np.pi * 0.9 * t) > -0.6)
    signal = (0.25 * voice * envelope * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(signal.tobytes())
    return path, signal.astype(np.float32) / 32767


def test_audio_mode_plays_the_recording_itself(engine, settings, tmp_path):
    """A2Vid at speed 1.0: the MP4's sound is the input recording (after AAC and resampling), not a re-synthesis."""
    from ltx2.media import read_audio
    from ltx2.render.clip import render

    voice, signal = speech_like(tmp_path / "voice.wav")
    spec = ClipSpec(text="Hello there.", audio=voice, width=64, height=64, steps=2)
    result = render(engine, spec, tmp_path / "a2v.mp4", settings)
    heard, rate = read_audio(result.video, target_rate=16000, channels=1)
    heard = heard[0]
    n = min(len(heard), len(signal)) - 2048
    assert n > 0.9 * 16000  # the clip covers (nearly) the whole recording
    # The best alignment within ±64 ms (encoder priming, resampler delay).
    best = max(
        np.corrcoef(heard[lag : lag + n], signal[:n])[0, 1]
        if lag >= 0
        else np.corrcoef(heard[:n], signal[-lag : n - lag])[0, 1]
        for lag in range(-1024, 1025)
    )
    assert best >= 0.99, best


def test_a_retaken_segment_still_starts_where_its_neighbour_ended(engine, settings, tmp_path, face_photo):
    from dataclasses import replace

    from ltx2.render.script import link_segments, segment_seed

    spec = three_segments(face_photo)
    segments = plan_script(spec, settings)
    first = render_script(engine, spec, segments, tmp_path / "one", tmp_path / "one.mp4", settings)
    # What a retake of segment 2 does (worker.runners._derived_plan): a new take and seed, the others linked.
    segments[1] = replace(segments[1], take=2, seed=segment_seed(spec.clip.seed, 1, 2))
    link_segments(tmp_path / "one", tmp_path / "two", keep=[0, 2])
    second = render_script(engine, spec, segments, tmp_path / "two", tmp_path / "two.mp4", settings)
    before, after = list(read_frames(first.video)), list(read_frames(second.video))
    start = seams(second)[0]
    assert psnr(after[start - 1], after[start]) >= SEAM_DB
    # The retake really is another take: its frames differ from the first take's.
    assert psnr(before[start + 20], after[start + 20]) < 30.0


def test_a_finalized_draft_keeps_its_first_frame(engine, settings, tmp_path, face_photo):
    """The same script as a draft (half size, distilled) and finalized (full size): frame 0 is the same picture."""
    text = "Hello there, welcome."

    def spec(draft: bool) -> ScriptSpec:
        clip = ClipSpec(text=text, width=SIZE, height=SIZE, image=face_photo, mode="two-stage")
        return ScriptSpec(clip=clip, text=text, segment_seconds=3.0, draft=draft)

    a = render_script(
        engine, spec(True), plan_script(spec(True), settings), tmp_path / "d", tmp_path / "d.mp4", settings
    )
    b = render_script(
        engine, spec(False), plan_script(spec(False), settings), tmp_path / "f", tmp_path / "f.mp4", settings
    )
    small, large = next(read_frames(a.video)), next(read_frames(b.video))
    assert small.shape[:2] == (SIZE // 2, SIZE // 2) and large.shape[:2] == (SIZE, SIZE)
    shrunk = np.asarray(Image.fromarray(large).resize(small.shape[1::-1], Image.BICUBIC))
    assert psnr(shrunk, small) >= FRAME_0_DB
