"""The baseline bench/api_load.py measures the API against: a bare FastAPI app reading one row with sqlite3.

Same framework, server and access log as `avatar api` (uvicorn, log level info), a WAL database holding the
jobs the load polls, and a plain sync route (FastAPI's threadpool) per read. No store, services or middleware:
what is left of a status read once the project's own layers are taken away.

    python bench/bare_api.py PORT DATABASE   # creates DATABASE with the bench's rows if it does not exist
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import uuid
from pathlib import Path

from fastapi import FastAPI, HTTPException

ROWS = 50


def seed(path: Path) -> list[str]:
    ids = [uuid.uuid4().hex[:20] for _ in range(ROWS)]
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, status TEXT, progress REAL, phase TEXT, "
            "created_at TEXT)"
        )
        db.executemany(
            "INSERT INTO jobs VALUES (?, 'processing', 12.5, 'stage 1', '2026-01-01T00:00:00+00:00')",
            [(i,) for i in ids],
        )
    return ids


def create_app(path: Path) -> FastAPI:
    app = FastAPI()
    local = threading.local()

    def db() -> sqlite3.Connection:
        if not hasattr(local, "db"):
            local.db = sqlite3.connect(path)
            local.db.row_factory = sqlite3.Row
        return local.db

    @app.get("/ids")
    def ids() -> list[str]:
        return [row[0] for row in db().execute("SELECT id FROM jobs")]

    @app.get("/status/{job_id}")
    def status(job_id: str) -> dict:
        row = db().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise HTTPException(404)
        return dict(row)

    return app


def main(argv: list[str]) -> None:
    import uvicorn

    port, path = int(argv[0]), Path(argv[1])
    if not path.exists():
        seed(path)
    uvicorn.run(create_app(path), host="127.0.0.1", port=port, log_level="info")


if __name__ == "__main__":
    main(sys.argv[1:])
