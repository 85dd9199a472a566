"""Building the resident engine from the settings: what the worker, the CLI and benchmarks call."""

from __future__ import annotations

from ltx2.settings import Settings


def load_engine(settings: Settings):
    """Resolve the weights (building the tiny set on first use) and build the resident engine."""
    from ltx2.engine.pipelines import Engine, EngineWeights
    from ltx2.weights import resolved_weights

    weights = resolved_weights(settings)
    return Engine(
        EngineWeights(
            checkpoint=weights.checkpoint,
            gemma_root=weights.gemma_root,
            spatial_upsampler=weights.spatial_upsampler,
            distilled_lora=weights.distilled_lora,
            tiny=weights.tiny,
        ),
        device=settings.device,
        quantization=settings.quantization,
        lora_strength=settings.distilled_lora_strength,
        cpu_dtype=settings.cpu_dtype,
        cpu_threads=settings.cpu_threads,
        prompt_cache_size=settings.prompt_cache_size,
        compile_transformer=settings.compile,
        compile_backend=settings.compile_backend,
        decode_tile=(settings.decode_tile_frames, settings.decode_tile_overlap_frames),
    )
