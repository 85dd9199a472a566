"""A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, a temp folder, loopback only.

`PgCluster().start()` runs `initdb` into a fresh temporary folder and `pg_ctl start` with
`listen_addresses=127.0.0.1` on a free port and its unix socket inside that folder; `create_database()` hands out
a `postgresql+psycopg://` URL to a new empty database; `stop()` stops the server and removes the folder.
PostgreSQL refuses to run as root, so as root every server command runs as the `postgres` system user (which
the Debian package creates; created here with `useradd` if missing) and the folder is handed to it.

Durability is off (fsync, synchronous_commit, full_page_writes): the data is thrown away anyway.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

PG_USER = "postgres"


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl (Debian's layout)."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        folder = Path(initdb).parent
        if (folder / "pg_ctl").exists():
            try:
                found.append((float(folder.parent.name), folder))
            except ValueError:
                found.append((0.0, folder))
    extra = shutil.which("initdb")
    if not found and extra and shutil.which("pg_ctl"):
        return Path(extra).parent
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def server_env(url: str) -> dict[str, str]:
    """A LiveServer's environment for a test database URL: SQLite keeps the default file under outputs/.state."""
    return {} if url.startswith("sqlite") else {"AVATAR_DATABASE_URL": url}


class PgCluster:
    def __init__(self, bin_dir: Path | None = None, *, max_connections: int = 300):
        self.bin_dir = bin_dir or find_bin_dir()
        if self.bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
        self.max_connections = max_connections
        self.port = 0
        self.root: Path | None = None
        self.running = False
        self.as_user: pwd.struct_passwd | None = _ensure_user(PG_USER) if os.geteuid() == 0 else None

    @property
    def version(self) -> str:
        out = subprocess.run([str(self.bin_dir / "postgres"), "--version"], capture_output=True, text=True)
        return out.stdout.strip()

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user.pw_name, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            log = self.root / "server.log" if self.root else None
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{tail}"
            )
        return result

    def start(self) -> PgCluster:
        # Not under pytest's tmp_path: that is private to root, and the server runs as `postgres`.
        self.root = Path(tempfile.mkdtemp(prefix="avatar-pg-"))
        if self.as_user is not None:
            os.chown(self.root, self.as_user.pw_uid, self.as_user.pw_gid)
        self.root.chmod(0o700)
        data = self.root / "data"
        self._run(
            "initdb", "-D", str(data), "-U", PG_USER, "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"
        )
        for _attempt in range(5):  # a free port can be taken between choosing and binding it
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
                f"-c max_connections={self.max_connections} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c shared_buffers=64MB"
            )
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(data),
                    "-l",
                    str(self.root / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
                break
            except RuntimeError:
                if "could not bind" not in (self.root / "server.log").read_text():
                    raise
        else:
            raise RuntimeError("PostgreSQL could not bind a free port")
        self.running = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "avatar") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}".lower()
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[-1]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if self.running:
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            self.running = False
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
