"""API load test: C concurrent clients against a real `avatar serve` (API + one worker on the tiny checkpoint).

Starts the server on a free loopback port with its own temporary outputs/temp/database (the project's outputs
are never touched), waits for a READY worker, then runs closed-loop clients for D seconds with a mix of
status reads (GET /v1/predictions/{id}, GET /status/{id}), listings (GET /v1/predictions?limit=20) and
creates (POST /v1/predictions, 64x64 0.4 s clips the worker really renders; capped outstanding jobs).
Prints per-route latency (p50/p99/max), errors, API RSS and the goals; the server is stopped with SIGTERM
(then killed after a grace period) even on Ctrl-C or errors.

    python bench/api_load.py [--clients 50 --duration 60 --create-share 0.05]
    python bench/api_load.py --url http://127.0.0.1:8000 [--pid API_PID]   # an already running server
    python bench/api_load.py --suite --duration 30 [--with-worker]   # pollers, saturated reads vs bare baseline
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

GET_PREDICTION = "GET /v1/predictions/{id}"
GET_SEED_STATUS = "GET /status/{id}"
LIST = "GET /v1/predictions?limit=20"
CREATE = "POST /v1/predictions"
ROUTES = (GET_PREDICTION, GET_SEED_STATUS, LIST, CREATE)
STATUS_READS = (GET_PREDICTION, GET_SEED_STATUS)
GOAL_STATUS_P99_MS = 25.0
GOAL_CREATE_P99_MS = 100.0
GOAL_THROUGHPUT_RATIO = 0.8  # saturated status reads against the bare FastAPI + sqlite3 app (bench/bare_api.py)
TERMINAL = {"succeeded", "failed", "canceled"}
SEED_TERMINAL = {"completed", "failed", "cancelled"}
SEED_JOBS = 3  # created before the timed window so status reads have targets from the first request
CLIP = {"width": 64, "height": 64, "seconds": 0.4}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    p.add_argument("--create-share", type=float, default=0.05, help="share of requests that create a job")
    p.add_argument("--list-share", type=float, default=0.10, help="share of requests that list predictions")
    p.add_argument(
        "--max-outstanding",
        type=int,
        default=8,
        help="unfinished jobs allowed at once; a create over the cap becomes a status read",
    )
    p.add_argument("--think-ms", type=float, default=0.0, help="pause between a client's requests (0: closed loop)")
    p.add_argument(
        "--shared-client",
        action="store_true",
        help="all clients share one httpx.AsyncClient pool (default: one AsyncClient per client)",
    )
    p.add_argument("--port", type=int, default=None, help="port for the started server (default: a free one)")
    p.add_argument("--url", default=None, help="target an already running server instead of starting one")
    p.add_argument("--pid", type=int, default=None, help="with --url: the API process to sample RSS from")
    p.add_argument("--api-key", default=os.environ.get("AVATAR_API_KEY"), help="with --url, if it needs one")
    p.add_argument("--ready-timeout", type=float, default=180.0, help="seconds to wait for a READY worker")
    p.add_argument("--grace", type=float, default=20.0, help="seconds between SIGTERM and SIGKILL at shutdown")
    p.add_argument("--json", default=None, help="also write the result here as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary server folder (always kept on errors)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the request mix")
    p.add_argument(
        "--rate", type=float, default=0.0, help="requests per second per client (e.g. 1: pollers); 0: closed loop"
    )
    p.add_argument(
        "--suite",
        action="store_true",
        help="the issue's figures in one run: `avatar api` alone pinned to one core, C pollers at --rate (default "
        "1 Hz), then saturated GET /status/{id} beside a bare FastAPI + sqlite3 app on the same core (ratio), "
        "and with --with-worker the pollers again while a worker renders on the other core",
    )
    p.add_argument("--cpu", type=int, default=0, help="--suite: the core the API (and the baseline) is pinned to")
    p.add_argument("--with-worker", action="store_true", help="--suite: also measure with a worker rendering")
    args = p.parse_args(argv)
    if args.clients < 1 or args.duration <= 0:
        p.error("--clients must be ≥ 1 and --duration > 0")
    if not 0 <= args.create_share + args.list_share <= 1:
        p.error("--create-share + --list-share must be within 0..1")
    if args.url and args.port:
        p.error("--port is for the started server; use --url alone for a running one")
    return args


# --- process helpers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int | None:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - the process is gone
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (from /proc; psutil not needed)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def child_pids(pid: int) -> list[int]:
    """Every descendant of pid (psutil if installed, else /proc)."""
    try:
        import psutil

        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except ImportError:
        pass
    except Exception:  # noqa: BLE001
        return []
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    return left


class Server:
    """`avatar serve --no-ui` in its own session, with a throwaway outputs/temp/database folder."""

    def __init__(
        self,
        port: int | None,
        grace: float,
        command: str = "serve",
        cpu: int | None = None,
        folder: Path | None = None,
    ):
        self.port = port or free_port()
        self.grace = grace
        self.command = command  # serve (API + worker), api, worker (beside an api sharing `folder`), bare
        self.cpu = cpu  # pin the process (and its children) to this core
        self.dir = folder or Path(tempfile.mkdtemp(prefix="bench-api-load-"))
        self.log_path = self.dir / ("server.log" if command == "serve" else f"{command}.log")
        self.proc: subprocess.Popen | None = None
        self.shutdown: dict = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        outputs = self.dir / "outputs"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_")}  # no real checkpoint, keys, DB
        env.update(
            AVATAR_OUTPUTS_DIR=str(outputs),
            AVATAR_TEMP_DIR=str(self.dir / "temp"),
            AVATAR_MODELS_DIR=os.environ.get("AVATAR_MODELS_DIR", str(ROOT / "models")),
            AVATAR_DATABASE_URL=f"sqlite:///{outputs / '.state' / 'avatar.db'}",
            AVATAR_API_KEYS="[]",
            AVATAR_WORKERS="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        )
        listen = ["--host", "127.0.0.1", "--port", str(self.port)]
        cmd = {
            "serve": [sys.executable, "-m", "ltx2.cli", "serve", "--no-ui", *listen, "--workers", "1"],
            "api": [sys.executable, "-m", "ltx2.cli", "api", *listen],
            "worker": [sys.executable, "-m", "ltx2.cli", "worker"],
            "bare": [sys.executable, str(ROOT / "bench" / "bare_api.py"), str(self.port), str(self.dir / "bare.db")],
        }[self.command]
        cpu = self.cpu
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child
        try:
            # Own session: Ctrl-C in the terminal reaches only this script, which then stops the server itself.
            # cwd is the temp folder so a project .env cannot point the server at real data.
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=pin,  # noqa: PLW1509 - only sched_setaffinity, before exec
            )
        finally:
            log.close()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait_answering(self, path: str, timeout: float) -> None:
        """Until GET `path` answers 200 (the API alone, the bare app: no worker to wait for)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.command} exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get(path).status_code == 200:
                        return
                time.sleep(0.1)
        raise TimeoutError(f"{self.command} did not answer {path} in {timeout:.0f}s:\n{self.log_tail()}")

    def wait_ready(self, timeout: float, url: str | None = None) -> dict:
        """Until /health-check says READY (`url`: the API a separately started worker reports to)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        with httpx.Client(base_url=url or self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"server exited with {self.proc.returncode} before it was ready:\n{self.log_tail()}"
                    )
                try:
                    if client.get("/health").status_code == 200:
                        check = client.get("/health-check").json()
                        last = check.get("status")
                        if last == "READY":
                            return check
                        if last == "SETUP_FAILED":
                            errors = [w.get("error") for w in check.get("workers", [])]
                            raise RuntimeError(f"worker setup failed: {errors}\n{self.log_tail()}")
                except httpx.TransportError as exc:
                    last = repr(exc)
                time.sleep(0.25)
        raise TimeoutError(f"no READY worker after {timeout:.0f}s (last: {last}):\n{self.log_tail()}")

    def stop(self) -> dict:
        """SIGTERM, wait `grace`, then SIGKILL; report exit code and any worker left behind (and stop it)."""
        if self.proc is None or self.shutdown:
            return self.shutdown
        pid = self.proc.pid
        workers = child_pids(pid)
        start = time.monotonic()
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                killed = True
        exit_s = time.monotonic() - start
        orphans = [p for p in workers if alive(p)]
        if orphans:
            # The server is gone but a child outlived it: a server bug worth reporting; stop it anyway.
            for p in orphans:
                _signal(p, signal.SIGTERM)
            for p in wait_gone(orphans, self.grace):
                _signal(p, signal.SIGKILL)
            wait_gone(orphans, 5)
        self.shutdown = {
            "exit_code": self.proc.returncode,
            "seconds": round(exit_s, 2),
            "killed": killed,
            "worker_pids": workers,
            "orphaned_workers": orphans,
        }
        return self.shutdown

    def cleanup(self, keep: bool) -> None:
        if keep:
            print(f"kept the server folder (log, database, outputs): {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


PROBLEM_LINE = re.compile(r"Traceback|database is locked|\bERROR\b|\bCRITICAL\b|\" 5\d\d |OperationalError")


def log_problems(text: str, limit: int = 5, context: int = 25) -> list[str]:
    """Server-log excerpts around tracebacks, 5xx access lines and SQLite lock errors."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines) and len(out) < limit:
        if PROBLEM_LINE.search(lines[i]):
            out.append("\n".join(lines[i : i + context]))
            i += context
        else:
            i += 1
    return out


# --- the load --------------------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in ROUTES})
    errors: dict[str, int] = field(default_factory=lambda: {r: 0 for r in ROUTES})
    no_answer: dict[str, int] = field(default_factory=lambda: {r: 0 for r in ROUTES})  # exceptions, untimed
    error_samples: list[str] = field(default_factory=list)

    def error(self, route: str, what: str, answered: bool = True) -> None:
        self.errors[route] += 1
        if not answered:
            self.no_answer[route] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{route}: {what}")


@dataclass
class Jobs:
    known: list[str] = field(default_factory=list)  # every job id seen (seeded + created)
    created: list[str] = field(default_factory=list)  # created during the timed window
    outstanding: set[str] = field(default_factory=set)  # not known to be finished
    creating: int = 0  # POSTs in flight
    skipped_creates: int = 0

    def seen(self, job_id: str, finished: bool) -> None:
        if finished:
            self.outstanding.discard(job_id)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


async def client_loop(
    client: httpx.AsyncClient, args, stats: Stats, jobs: Jobs, stop_at: float, rng: random.Random
) -> None:
    loop = asyncio.get_running_loop()
    # Pollers (--rate) start spread over one period, each then on its own fixed schedule.
    due = loop.time() + (rng.random() / args.rate if args.rate else 0.0)
    while loop.time() < stop_at:
        if args.rate:
            await asyncio.sleep(max(0.0, due - loop.time()))
            due += 1.0 / args.rate
            if loop.time() >= stop_at:
                return
        roll = rng.random()
        if roll < args.create_share:
            if len(jobs.outstanding) + jobs.creating < args.max_outstanding:
                route = CREATE
            else:
                jobs.skipped_creates += 1
                route = rng.choice(STATUS_READS)
        elif roll < args.create_share + args.list_share:
            route = LIST
        else:
            route = rng.choice(STATUS_READS)
        job_id = None
        if route in STATUS_READS:
            # Half the reads poll an unfinished job (what a waiting client does), the rest any known job.
            pool = list(jobs.outstanding) if jobs.outstanding and rng.random() < 0.5 else jobs.known
            job_id = rng.choice(pool)
        await one_request(client, route, job_id, stats, jobs, rng)
        if args.think_ms:
            await asyncio.sleep(args.think_ms / 1000)


async def one_request(
    client: httpx.AsyncClient, route: str, job_id: str | None, stats: Stats, jobs: Jobs, rng: random.Random
) -> None:
    if route == CREATE:
        jobs.creating += 1
    t0 = time.perf_counter()
    try:
        if route == CREATE:
            text = f"Load test clip {rng.randrange(10**6)}: hello from client."
            resp = await client.post("/v1/predictions", json={"input": {"text": text, **CLIP}})
        elif route == LIST:
            resp = await client.get("/v1/predictions", params={"limit": 20})
        elif route == GET_PREDICTION:
            resp = await client.get(f"/v1/predictions/{job_id}")
        else:
            resp = await client.get(f"/status/{job_id}")
        body = resp.content
        elapsed = (time.perf_counter() - t0) * 1000
    except Exception as exc:  # noqa: BLE001 - every failure counts as an error of its route
        stats.error(route, f"{exc.__class__.__name__}: {exc!r}", answered=False)
        if route == CREATE:
            jobs.creating -= 1
        return
    stats.latencies[route].append(elapsed)
    if route == CREATE:
        jobs.creating -= 1
    if not 200 <= resp.status_code < 300:
        stats.error(route, f"HTTP {resp.status_code} {body[:300]!r}")
        return
    try:
        doc = resp.json()
    except ValueError:
        stats.error(route, f"HTTP {resp.status_code} but not JSON: {body[:200]!r}")
        return
    if route == CREATE:
        jobs.known.append(doc["id"])
        jobs.created.append(doc["id"])
        if doc.get("status") not in TERMINAL:
            jobs.outstanding.add(doc["id"])
    elif route == GET_PREDICTION:
        jobs.seen(job_id, doc.get("status") in TERMINAL)
    elif route == GET_SEED_STATUS:
        jobs.seen(job_id, doc.get("status") in SEED_TERMINAL)


async def sample_rss(pid: int | None, samples: list[int], stop: asyncio.Event, every: float = 0.25) -> None:
    if pid is None:
        return
    while True:
        value = rss_bytes(pid)
        if value is not None:
            samples.append(value)
        try:
            await asyncio.wait_for(stop.wait(), every)
            return
        except TimeoutError:
            pass


async def loop_lag(samples: list[float], stop: asyncio.Event, every: float = 0.01) -> None:
    """How late the bench's own event loop wakes up (ms): latency the clients add on top of the server's."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + every
        await asyncio.sleep(every)
        samples.append(max(0.0, (loop.time() - due) * 1000))


async def run_load(base_url: str, args, api_pid: int | None) -> dict:
    stats, jobs = Stats(), Jobs()
    rng = random.Random(args.seed)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    rss: list[int] = []

    def make_client(connections: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0, headers=headers)

    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(make_client(args.clients + 8))
        if args.shared_client:
            per_client = [client] * args.clients
        else:
            # One keep-alive connection per virtual user. A single shared pool of C connections costs the
            # bench itself far more CPU per request at C≈50 (httpcore's pool bookkeeping), so its latencies
            # would measure the client rather than the server; --shared-client shows that mode.
            per_client = [await stack.enter_async_context(make_client(1)) for _ in range(args.clients)]
        # Targets for status reads from the very first request (not timed).
        for i in range(SEED_JOBS):
            r = await client.post("/v1/predictions", json={"input": {"text": f"Seed clip {i}.", **CLIP}})
            r.raise_for_status()
            jobs.known.append(r.json()["id"])
            jobs.outstanding.add(r.json()["id"])
        rss_start = rss_bytes(api_pid) if api_pid else None
        workers = child_pids(api_pid) if api_pid else []
        cpu_before = {
            "api": cpu_seconds(api_pid),
            "workers": _sum(cpu_seconds(p) for p in workers),
            "bench": time.process_time(),
        }
        load_before = os.getloadavg()
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(api_pid, rss, stop))
        lag: list[float] = []
        lagger = asyncio.create_task(loop_lag(lag, stop))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        stop_at = t0 + args.duration
        rngs = [random.Random(rng.random()) for _ in range(args.clients)]
        await asyncio.gather(
            *(client_loop(per_client[i], args, stats, jobs, stop_at, rngs[i]) for i in range(args.clients))
        )
        wall = loop.time() - t0
        cpu_after = {
            "api": cpu_seconds(api_pid),
            "workers": _sum(cpu_seconds(p) for p in workers),
            "bench": time.process_time(),
        }
        stop.set()
        await sampler
        await lagger
        # Which of the jobs created in the window had finished by its end (swept right after it).
        finals: dict[str, dict] = {}
        for job_id in jobs.created:
            r = await client.get(f"/v1/predictions/{job_id}")
            if r.status_code == 200:
                finals[job_id] = r.json()
    result = summarize(args, stats, jobs, finals, wall, rss_start, rss)
    # Share of one core each side used during the window: with ~100% on the API the server is the bottleneck.
    result["cpu_percent"] = {
        k: (
            round(100 * (cpu_after[k] - cpu_before[k]) / wall, 1)
            if cpu_before[k] is not None and cpu_after[k] is not None and wall
            else None
        )
        for k in cpu_before
    }
    lag.sort()
    result["client_loop_lag_ms"] = (
        {"p50": round(percentile(lag, 0.5), 2), "p99": round(percentile(lag, 0.99), 2), "max": round(lag[-1], 2)}
        if lag
        else None
    )
    result["host"] = {
        "cpus": os.cpu_count(),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    return result


def _sum(values) -> float | None:
    values = list(values)
    return None if not values or any(v is None for v in values) else sum(values)


def summarize(
    args, stats: Stats, jobs: Jobs, finals: dict[str, dict], wall: float, rss_start: int | None, rss: list[int]
) -> dict:
    routes = {}
    for route in ROUTES:
        lat = sorted(stats.latencies[route])  # every answered request, 2xx or not
        routes[route] = {
            "count": len(lat) + stats.no_answer[route],
            "p50_ms": round(percentile(lat, 0.50), 2) if lat else None,
            "p99_ms": round(percentile(lat, 0.99), 2) if lat else None,
            "max_ms": round(lat[-1], 2) if lat else None,
            "errors": stats.errors[route],
        }
    statuses = [d.get("status") for d in finals.values()]
    status_reads = sorted(v for r in STATUS_READS for v in stats.latencies[r])
    status_p99 = round(percentile(status_reads, 0.99), 2) if status_reads else None
    status_p50 = round(percentile(status_reads, 0.5), 2) if status_reads else None
    create_p99 = routes[CREATE]["p99_ms"]
    total_errors = sum(stats.errors.values())
    total = sum(r["count"] for r in routes.values())
    goals = [
        {
            "goal": f"status reads p99 ≤ {GOAL_STATUS_P99_MS:g} ms",
            "value": status_p99,
            "met": status_p99 is not None and status_p99 <= GOAL_STATUS_P99_MS,
        },
        {
            "goal": f"creates p99 ≤ {GOAL_CREATE_P99_MS:g} ms",
            "value": create_p99,
            "met": create_p99 is not None and create_p99 <= GOAL_CREATE_P99_MS,
        },
        {"goal": "0 errors", "value": total_errors, "met": total_errors == 0},
    ]
    mb = 1024 * 1024
    return {
        "clients": args.clients,
        "client_mode": "shared AsyncClient" if args.shared_client else "AsyncClient per client",
        "think_ms": args.think_ms,
        "duration_s": round(wall, 2),
        "requests": total,
        "requests_per_s": round(total / wall, 1) if wall else None,
        "routes": routes,
        "status_reads_p50_ms": status_p50,
        "status_reads_p99_ms": status_p99,
        "errors": total_errors,
        "error_samples": stats.error_samples,
        "rss_mb": {
            "start": round(rss_start / mb, 1) if rss_start else None,
            "peak": round(max(rss) / mb, 1) if rss else None,
            "end": round(rss[-1] / mb, 1) if rss else None,
        },
        "jobs": {
            "created": len(jobs.created),
            "finished": sum(s in TERMINAL for s in statuses),
            "succeeded": statuses.count("succeeded"),
            "failed": statuses.count("failed"),
            "canceled": statuses.count("canceled"),
            "unfinished": sum(s not in TERMINAL for s in statuses),
            "skipped_creates_over_cap": jobs.skipped_creates,
            "failures": [d.get("error") for d in finals.values() if d.get("status") == "failed"][:5],
        },
        "goals": goals,
    }


def print_report(result: dict) -> None:
    w = max(len(r) for r in ROUTES)
    print(
        f"\nAPI load: {result['clients']} clients ({result['client_mode']}, think {result['think_ms']:g} ms), "
        f"{result['duration_s']} s, {result['requests']} requests ({result['requests_per_s']} req/s)"
    )
    print(f"{'route':<{w}}  {'count':>7}  {'p50 ms':>8}  {'p99 ms':>8}  {'max ms':>8}  {'errors':>6}")
    fmt = lambda v: f"{v:8.1f}" if v is not None else f"{'-':>8}"  # noqa: E731
    for route, r in result["routes"].items():
        print(
            f"{route:<{w}}  {r['count']:>7}  {fmt(r['p50_ms'])}  {fmt(r['p99_ms'])}  {fmt(r['max_ms'])}  "
            f"{r['errors']:>6}"
        )
    cpu, host = result.get("cpu_percent", {}), result.get("host", {})
    print(
        f"CPU (% of one core) during the run: API {cpu.get('api')}, worker {cpu.get('workers')}, "
        f"bench clients {cpu.get('bench')}; host {host.get('cpus')} CPUs, load average "
        f"{host.get('loadavg_before', [None])[0]} → {host.get('loadavg_after', [None])[0]}"
    )
    lag = result.get("client_loop_lag_ms")
    if lag:
        print(
            f"bench event-loop lag (client-side delay included in the latencies): p50 {lag['p50']} ms, "
            f"p99 {lag['p99']} ms, max {lag['max']} ms"
        )
    rss = result["rss_mb"]
    print(f"API RSS: start {rss['start']} MiB, peak {rss['peak']} MiB, end {rss['end']} MiB")
    j = result["jobs"]
    print(
        f"jobs: {j['created']} created, {j['finished']} finished during the run ({j['succeeded']} succeeded, "
        f"{j['failed']} failed, {j['canceled']} canceled), {j['unfinished']} unfinished; "
        f"{j['skipped_creates_over_cap']} creates skipped over the outstanding cap"
    )
    for f in j["failures"]:
        print(f"  failed job: {f}")
    print("goals:")
    for g in result["goals"]:
        print(f"  {g['goal']:<28} {str(g['value']):>10}  {'MET' if g['met'] else 'NOT MET'}")
    for sample in result["error_samples"][:10]:
        print(f"  error: {sample}")
    server = result.get("server")
    if server:
        sd = server.get("shutdown") or {}
        print(
            f"server: exit {sd.get('exit_code')} after {sd.get('seconds')} s"
            f"{' (killed after the grace period)' if sd.get('killed') else ''}; log {server['log']}"
        )
        if sd.get("orphaned_workers"):
            print(
                f"  WARNING: worker process(es) {sd['orphaned_workers']} outlived the server after SIGTERM "
                "(stopped by the bench)"
            )
        for excerpt in server.get("log_problems", []):
            print("  server log:\n    " + excerpt.replace("\n", "\n    "))


# --- the suite: pollers on one core, saturated reads beside the bare baseline ------------------------------


async def saturate(base_url: str, path: str, ids: list[str], clients: int, duration: float, pid: int | None) -> dict:
    """`clients` closed-loop clients, each on its own keep-alive connection, GETting `path` for random ids."""
    stats: list[float] = []
    errors = [0]
    rng = random.Random(1)

    async def one(client: httpx.AsyncClient, stop_at: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < stop_at:
            t0 = time.perf_counter()
            try:
                resp = await client.get(path.format(id=rng.choice(ids)))
                resp.read()
            except Exception:  # noqa: BLE001 - counted
                errors[0] += 1
                continue
            stats.append((time.perf_counter() - t0) * 1000)
            if resp.status_code != 200:
                errors[0] += 1

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        pool = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30))
            for _ in range(clients)
        ]
        for client in pool:  # connect outside the timed window
            await client.get(path.format(id=ids[0]))
        loop = asyncio.get_running_loop()
        cpu_before, t0 = cpu_seconds(pid), loop.time()
        await asyncio.gather(*(one(c, t0 + duration) for c in pool))
        wall, cpu_after = loop.time() - t0, cpu_seconds(pid)
    stats.sort()
    cpu = None if None in (cpu_before, cpu_after) else cpu_after - cpu_before
    return {
        "requests": len(stats),
        "requests_per_s": round(len(stats) / wall, 1),
        # CPU the server spent per answer: unlike latency, barely moved by other processes on the same core.
        "cpu_ms_per_request": round(1000 * cpu / len(stats), 3) if cpu is not None and stats else None,
        "p50_ms": round(percentile(stats, 0.5), 2) if stats else None,
        "p99_ms": round(percentile(stats, 0.99), 2) if stats else None,
        "errors": errors[0],
        "cpu_percent": round(100 * cpu / wall, 1) if cpu is not None else None,
    }


def _route_figures(result: dict) -> dict:
    r = result["routes"]
    return {
        "status_reads_p50_ms": result["status_reads_p50_ms"],
        "status_reads_p99_ms": result["status_reads_p99_ms"],
        "list_p50_ms": r[LIST]["p50_ms"],
        "list_p99_ms": r[LIST]["p99_ms"],
        "create_p50_ms": r[CREATE]["p50_ms"],
        "create_p99_ms": r[CREATE]["p99_ms"],
        # How late the load client's own loop woke (its share of a p99 is not the server's).
        "client_lag_p99_ms": (result.get("client_loop_lag_ms") or {}).get("p99"),
        "errors": result["errors"],
        "api_cpu_percent": result["cpu_percent"]["api"],
    }


def run_suite(args) -> dict:
    """The issue's API figures in one run, each beside its goal; the load client runs on another core."""
    cores = sorted(os.sched_getaffinity(0))
    other = next((c for c in cores if c != args.cpu), args.cpu)
    os.sched_setaffinity(0, {other})
    api = Server(args.port, args.grace, command="api", cpu=args.cpu)
    bare = Server(None, args.grace, command="bare", cpu=args.cpu, folder=api.dir)
    worker = Server(None, args.grace, command="worker", cpu=other, folder=api.dir)
    out: dict = {"api_core": args.cpu, "client_core": other, "clients": args.clients, "duration_s": args.duration}
    try:
        api.start()
        api.wait_answering("/health", args.ready_timeout)
        pollers = argparse.Namespace(**{**vars(args), "rate": args.rate or 1.0})
        print(f"{args.clients} pollers at {pollers.rate:g} Hz against the API alone on core {args.cpu} …", flush=True)
        out["pollers"] = _route_figures(asyncio.run(run_load(api.url, pollers, api.proc.pid)))
        ids = [d["id"] for d in httpx.get(f"{api.url}/v1/predictions", params={"limit": 50}).json()["results"]]
        print(f"saturated GET /status/{{id}}: {args.clients} closed-loop clients, API then bare baseline …", flush=True)
        out["saturated_api"] = asyncio.run(
            saturate(api.url, "/status/{id}", ids, args.clients, args.duration, api.proc.pid)
        )
        bare.start()
        bare.wait_answering("/ids", args.ready_timeout)
        bare_ids = httpx.get(f"{bare.url}/ids").json()
        out["saturated_bare"] = asyncio.run(
            saturate(bare.url, "/status/{id}", bare_ids, args.clients, args.duration, bare.proc.pid)
        )
        bare.stop()
        if args.with_worker:
            worker.start()
            worker.wait_ready(args.ready_timeout, url=api.url)
            print(f"{args.clients} pollers again, a worker rendering on core {other} …", flush=True)
            out["pollers_with_worker"] = _route_figures(asyncio.run(run_load(api.url, pollers, api.proc.pid)))
    finally:
        for server in (worker, bare, api):
            if server.proc is not None:
                server.stop()
        failed = sys.exc_info()[0] is not None
        api.cleanup(keep=args.keep or failed)
    api_rps, bare_rps = out["saturated_api"]["requests_per_s"], out["saturated_bare"]["requests_per_s"]
    out["throughput_ratio"] = round(api_rps / bare_rps, 2) if bare_rps else None
    p = out["pollers"]
    out["goals"] = [
        {
            "goal": f"pollers: status reads p99 ≤ {GOAL_STATUS_P99_MS:g} ms",
            "value": p["status_reads_p99_ms"],
            "met": p["status_reads_p99_ms"] is not None and p["status_reads_p99_ms"] <= GOAL_STATUS_P99_MS,
        },
        {
            "goal": f"pollers: lists p99 ≤ {GOAL_STATUS_P99_MS:g} ms",
            "value": p["list_p99_ms"],
            "met": p["list_p99_ms"] is not None and p["list_p99_ms"] <= GOAL_STATUS_P99_MS,
        },
        {
            "goal": f"pollers: creates p99 ≤ {GOAL_CREATE_P99_MS:g} ms",
            "value": p["create_p99_ms"],
            "met": p["create_p99_ms"] is not None and p["create_p99_ms"] <= GOAL_CREATE_P99_MS,
        },
        {
            "goal": f"saturated reads ≥ {GOAL_THROUGHPUT_RATIO:g}× bare",
            "value": out["throughput_ratio"],
            "met": out["throughput_ratio"] is not None and out["throughput_ratio"] >= GOAL_THROUGHPUT_RATIO,
        },
    ]
    return out


def print_suite(out: dict) -> None:
    print(f"\nAPI alone on core {out['api_core']}, load client on core {out['client_core']}, {out['clients']} clients")
    columns = [("pollers", "API alone")] + (
        [("pollers_with_worker", "worker rendering")] if "pollers_with_worker" in out else []
    )
    print(f"{'at 1 Hz per poller':<24}" + "".join(f"{title:>20}" for _, title in columns))
    for key in (
        "status_reads_p50_ms",
        "status_reads_p99_ms",
        "list_p50_ms",
        "list_p99_ms",
        "create_p50_ms",
        "create_p99_ms",
        "client_lag_p99_ms",
        "errors",
        "api_cpu_percent",
    ):
        print(f"{key:<24}" + "".join(f"{str(out[col][key]):>20}" for col, _ in columns))
    api, bare = out["saturated_api"], out["saturated_bare"]
    print(f"\n{'saturated /status/{id}':<24}{'API':>12}{'bare':>12}")
    for key in ("requests_per_s", "cpu_ms_per_request", "p50_ms", "p99_ms", "errors", "cpu_percent"):
        print(f"{key:<24}{str(api[key]):>12}{str(bare[key]):>12}")
    print(f"{'ratio API / bare':<24}{out['throughput_ratio']:>12}")
    if api["cpu_ms_per_request"] and bare["cpu_ms_per_request"]:
        cpu_ratio = round(bare["cpu_ms_per_request"] / api["cpu_ms_per_request"], 2)
        out["cpu_throughput_ratio"] = cpu_ratio
        print(f"{'ratio by CPU per answer':<24}{cpu_ratio:>12}  (what one free core would give)")
    print("goals:")
    for g in out["goals"]:
        print(f"  {g['goal']:<40} {str(g['value']):>10}  {'MET' if g['met'] else 'NOT MET'}")


def main(argv: list[str] | None = None) -> dict:
    args = _args(argv)
    if args.suite:
        out = run_suite(args)
        print_suite(out)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2))
        return out
    server = None
    previous = None
    result_errors = 0
    if threading_is_main():
        # SIGTERM to the bench behaves like Ctrl-C: the finally below still stops the server.
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if args.url:
            base_url, api_pid = args.url.rstrip("/"), args.pid
        else:
            server = Server(args.port, args.grace)
            server.start()
            print(f"starting avatar serve on {server.url} (folder {server.dir}) …", flush=True)
            server.wait_ready(args.ready_timeout)
            base_url, api_pid = server.url, server.proc.pid
        print(f"running {args.clients} clients for {args.duration:g} s against {base_url} …", flush=True)
        result = asyncio.run(run_load(base_url, args, api_pid))
        if server is not None:
            shutdown = server.stop()
            text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
            result["server"] = {
                "url": server.url,
                "log": str(server.log_path),
                "shutdown": shutdown,
                "log_problems": log_problems(text),
            }
        result_errors = result["errors"]
        print_report(result)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return result
    finally:
        if server is not None:
            server.stop()
            problems = server.shutdown.get("killed") or bool(result_errors)
            try:
                problems = problems or bool(log_problems(server.log_path.read_text(errors="replace")))
            except OSError:
                pass
            failed = sys.exc_info()[0] is not None and not isinstance(sys.exc_info()[1], KeyboardInterrupt)
            server.cleanup(keep=args.keep or problems or failed)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def threading_is_main() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    try:
        outcome = main()
    except KeyboardInterrupt:
        print("interrupted; server stopped", file=sys.stderr)
        sys.exit(130)
    sys.exit(0 if all(g["met"] for g in outcome["goals"]) else 1)
