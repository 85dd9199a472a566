"""`avatar` command line: generate, models (tiny/download/verify), doctor."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Avatar Generator: talking-avatar videos on LTX-2.")
models_app = typer.Typer(no_args_is_help=True, help="Model weights: tiny checkpoint, real downloads, verification.")
app.add_typer(models_app, name="models")

PROJECT_FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
TINY_BANNER = (
    "TINY CHECKPOINT: no real LTX-2 weights are configured (AVATAR_CHECKPOINT is unset), so the tiny, randomly "
    "initialised test checkpoint is used. The real pipeline runs, but the picture and sound are noise. "
    "Run `avatar models download` on a GPU host for real videos."
)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def load_engine(settings):
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
    )


@app.command()
def generate(
    text: str | None = typer.Option(None, "--text", help="What the avatar says."),
    script_file: Path | None = typer.Option(None, "--script-file", help="A long script (UTF-8 text; blank lines "
                                            "are breaks): split into clips, stitched into one video."),
    captions: str = typer.Option("", "--captions", help="Caption files beside the video: srt, vtt or srt,vtt."),
    burn_captions: bool = typer.Option(False, "--burn-captions", help="Draw the captions into the picture."),
    crossfade: float = typer.Option(0.0, "--crossfade", help="Seconds of crossfade between segments (0–1)."),
    segment_seconds: float | None = typer.Option(None, "--segment-seconds", help="Longest segment, 2–19 s."),
    draft: bool = typer.Option(False, "--draft", help="Quick look: distilled at half size."),
    out: Path = typer.Option(..., "--out", help="Where to write the MP4 (a .jpg thumbnail and .json go beside it)."),
    image: Path | None = typer.Option(None, "--image", help="Reference photo of the face (frame 0)."),
    image_strength: float = typer.Option(1.0, "--image-strength", help="LTX-2 conditioning strength 0–1."),
    anchors: int = typer.Option(0, "--anchors", help="Extra keyframes of the reference later in the clip (0–8)."),
    audio: Path | None = typer.Option(None, "--audio", help="Your own voice recording: the video follows it."),
    lora: Path | None = typer.Option(None, "--lora", help="Face-profile LoRA (ltx-core format)."),
    lora_strength: float = typer.Option(1.0, "--lora-strength"),
    description: str | None = typer.Option(None, "--description", help="Who speaks, when there is no photo."),
    seed: int = typer.Option(42, "--seed"),
    width: int = typer.Option(768, "--width"),
    height: int = typer.Option(512, "--height"),
    seconds: float | None = typer.Option(None, "--seconds", help="Clip length; default: from the text's length."),
    fps: float | None = typer.Option(None, "--fps"),
    speed: float = typer.Option(1.0, "--speed", help="Playback speed 0.5–2.0, applied in the one encode."),
    mode: str = typer.Option("distilled", "--mode", help="distilled (fast) or two-stage (quality)."),
    steps: int | None = typer.Option(None, "--steps", help="Stage-1 steps for two-stage and audio modes."),
) -> None:
    """Make a talking-avatar video: one clip, or a long script stitched from several."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ltx2.engine.errors import EngineError, InvalidInputError
    from ltx2.render import ClipSpec, plan_request, render
    from ltx2.settings import get_settings
    from ltx2.weights import WeightsError

    settings = get_settings()
    if (text is None) == (script_file is None):
        _fail("give the words with exactly one of --text or --script-file")
    if script_file is not None:
        try:
            text = script_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read the script {script_file}: {exc}")
    formats = [f.strip().lower() for f in captions.split(",") if f.strip()]
    if any(f not in ("srt", "vtt") for f in formats):
        _fail(f"--captions takes srt, vtt or srt,vtt, not {captions!r}")
    if not 0.0 <= crossfade <= 1.0 or (segment_seconds is not None and not 2.0 <= segment_seconds <= 19.0):
        _fail("--crossfade must lie in 0–1 s and --segment-seconds in 2–19 s")
    for label, path in (("image", image), ("audio", audio), ("LoRA", lora)):
        if path is not None and not path.is_file():
            _fail(f"{label} file not found: {path}")
    if mode not in ("distilled", "two-stage"):
        _fail(f"unknown mode {mode!r}: use distilled or two-stage")
    spec = ClipSpec(
        text=text,
        image=image,
        image_strength=image_strength,
        keyframe_anchors=anchors,
        audio=audio,
        lora=lora,
        lora_strength=lora_strength,
        avatar_description=description,
        seed=seed,
        width=width,
        height=height,
        seconds=seconds,
        fps=fps,
        speed=speed,
        mode=mode,
        steps=steps,
    )
    script = bool(script_file or formats or burn_captions or crossfade or draft)
    if not script and seconds is None:
        from ltx2.render import audio_seconds
        from ltx2.script.policy import longer_than_a_clip

        try:
            recording = audio_seconds(audio) if audio is not None else None
        except InvalidInputError as exc:
            _fail(str(exc))
        script = longer_than_a_clip(text, settings, segment_seconds=segment_seconds, audio_seconds=recording)
    if script and seconds is not None:
        _fail("--seconds sets one clip's length; a script is timed by its text or recording")
    if script:
        _generate_script(spec, text, out, settings, formats, burn_captions, crossfade, segment_seconds, draft)
        return
    try:
        from ltx2.engine.pipelines import validate

        validate(plan_request(spec, settings))  # bad input fails before any model is touched
        if settings.uses_tiny:
            typer.secho(TINY_BANNER, fg=typer.colors.YELLOW, err=True)
        engine = load_engine(settings)
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), transient=False) as bar:
            task = bar.add_task("denoising", total=None)

            def on_progress(p) -> None:
                bar.update(task, description=p.phase, completed=p.overall_step, total=p.overall_total)

            result = render(engine, spec, out, settings, on_progress=on_progress)
    except (InvalidInputError, WeightsError) as exc:
        _fail(str(exc))
    except EngineError as exc:
        _fail(str(exc), code=1)
    label = " [TINY CHECKPOINT: noise, not a real video]" if result.metadata["tiny_checkpoint"] else ""
    typer.echo(f"wrote {result.video} ({result.metadata['num_frames']} frames, "
               f"{result.metadata['width']}x{result.metadata['height']}, speed {speed:g}){label}")
    typer.echo(f"thumbnail {result.thumbnail}  metadata {result.metadata_path}")


def _generate_script(spec, text, out: Path, settings, formats, burn, crossfade, segment_seconds, draft) -> None:
    import shutil
    import tempfile

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ltx2.engine.errors import EngineError, InvalidInputError
    from ltx2.script.render import ScriptSpec, plan_script, render_script
    from ltx2.weights import WeightsError

    script = ScriptSpec(clip=spec, text=text, segment_seconds=segment_seconds or settings.segment_seconds,
                        crossfade=crossfade, captions=tuple(dict.fromkeys(formats)), burn_captions=burn, draft=draft)
    settings.temp_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="script-", dir=settings.temp_dir))
    try:
        segments = plan_script(script, settings)  # bad input fails before any model is touched
        typer.echo(f"{len(segments)} segment(s):")
        for seg in segments:
            typer.echo(f"  {seg.index + 1}. {seg.text}")
        if settings.uses_tiny:
            typer.secho(TINY_BANNER, fg=typer.colors.YELLOW, err=True)
        engine = load_engine(settings)
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), transient=False) as bar:
            task = bar.add_task("denoising", total=None)

            def on_progress(p, _data=None) -> None:
                bar.update(task, description=p.phase, completed=p.overall_step, total=p.overall_total)

            result = render_script(engine, script, segments, folder, out, settings, on_progress=on_progress)
    except (InvalidInputError, WeightsError) as exc:
        _fail(str(exc))
    except EngineError as exc:
        _fail(str(exc), code=1)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    meta = result.metadata
    label = " [TINY CHECKPOINT: noise, not a real video]" if meta["tiny_checkpoint"] else ""
    typer.echo(f"wrote {result.video} ({meta['segments']} segments, {meta['num_frames']} frames, "
               f"{meta['width']}x{meta['height']}, speed {spec.speed:g}){label}")
    for fmt, path in result.captions.items():
        typer.echo(f"captions ({fmt}) {path}")
    typer.echo(f"thumbnail {result.thumbnail}  metadata {result.metadata_path}")


@models_app.command("tiny")
def models_tiny(
    directory: Path | None = typer.Option(None, "--dir", help="Default: <models_dir>/tiny"),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build again even if present."),
) -> None:
    """Build the tiny deterministic test checkpoint (done automatically on first use)."""
    from ltx2.engine.tiny import build_tiny, ensure_tiny, tree_digest
    from ltx2.settings import get_settings

    root = directory or get_settings().tiny_dir
    paths = build_tiny(root) if rebuild else ensure_tiny(root)
    typer.echo(f"tiny checkpoint set in {paths.root} (digest {tree_digest(paths.root)[:16]})")


@models_app.command("download")
def models_download(
    role: list[str] = typer.Option(None, "--role", help="Only these roles (default: all)."),
) -> None:
    """Download the real LTX-2 19B distilled FP8 weights, upsampler, distilled LoRA and Gemma 3 12B."""
    from ltx2.settings import get_settings
    from ltx2.weights import WeightsDownloadError, download

    try:
        paths = download(get_settings(), roles=role or None)
    except (WeightsDownloadError, ValueError) as exc:
        _fail(str(exc))
    for path in paths:
        typer.echo(f"ok {path}")
    typer.echo("Point the server at them: see `avatar doctor` and README (AVATAR_CHECKPOINT…).")


@models_app.command("verify")
def models_verify() -> None:
    """Check that the configured weights are present, complete and readable."""
    from ltx2.settings import get_settings
    from ltx2.weights import verify

    results = verify(get_settings())
    for r in results:
        typer.echo(f"{'ok  ' if r.ok else 'FAIL'} {r.role:<18} {r.path}  {r.reason}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def doctor() -> None:
    """Check GPU, disk, weights and codecs."""
    from ltx2.doctor import exit_status, format_checks, run_doctor
    from ltx2.settings import get_settings

    checks = run_doctor(get_settings())
    typer.echo(format_checks(checks))
    raise typer.Exit(exit_status(checks))


def _settings_with(**overrides):
    from ltx2.settings import Settings, get_settings

    base = get_settings()
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**{**base.model_dump(), **values}) if values else base


@app.command()
def api(
    host: str | None = typer.Option(None, "--host", help="Default 127.0.0.1 (AVATAR_HOST)."),
    port: int | None = typer.Option(None, "--port", help="Default 8000 (AVATAR_PORT)."),
) -> None:
    """Run the HTTP API alone (workers run elsewhere: `avatar worker`)."""
    import uvicorn

    from ltx2.api.app import create_app
    from ltx2.serve import check_bind

    settings = _settings_with(host=host, port=port)
    check_bind(settings)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@app.command()
def worker() -> None:
    """Run one worker: builds the engine once, then claims jobs from the store."""
    from ltx2.worker.main import main as worker_main

    raise typer.Exit(worker_main())


@app.command()
def serve(
    host: str | None = typer.Option(None, "--host"),
    port: int | None = typer.Option(None, "--port"),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (one per GPU)."),
    no_ui: bool = typer.Option(False, "--no-ui", help="Do not start the Streamlit studio."),
) -> None:
    """The API, supervised worker process(es) and, when present, the studio — what launch_ltx2.sh runs."""
    import signal
    import sys

    import uvicorn

    from ltx2.api.app import create_app
    from ltx2.serve import Supervisor, check_bind

    settings = _settings_with(host=host, port=port, workers=workers)
    check_bind(settings)
    if settings.uses_tiny:
        typer.secho(TINY_BANNER, fg=typer.colors.YELLOW, err=True)
    # Workers read the same settings from the environment.
    env = {"AVATAR_HOST": settings.host, "AVATAR_PORT": str(settings.port)}
    studio = None
    if not no_ui and (PROJECT_FRONTEND / "app.py").exists():
        from frontend.launcher import Studio

        # Same listen address as the API (loopback unless told otherwise), talking to this API.
        studio = Studio.for_api(api_host=settings.host, api_port=settings.port, ui_port=settings.ui_port,
                                api_keys=settings.api_keys, max_upload_mb=settings.max_upload_mb)
    elif not no_ui:
        typer.echo("(frontend/app.py is missing; serving the API only)")
    supervisor = Supervisor(settings, settings.workers, env=env)
    # uvicorn restores the previous SIGTERM handler after its graceful shutdown and re-raises the signal; with
    # the default handler the process would die before the workers are stopped, leaving them orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    supervisor.start()
    if studio is not None:
        studio.start()
        typer.echo(f"Studio:   {studio.url}")
        typer.echo(studio.tunnel_hint(settings.port))
    try:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    finally:
        if studio is not None:
            studio.stop()
        supervisor.shutdown()



@app.command()
def pull(
    server: str = typer.Option(..., "--server", help="e.g. http://127.0.0.1:8000 (through your SSH tunnel)"),
    dest: Path = typer.Option(..., "--dest", help="Folder to download into."),
    key: str | None = typer.Option(None, "--key", envvar="AVATAR_API_KEY", help="API key, if the server needs one."),
) -> None:
    """Download every finished video (+ thumbnail and metadata) not already in DEST; resumable, sha256-checked."""
    from ltx2.pull import PullError, pull_all

    try:
        report = pull_all(server, dest, key=key, echo=typer.echo)
    except PullError as exc:
        _fail(str(exc), code=1)
    typer.echo(f"{report.downloaded} downloaded, {report.present} already present, {report.failed} failed")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def train(
    name: str = typer.Option(..., "--name", help="Profile name."),
    photos: list[Path] = typer.Argument(..., help="3–10 photos of one person, one face each."),
    steps: int = typer.Option(300, "--steps", min=10, max=2000),
    rank: int = typer.Option(16, "--rank", min=1, max=128),
    learning_rate: float = typer.Option(1e-4, "--lr"),
    out: Path | None = typer.Option(None, "--out", help="LoRA file (default: <models>/profiles/NAME.safetensors)."),
) -> None:
    """Train a face-profile LoRA in-process (the server's /v1/trainings does the same as a queued job)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ltx2.engine.errors import EngineError
    from ltx2.jobs.inputs import trigger_for
    from ltx2.settings import get_settings
    from ltx2.training.photos import PhotosRejected, validate_photos

    settings = get_settings()
    missing = [p for p in photos if not p.is_file()]
    if missing:
        _fail(f"photo not found: {missing[0]}")
    try:
        checked = validate_photos([(p.name, p) for p in photos])
    except PhotosRejected as exc:
        _fail(str(exc))
    from ltx2.training.lora import train_face_lora

    out = out or settings.models_dir / "profiles" / f"{name}.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    if settings.uses_tiny:
        typer.secho(TINY_BANNER, fg=typer.colors.YELLOW, err=True)
    engine = load_engine(settings)
    engine.warm_up()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn()) as bar:
        task = bar.add_task("encode", total=steps, loss="-")

        def on_progress(p) -> None:
            loss = f"{p.smoothed_loss:.4f}" if p.smoothed_loss is not None else "-"
            bar.update(task, description=p.phase, completed=p.step, total=p.total, loss=loss)

        try:
            result = train_face_lora(engine, checked, trigger=trigger_for(name), out_path=out, steps=steps,
                                     rank=rank, alpha=float(rank), learning_rate=learning_rate,
                                     on_progress=on_progress)
        except EngineError as exc:
            _fail(str(exc), code=1)
    typer.echo(f"wrote {result.lora_path}: loss {result.first_loss_mean:.4f} → {result.final_loss:.4f}"
               + (f", validation {result.validation_loss:.4f}" if result.validation_loss is not None else "")
               + f" in {result.seconds:.1f}s; trigger word {trigger_for(name)!r}")
    typer.echo(f"use it: avatar generate --lora {result.lora_path} --text '…' --image "
               f"{photos[result.best_photo]}")


if __name__ == "__main__":  # pragma: no cover - `python -m ltx2.cli`
    app()
