"""`avatar generate` and `avatar train`: one clip, a script or a face profile, in this process (no server)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer

from ltx2.cli.common import TINY_BANNER, app, fail
from ltx2.domain import limits as L
from ltx2.engine.factory import load_engine


@app.command()
def generate(
    text: str | None = typer.Option(None, "--text", help="What the avatar says."),
    script_file: Path | None = typer.Option(
        None,
        "--script-file",
        help="A long script (UTF-8 text; blank lines are breaks): split into clips, stitched into one video.",
    ),
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
    profile: str | None = typer.Option(
        None,
        "--profile",
        help="A trained face profile (avatar train, or the server's): its LoRA, its trigger word in the prompt "
        "and, without --image, its best photo.",
    ),
    lora: Path | None = typer.Option(None, "--lora", help="A face LoRA file (ltx-core format); see --trigger."),
    trigger: str | None = typer.Option(
        None, "--trigger", help="The trigger word the --lora was trained with (added to the prompt)."
    ),
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

    from ltx2.domain.errors import EngineError, InvalidInputError
    from ltx2.render import ClipSpec, plan_request, render
    from ltx2.settings import get_settings
    from ltx2.weights import WeightsError

    settings = get_settings()
    if (text is None) == (script_file is None):
        fail("give the words with exactly one of --text or --script-file")
    if script_file is not None:
        try:
            text = script_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the script {script_file}: {exc}")
    formats = [f.strip().lower() for f in captions.split(",") if f.strip()]
    if any(f not in ("srt", "vtt") for f in formats):
        fail(f"--captions takes srt, vtt or srt,vtt, not {captions!r}")
    if not L.MIN_CROSSFADE_S <= crossfade <= L.MAX_CROSSFADE_S or (
        segment_seconds is not None and not L.MIN_SEGMENT_SECONDS <= segment_seconds <= L.MAX_SEGMENT_SECONDS
    ):
        fail(
            f"--crossfade must lie in {L.MIN_CROSSFADE_S:g}–{L.MAX_CROSSFADE_S:g} s and --segment-seconds in "
            f"{L.MIN_SEGMENT_SECONDS:g}–{L.MAX_SEGMENT_SECONDS:g} s"
        )
    for label, path in (("image", image), ("audio", audio), ("LoRA", lora)):
        if path is not None and not path.is_file():
            fail(f"{label} file not found: {path}")
    if profile is not None and (lora is not None or trigger is not None):
        fail("--profile brings its own LoRA and trigger word: give either --profile or --lora (with --trigger)")
    if trigger is not None and lora is None:
        fail("--trigger names the word a --lora was trained with: give the --lora too")
    if profile is not None:
        lora, trigger, best_photo = _profile_files(settings, profile)
        image = image or best_photo  # the profile's best photo holds the face unless --image brings another
    if mode not in ("distilled", "two-stage"):
        fail(f"unknown mode {mode!r}: use distilled or two-stage")
    spec = ClipSpec(
        text=text,
        image=image,
        image_strength=image_strength,
        keyframe_anchors=anchors,
        audio=audio,
        lora=lora,
        lora_strength=lora_strength,
        trigger_token=trigger,
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
        from ltx2.domain.policy import longer_than_a_clip
        from ltx2.render import audio_seconds

        try:
            recording = audio_seconds(audio) if audio is not None else None
        except InvalidInputError as exc:
            fail(str(exc))
        script = longer_than_a_clip(text, settings, segment_seconds=segment_seconds, audio_seconds=recording)
    if script and seconds is not None:
        fail("--seconds sets one clip's length; a script is timed by its text or recording")
    if script:
        _generate_script(spec, text, out, settings, formats, burn_captions, crossfade, segment_seconds, draft)
        return
    try:
        from ltx2.engine.pipelines import validate

        validate(plan_request(spec, settings))  # bad input fails before any model is touched
        if settings.uses_tiny:
            typer.secho(TINY_BANNER, fg=typer.colors.YELLOW, err=True)
        engine = load_engine(settings)
        with _denoising_bar() as on_progress:
            result = render(engine, spec, out, settings, on_progress=on_progress)
    except (InvalidInputError, WeightsError) as exc:
        fail(str(exc))
    except EngineError as exc:
        fail(str(exc), code=1)
    label = " [TINY CHECKPOINT: noise, not a real video]" if result.metadata["tiny_checkpoint"] else ""
    typer.echo(
        f"wrote {result.video} ({result.metadata['num_frames']} frames, "
        f"{result.metadata['width']}x{result.metadata['height']}, speed {speed:g}){label}"
    )
    typer.echo(f"thumbnail {result.thumbnail}  metadata {result.metadata_path}")


def _profile_files(settings, name: str) -> tuple[Path, str, Path]:
    """(LoRA, trigger word, best photo) of a profile in the server's store; fails with a sentence if unusable."""
    found = _open_store(settings).get_profile(name)
    if found is None:
        fail(f"no face profile {name!r}: train one with `avatar train --name {name!r} PHOTOS…`")
    folder = settings.profiles_dir / found.folder
    lora, photo = folder / found.lora, folder / found.best_photo
    if not lora.is_file() or not photo.is_file():
        fail(f"the files of face profile {name!r} are missing from {folder}")
    return lora, found.trigger, photo


@contextmanager
def _denoising_bar():
    """A terminal progress bar over the whole job (denoising, sound, frames decoded and encoded, the stitch), with
    the same phase weights and ETA as the server's jobs; yields the render path's `on_progress` callback."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ltx2.domain.progress import DEFAULT_FINISH_SHARE, FINISH_PHASE, JobMeter

    meter = JobMeter()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"))
    with Progress(*columns, TimeElapsedColumn(), TextColumn("{task.fields[eta]}"), transient=False) as bar:
        task = bar.add_task("preparing", total=100.0, eta="")

        def on_progress(p, _data=None) -> None:
            if p.plan:
                segments = p.plan["segments"]
                finish = 0.0 if p.plan["kind"] == "clip" else (1.0 if segments == 0 else DEFAULT_FINISH_SHARE)
                meter.plan(units=segments, finish_share=finish)
            snap = meter.update(p.phase, p.step, p.total, unit=p.unit, frames=p.frames, where=p.where)
            counts = (
                f"{snap.step}/{snap.total} {'frames' if snap.phase in ('decode', 'encode', FINISH_PHASE) else 'steps'}"
            )
            eta = f"about {snap.eta_s:.0f} s left" if snap.eta_s is not None else ""
            bar.update(task, description=f"{snap.label} {counts}", completed=snap.percent, eta=eta)

        yield on_progress


def _generate_script(spec, text, out: Path, settings, formats, burn, crossfade, segment_seconds, draft) -> None:
    import shutil
    import tempfile

    from ltx2.domain.errors import EngineError, InvalidInputError
    from ltx2.render.script import ScriptSpec, plan_script, render_script
    from ltx2.weights import WeightsError

    script = ScriptSpec(
        clip=spec,
        text=text,
        segment_seconds=segment_seconds or settings.segment_seconds,
        crossfade=crossfade,
        captions=tuple(dict.fromkeys(formats)),
        burn_captions=burn,
        draft=draft,
    )
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
        with _denoising_bar() as on_progress:
            result = render_script(engine, script, segments, folder, out, settings, on_progress=on_progress)
    except (InvalidInputError, WeightsError) as exc:
        fail(str(exc))
    except EngineError as exc:
        fail(str(exc), code=1)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    meta = result.metadata
    label = " [TINY CHECKPOINT: noise, not a real video]" if meta["tiny_checkpoint"] else ""
    typer.echo(
        f"wrote {result.video} ({meta['segments']} segments, {meta['num_frames']} frames, "
        f"{meta['width']}x{meta['height']}, speed {spec.speed:g}){label}"
    )
    for fmt, path in result.captions.items():
        typer.echo(f"captions ({fmt}) {path}")
    typer.echo(f"thumbnail {result.thumbnail}  metadata {result.metadata_path}")


def _open_store(settings):
    """The server's own job store (same database, same profiles): what `avatar train` adds, `avatar serve` sees."""
    from ltx2.state import secure_state
    from ltx2.store.jobs import JobStore

    secure_state(settings)
    store = JobStore(settings.db_url, base_url=settings.base_url)
    store.migrate()
    return store


@app.command()
def train(
    name: str = typer.Option(..., "--name", help="Profile name (letters, digits, space, _ . -)."),
    photos: list[Path] = typer.Argument(..., help="3–10 photos of one person, one face each."),
    steps: int = typer.Option(300, "--steps", min=10, max=2000),
    rank: int = typer.Option(16, "--rank", min=1, max=128),
    learning_rate: float = typer.Option(1e-4, "--lr"),
    out: Path | None = typer.Option(None, "--out", help="Also copy the LoRA file here (the profile keeps its own)."),
) -> None:
    """Train a face profile in-process, into the server's profiles (the same as POST /v1/trainings): afterwards
    `avatar generate --profile NAME` and the API's `"profile": NAME` use it, trigger word included."""
    import re
    import shutil

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ltx2.domain.errors import EngineError, InvalidInputError
    from ltx2.domain.inputs import PROFILE_NAME
    from ltx2.settings import get_settings
    from ltx2.store.jobs import new_id
    from ltx2.training.photos import PhotosRejected, validate_photos

    settings = get_settings()
    if not re.fullmatch(PROFILE_NAME, name):
        fail(f"--name {name!r}: use 1–64 letters, digits, spaces, _ . - (starting and ending with a letter or digit)")
    missing = [p for p in photos if not p.is_file()]
    if missing:
        fail(f"photo not found: {missing[0]}")
    try:
        checked = validate_photos([(p.name, p) for p in photos])
    except PhotosRejected as exc:
        fail(str(exc))
    store = _open_store(settings)
    if store.get_profile(name) is not None:
        fail(
            f"a face profile named {name!r} already exists: delete it first (DELETE /v1/profiles/{name}) or pick another name"
        )
    from ltx2.training.profiles import train_profile

    if settings.uses_tiny:
        typer.secho(TINY_BANNER, fg=typer.colors.YELLOW, err=True)
    engine = load_engine(settings)
    engine.warm_up()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("encode", total=steps, loss="-")

        def on_progress(p) -> None:
            loss = f"{p.smoothed_loss:.4f}" if p.smoothed_loss is not None else "-"
            bar.update(task, description=p.phase, completed=p.step, total=p.total, loss=loss)

        try:
            profile, result = train_profile(
                engine,
                settings,
                store,
                checked,
                name=name,
                folder_id=new_id(),
                on_progress=on_progress,
                steps=steps,
                rank=rank,
                alpha=float(rank),
                learning_rate=learning_rate,
            )
        except InvalidInputError as exc:
            fail(str(exc))
        except EngineError as exc:
            fail(str(exc), code=1)
    lora = settings.profiles_dir / profile.folder / profile.lora
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lora, out)
    typer.echo(
        f"profile {name!r} saved ({lora}): loss {result.first_loss_mean:.4f} → {result.final_loss:.4f}"
        + (f", validation {result.validation_loss:.4f}" if result.validation_loss is not None else "")
        + f" in {result.seconds:.1f}s; trigger word {profile.trigger!r}"
    )
    typer.echo(f'use it: avatar generate --profile {name!r} --text \'…\'   (API: "profile": "{name}")')
