"""`avatar` command line (typer), one module per command group: clips (generate, train), models, servers
(serve, api, worker), tools (doctor, pull)."""

from ltx2.cli import clips, models, servers, tools  # noqa: F401 - importing registers the commands
from ltx2.cli.common import app

__all__ = ["app"]
