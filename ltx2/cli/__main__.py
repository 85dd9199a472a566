"""`python -m ltx2.cli`."""

from ltx2.cli import app

app()
