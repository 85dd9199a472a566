"""`avatar serve|api|worker`: the server processes."""

from __future__ import annotations

import typer

from ltx2.cli.common import PROJECT_FRONTEND, TINY_BANNER, app


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
        studio = Studio.for_api(
            api_host=settings.host,
            api_port=settings.port,
            ui_port=settings.ui_port,
            api_keys=settings.api_keys,
            max_upload_mb=settings.max_upload_mb,
        )
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
