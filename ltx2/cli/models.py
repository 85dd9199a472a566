"""`avatar models tiny|download|verify`: the weights."""

from __future__ import annotations

from pathlib import Path

import typer

from ltx2.cli.common import fail, models_app


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
        fail(str(exc))
    for path in paths:
        typer.echo(f"ok {path}")
    typer.echo(
        "Recorded in models/verified.json: launch_ltx2.sh and avatar serve use them "
        "(AVATAR_USE_VERIFIED=false opts out)."
    )


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
