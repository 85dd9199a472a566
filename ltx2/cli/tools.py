"""`avatar doctor` and `avatar pull`: checking a host, fetching finished videos."""

from __future__ import annotations

from pathlib import Path

import typer

from ltx2.cli.common import app, fail


@app.command()
def doctor() -> None:
    """Check GPU, disk, weights and codecs."""
    from ltx2.doctor import exit_status, format_checks, run_doctor
    from ltx2.settings import get_settings

    checks = run_doctor(get_settings())
    typer.echo(format_checks(checks))
    raise typer.Exit(exit_status(checks))


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
        fail(str(exc), code=1)
    typer.echo(f"{report.downloaded} downloaded, {report.present} already present, {report.failed} failed")
    if report.failed:
        raise typer.Exit(1)
