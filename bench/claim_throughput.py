"""Queue benchmark: empty-job claim/complete throughput and fairness, SQLite vs PostgreSQL, 1/3/6 workers.

For each backend and each worker count, a fresh database gets N jobs of a kind no real worker runs
(`bench-empty`); then W processes, each with its own JobStore (engine, connections) like separate worker
machines, start together and loop `claim` → `transition(succeeded)` until the queue is empty. Nothing is
rendered: this measures the store itself.

Reported per run: jobs/s (N over the time from the common start until the last worker saw an empty queue),
each worker's share of the jobs, min/max share and Jain's fairness index ((Σx)² / (W·Σx²): 1.0 = perfectly even,
1/W = one worker did everything), and a check that every job was claimed exactly once (attempt 1, succeeded).

PostgreSQL: `--pg-url postgresql+psycopg://…` to use a server you run (a new database is NOT created: the tables
in it are emptied, so point it at a scratch database), else a throwaway server is started from Debian's
binaries (tests/pg.py) and removed afterwards. SQLite: a temporary file (WAL, like the server's default).

    python bench/claim_throughput.py [--jobs 600] [--workers 1,3,6] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, select  # noqa: E402

from ltx2.store import lifecycle  # noqa: E402
from ltx2.store.jobs import JobStore  # noqa: E402
from ltx2.store.models import SUCCEEDED, Job, WebhookDelivery  # noqa: E402

KIND = "bench-empty"
BACKENDS = ("sqlite", "postgresql")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=600, help="jobs per run (default 600)")
    p.add_argument("--workers", default="1,3,6", help="comma-separated worker counts (default 1,3,6)")
    p.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    p.add_argument("--pg-url", default=None, help="an existing scratch PostgreSQL database (emptied!)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one run may take")
    args = p.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.jobs < 1 or not args.workers or min(args.workers) < 1:
        p.error("--jobs and every --workers count must be ≥ 1")
    if unknown := set(args.backends) - set(BACKENDS):
        p.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    return args


def _claimer(url: str, name: str, start, results) -> None:
    """One worker: its own store; claim and complete until the queue is empty."""
    store = JobStore(url)
    done = 0
    start.wait()
    while (job := lifecycle.claim(store, name, [KIND])) is not None:
        if not lifecycle.move(store, job.id, SUCCEEDED, worker_id=name, output={}):
            raise RuntimeError(f"{name} could not complete its own job {job.id}")
        done += 1
    results.put((name, done, time.monotonic()))
    store.close()


def jain(counts: list[int]) -> float:
    total, squares = sum(counts), sum(c * c for c in counts)
    return (total * total) / (len(counts) * squares) if squares else 0.0


def run_once(url: str, jobs: int, workers: int, timeout: float) -> dict:
    store = JobStore(url)
    store.migrate()
    with store.session() as s:  # a clean queue (the PostgreSQL database is reused between runs)
        s.execute(delete(WebhookDelivery))
        s.execute(delete(Job))
        s.commit()
    for i in range(jobs):
        store.create(KIND, {"n": i})
    store.close()  # no connections inherited by the forked workers

    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(workers + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(url, f"w{i}", start, results)) for i in range(workers)]
    for proc in procs:
        proc.start()
    start.wait(timeout=60)  # every worker has its store: go
    began = time.monotonic()
    finished = []
    try:
        for _ in procs:
            finished.append(results.get(timeout=timeout))
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    elapsed = max(at for _, _, at in finished) - began

    store = JobStore(url)
    with store.session() as s:
        rows = s.execute(select(Job.status, Job.attempt, Job.worker_id).where(Job.kind == KIND)).all()
    store.close()
    counts = sorted((n for _, n, _ in finished), reverse=True)
    claimed_once = len(rows) == jobs and all(st == SUCCEEDED and att == 1 for st, att, _ in rows)
    per_worker: dict[str, int] = {}
    for _, _, worker in rows:
        per_worker[worker] = per_worker.get(worker, 0) + 1
    return {
        "workers": workers,
        "jobs": jobs,
        "seconds": round(elapsed, 4),
        "jobs_per_s": round(jobs / elapsed, 1) if elapsed > 0 else float("inf"),
        "per_worker": counts,
        "min_share": round(min(counts) / jobs, 3),
        "max_share": round(max(counts) / jobs, 3),
        "jain": round(jain(counts), 3),
        "claimed_exactly_once": claimed_once
        and sum(counts) == jobs
        and sorted(per_worker.values(), reverse=True) == [c for c in counts if c],
    }


def format_table(results: dict) -> str:
    backends = [b for b in BACKENDS if b in results]
    counts = sorted({w for b in backends for w in results[b]})
    head = f"{'workers':>7} | " + " | ".join(f"{b + ' jobs/s':>17} {'Jain':>5} {'min/max share':>13}" for b in backends)
    lines = [head, "-" * len(head)]
    for w in counts:
        cells = []
        for b in backends:
            r = results[b].get(w)
            cells.append(
                f"{r['jobs_per_s']:>17.1f} {r['jain']:>5.3f} {r['min_share']:>6.3f}/{r['max_share']:<6.3f}"
                if r
                else f"{'-':>37}"
            )
        lines.append(f"{w:>7} | " + " | ".join(cells))
    if len(backends) == 2:
        ratios = [
            f"{w}: {results['postgresql'][w]['jobs_per_s'] / results['sqlite'][w]['jobs_per_s']:.2f}x"
            for w in counts
            if w in results["sqlite"] and w in results["postgresql"]
        ]
        lines.append("PostgreSQL / SQLite jobs/s — " + ", ".join(ratios))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = _args(argv)
    results: dict[str, dict[int, dict]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="claim-bench-"))
    cluster = None
    try:
        for backend in args.backends:
            if backend == "sqlite":
                url = f"sqlite:///{scratch / 'queue.db'}"
            elif args.pg_url:
                url = args.pg_url
            else:
                from tests.pg import PgCluster

                cluster = PgCluster().start()
                url = cluster.create_database("claimbench")
            results[backend] = {}
            for workers in args.workers:
                results[backend][workers] = run_once(url, args.jobs, workers, args.timeout)
                r = results[backend][workers]
                print(
                    f"{backend:>10}, {workers} worker(s): {r['jobs_per_s']:.1f} jobs/s, per worker "
                    f"{r['per_worker']}, Jain {r['jain']:.3f}, claimed once: {r['claimed_exactly_once']}",
                    flush=True,
                )
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(f"{args.jobs} empty jobs per run, claim + complete, {os.cpu_count()} CPU(s)")
    print(format_table(results))
    return {"jobs": args.jobs, "results": results, "table": format_table(results)}


if __name__ == "__main__":
    main(sys.argv[1:])
