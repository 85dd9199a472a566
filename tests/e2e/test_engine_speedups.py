"""The engine's two levers on the tiny checkpoint: the prompt-embedding cache and the compiled transformer's
eager fallback (the real ltx-pipelines code runs through both)."""

from __future__ import annotations

import uuid

import pytest
import torch
from loguru import logger

from ltx2.engine.pipelines import Engine, EngineWeights, GenerationRequest
from ltx2.engine.speedups import PromptCache, parse_shapes

SMALL = dict(width=64, height=64, num_frames=9, fps=24.0)


def run(engine, prompt: str, **kwargs):
    result = engine.generate(GenerationRequest(prompt=prompt, **{**SMALL, **kwargs}))
    return torch.cat(list(result.video)), result.audio.waveform


def gemma_calls(engine) -> list[int]:
    """A counter of forward passes of the resident Gemma model (what the cache exists to skip)."""
    calls = [0]
    gemma = engine.ledger.text_encoder().model.model  # encode() calls the inner model directly

    def count(*_):
        calls[0] += 1

    handle = gemma.register_forward_pre_hook(count)
    return calls, handle


def fresh_engine(tiny, **kwargs) -> Engine:
    weights = EngineWeights(tiny.checkpoint, tiny.gemma_root, tiny.spatial_upsampler, tiny.distilled_lora, tiny=True)
    return Engine(weights, device="cpu", **kwargs)


def test_same_prompt_again_skips_gemma_and_gives_identical_output(engine):
    prompt = f'A man says: "cache check {uuid.uuid4().hex[:8]}."'  # new to this session's engine
    calls, handle = gemma_calls(engine)
    try:
        first_frames, first_audio = run(engine, prompt, seed=5)
        assert calls[0] == 1
        hits = engine.prompt_cache.hits
        second_frames, second_audio = run(engine, prompt, seed=5)
        assert calls[0] == 1, "the second job with the same prompt ran the text encoder again"
        assert engine.prompt_cache.hits == hits + 1
        # Byte for byte what the first (uncached) run made.
        assert torch.equal(first_frames, second_frames) and torch.equal(first_audio, second_audio)
        run(engine, prompt + " Another sentence.", seed=5)
        assert calls[0] == 2  # a different prompt is encoded
    finally:
        handle.remove()


def test_two_stage_negative_prompt_is_encoded_once(engine):
    prompt = f'A woman says: "two stage {uuid.uuid4().hex[:8]}."'
    calls, handle = gemma_calls(engine)
    try:
        run(engine, prompt, mode="two-stage", steps=2, negative_prompt="blurry, a second face")
        run(engine, prompt + " Again.", mode="two-stage", steps=2, negative_prompt="blurry, a second face")
    finally:
        handle.remove()
    assert calls[0] == 3  # two prompts and one shared negative prompt


def test_cache_is_bounded_least_recently_used_first():
    class Encoder:
        def __init__(self):
            self.calls = 0

        def encode(self, text):
            self.calls += 1
            return (torch.full((1, 2), float(len(text))),), torch.ones(1, 2)

    class Processor:
        def process_hidden_states(self, hidden, mask):
            return (hidden[0] * 2, None, mask)

    cache, encoder, processor = PromptCache(2), Encoder(), Processor()
    cache.wrap_text_encoder(encoder)
    cache.wrap_embeddings_processor(processor)

    def embed(text):
        return processor.process_hidden_states(*encoder.encode(text))

    a = embed("a")
    embed("bb")
    assert torch.equal(embed("a")[0], a[0]) and encoder.calls == 2  # "a" hit, now most recent
    embed("ccc")  # evicts "bb", the least recently used
    assert len(cache) == 2
    embed("a")
    assert encoder.calls == 3
    embed("bb")
    assert encoder.calls == 4


def test_cache_size_zero_turns_it_off():
    cache = PromptCache(0)

    class Encoder:
        calls = 0

        def encode(self, text):
            Encoder.calls += 1
            return (torch.zeros(1),), torch.ones(1)

    encoder = Encoder()
    cache.wrap_text_encoder(encoder)
    encoder.encode("x")
    encoder.encode("x")
    assert Encoder.calls == 2 and len(cache) == 0


def test_compile_unavailable_runs_eager(tiny, engine, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("no compiler on this host")

    monkeypatch.setattr("ltx2.engine.speedups.torch.compile", broken)
    compiled_engine = fresh_engine(tiny, compile_transformer=True)
    assert compiled_engine.warm_compiled([(64, 64, 9)]) == 0.0
    wrapper = compiled_engine.compiled
    assert wrapper is not None and wrapper.compiled is None and "no compiler" in wrapper.failed
    frames, audio = run(compiled_engine, "A man says: hello.", seed=11)
    assert wrapper.calls["eager"] > 0 and wrapper.calls["compiled"] == 0
    eager_frames, eager_audio = run(engine, "A man says: hello.", seed=11)
    assert torch.equal(frames, eager_frames) and torch.equal(audio, eager_audio)


def test_warmed_shape_runs_compiled_and_a_new_shape_falls_back_to_eager(tiny, engine):
    # dynamo's "eager" backend: the real torch.compile capture and guards, without a C++ toolchain for inductor.
    compiled_engine = fresh_engine(tiny, compile_transformer=True, compile_backend="eager")
    assert engine.compiled is None  # off by default
    compiled_engine.warm_compiled(parse_shapes(["64x64x9"]))
    wrapper = compiled_engine.compiled
    assert wrapper.failed is None and wrapper.warm and wrapper.calls["compiled"] > 0

    before = dict(wrapper.calls)
    frames, audio = run(compiled_engine, "A woman says: compiled.", seed=3)
    assert wrapper.calls["compiled"] > before["compiled"] and wrapper.calls["eager"] == before["eager"]
    eager_frames, eager_audio = run(engine, "A woman says: compiled.", seed=3)
    assert torch.equal(frames, eager_frames) and torch.equal(audio, eager_audio)

    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="INFO")
    try:
        before = dict(wrapper.calls)
        new_frames, _ = run(compiled_engine, "A woman says: compiled.", seed=3, width=128)
    finally:
        logger.remove(sink)
    assert new_frames.shape == (9, 64, 128, 3)
    assert wrapper.calls["eager"] > before["eager"] and wrapper.calls["compiled"] == before["compiled"]
    assert any("not compiled at start: running eager" in line for line in lines)


def test_compile_shapes_are_checked():
    assert parse_shapes(["768x512x121"]) == [(768, 512, 121)]
    with pytest.raises(ValueError, match="WIDTHxHEIGHTxFRAMES"):
        parse_shapes(["768x512"])


def test_warm_up_loads_gemma_and_the_transformer_at_once_with_the_same_weights(tiny):
    from ltx2.engine.ledger import ResidentLedger

    def ledger():
        return ResidentLedger(
            dtype=torch.bfloat16,
            device=torch.device("cpu"),
            checkpoint_path=str(tiny.checkpoint),
            gemma_root_path=str(tiny.gemma_root),
            spatial_upsampler_path=str(tiny.spatial_upsampler),
        )

    together, one_by_one = ledger(), ledger()
    together.warm_up()
    assert together.builds == 9  # each model once, none twice
    for name, method in (("text_encoder", "text_encoder"), ("transformer", "transformer")):
        a = getattr(together, method)().state_dict()
        b = getattr(one_by_one, method)().state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_smaller_decode_tiles_hand_frames_to_the_encoder_sooner_with_the_same_clip(tiny, engine):
    from ltx2.engine.factory import load_engine
    from ltx2.settings import PROJECT_ROOT, Settings

    request = GenerationRequest(prompt="A man says: tiles.", seed=9, width=64, height=64, num_frames=121)
    release = [chunk for chunk in engine.generate(request).video]
    # Through the settings a user sets (AVATAR_DECODE_TILE_FRAMES / _OVERLAP_FRAMES), not the engine's insides.
    small_engine = load_engine(
        Settings(
            _env_file=None,
            models_dir=PROJECT_ROOT / "models",
            use_verified=False,
            decode_tile_frames=32,
            decode_tile_overlap_frames=8,
            device="cpu",
        )
    )
    small = [chunk for chunk in small_engine.generate(request).video]
    assert sum(len(c) for c in release) == sum(len(c) for c in small) == 121
    # The encoder gets its first frames after a smaller share of the decode, and from more, smaller pieces.
    assert len(small) > len(release) and len(small[0]) < len(release[0])
    # The same clip: the tiles are blended over their overlap, so no frame changes beyond a seam's rounding.
    a, b = torch.cat(release).float(), torch.cat(small).float()
    mse = torch.mean((a - b) ** 2).item()
    psnr = 10 * torch.log10(torch.tensor(255.0**2 / max(mse, 1e-9))).item()
    assert psnr > 30, f"the smaller tiles changed the clip: {psnr:.1f} dB against the release tiling"


def test_decode_tiles_are_checked():
    from pydantic import ValidationError

    from ltx2.settings import Settings

    with pytest.raises(ValidationError, match="must be smaller than"):
        Settings(_env_file=None, decode_tile_frames=32, decode_tile_overlap_frames=32)
    with pytest.raises(ValidationError, match="multiple of 8"):
        Settings(_env_file=None, decode_tile_frames=30)


@pytest.mark.parametrize("tiles", [(64, 24), (32, 8), (16, 8)])
def test_each_tile_is_handed_over_as_soon_as_it_is_decoded_with_the_librarys_frames(engine, tiles, monkeypatch):
    from ltx_core.model.video_vae import TemporalTilingConfig, TilingConfig

    from ltx2.engine.speedups import early_tiled_decode

    decoder = engine.ledger.video_decoder()
    tiling = TilingConfig(temporal_config=TemporalTilingConfig(*tiles))
    latent = torch.randn(1, 128, 16, 2, 2, generator=torch.Generator().manual_seed(3))  # 121 frames of 64x64
    decoded = [0]
    decode_group = decoder._accumulate_temporal_group_into_buffer

    def count(**kwargs):  # one call per temporal tile
        decoded[0] += 1
        return decode_group(**kwargs)

    monkeypatch.setattr(decoder, "_accumulate_temporal_group_into_buffer", count)
    with torch.inference_mode():
        library = list(type(decoder).tiled_decode(decoder, latent, tiling))
        decoded[0] = 0
        tiles_done_at_handover, ours = [], []
        for chunk in early_tiled_decode(decoder, latent, tiling):
            tiles_done_at_handover.append(decoded[0])
            ours.append(chunk)
    # Bit for bit the library's frames, in the same pieces.
    assert [c.shape[2] for c in ours] == [c.shape[2] for c in library]
    assert torch.equal(torch.cat(ours, dim=2), torch.cat(library, dim=2))
    # The library hands tile i over after decoding tile i+1; here it goes as soon as tile i is decoded.
    if tiles != (16, 8):  # 16/8: three tiles share frames, the library's own decode runs
        assert tiles_done_at_handover == list(range(1, len(ours) + 1))
    # And the engine's resident decoder is the early one.
    assert engine.ledger.video_decoder().tiled_decode.__func__ is early_tiled_decode
