"""The `avatar` app and what its command groups share. Nothing outside ltx2/cli imports this package."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Avatar Generator: talking-avatar videos on LTX-2.")
models_app = typer.Typer(no_args_is_help=True, help="Model weights: tiny checkpoint, real downloads, verification.")
app.add_typer(models_app, name="models")

PROJECT_FRONTEND = Path(__file__).resolve().parent.parent.parent / "frontend"
TINY_BANNER = (
    "TINY CHECKPOINT: no real LTX-2 weights are configured (AVATAR_CHECKPOINT) or recorded by a verified download "
    "(models/verified.json), so the tiny test checkpoint is used (random transformer, trained video VAE). The real "
    "pipeline runs, but motion and sound are noise (a reference photo shows at frame 0). Run `avatar models "
    "download` on a GPU host for real videos."
)


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)
