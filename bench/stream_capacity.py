#!/usr/bin/env python
"""How many replies one uvicorn worker streams at once, and what each costs in memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_streams \\
        .venv/bin/python bench/stream_capacity.py [--streams 1000] [--opening 32] [--chunk-delay 2]

Three processes: the fake upstream (``chats/tests/fake_openai.py``) in its
own, answering every chat completion slowly (20 chunks, 2 s apart: a reply
lasts about 40 s, so that every stream is still open when the last one
starts); the project under ``uvicorn config.asgi:application``, ONE worker;
and this process, the load generator, which opens ``--streams`` replies, one
user, wallet and session each (so no two replies contend for a wallet row).

Opening: at most ``--opening`` requests wait for their ``start`` event at any
moment (a new one is sent as soon as one starts), so the streams open as fast
as the worker can begin replies, without a thundering herd; ``--ramp S``
additionally spreads the first requests over S seconds. Starting a reply is
the expensive part (authentication, the reservation, two transactions), so
the time to open all N streams is reported: it is the worker's begin rate.

Every stream is checked: HTTP 200, a ``start`` event, every delta of the
scenario in order and nothing else, then ``done`` with a ``complete`` message
whose content is the whole reply. Anything else counts as an error, by kind.
After the run ``manage.py audit_wallets`` must pass.

Memory: the worker's ``VmRSS`` (``/proc/<pid>/status``) after a warm-up of a
few quick streams (the baseline), then sampled every 50 ms; the peak is the
highest sample taken while all N streams were open (between the last
``start`` event and the first ``done``). Per stream = (peak - baseline) / N.
Target (issue 4): 1,000 streams, no errors, at most 150 KB per stream.

Users are written straight into the database (a Django subprocess, the same
``post_save`` wallet signal as registration): registering a thousand through
the API would spend minutes hashing passwords, which is not what is measured.
The database is ``--database-url``, else ``DATABASE_URL``, else a throwaway
SQLite file (where the writes of a thousand replies serialize; PostgreSQL is
the target). The worker needs about 2 file descriptors per stream: the
script raises its soft ``ulimit -n`` to 2N + 256 when the hard limit allows
(the worker inherits it), and stops with a message when it does not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    ROOT,
    Account,
    CpuMeter,
    FakeUpstream,
    Server,
    audit,
    is_postgres,
    machine,
    open_fds,
    percentile,
    prepare_database,
    proc_status,
    resolve_database_url,
    run_id,
    seed_users,
    server_env,
    sse_events,
)

TARGET_KB_PER_STREAM = 150


@dataclass
class Run:
    """What the streams saw, and the worker's memory while they ran."""

    streams: int
    expected: list[str]
    open_now: int = 0
    open_max: int = 0
    starts: list[float] = field(default_factory=list)  # seconds from request to the ``start`` event
    first_done_at: float | None = None
    all_open_at: float | None = None
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    rss_peak_all_open: int = 0
    rss_peak: int = 0
    threads_peak: int = 0
    fds_peak: int = 0
    finished: bool = False


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams (default 1000)")
    parser.add_argument(
        "--opening", type=int, default=32, help="requests awaiting their start event at once (32)"
    )
    parser.add_argument("--ramp", type=float, default=0.0, help="spread the first requests over S seconds")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per reply (default 20)")
    parser.add_argument("--chunk-delay", type=float, default=2.0, help="seconds between chunks (2)")
    parser.add_argument("--warmup", type=int, default=20, help="quick streams before the baseline (20)")
    parser.add_argument("--database-url", help="default: $DATABASE_URL, else a temporary SQLite file")
    parser.add_argument("--pool-max", type=int, help="DATABASE_POOL_MAX for the worker (app default 10)")
    parser.add_argument("--pool-timeout", type=float, help="DATABASE_POOL_TIMEOUT (app default 10 s)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args()


def _chunks(count: int) -> list[str]:
    return [f"{'' if i == 0 else ' '}word{i:02d}" for i in range(count)]


async def _one(
    client: httpx.AsyncClient,
    account: Account,
    delay: float,
    opening: asyncio.Semaphore,
    run: Run,
    clock: float,
) -> None:
    await asyncio.sleep(delay)
    await opening.acquire()
    waiting = True  # for the start event, holding a place in ``opening``
    started = time.perf_counter()
    deltas: list[str] = []
    names: list[str] = []
    done: dict | None = None
    try:
        async with client.stream(
            "POST",
            f"/api/sessions/{account.session}/messages/",
            json={"content": "Tell me something slowly."},
            headers=account.headers,
        ) as response:
            if response.status_code != 200:
                body = (await response.aread())[:300].decode(errors="replace")
                run.errors[f"HTTP {response.status_code}: {body}"] += 1
                return
            async for name, data in sse_events(response):
                names.append(name)
                if name == "start" and waiting:
                    waiting = False
                    opening.release()
                    run.starts.append(time.perf_counter() - started)
                    run.open_now += 1
                    run.open_max = max(run.open_max, run.open_now)
                    if run.open_now == run.streams and run.all_open_at is None:
                        run.all_open_at = time.perf_counter() - clock
                elif name == "delta":
                    deltas.append(json.loads(data)["content"])
                elif name == "done":
                    done = json.loads(data)
                    if run.first_done_at is None:
                        run.first_done_at = time.perf_counter() - clock
    except httpx.HTTPError as exc:
        run.errors[f"{type(exc).__name__}: {exc}"] += 1
        return
    finally:
        if waiting:
            opening.release()
        else:
            run.open_now -= 1
    message = (done or {}).get("message", {})
    if names[:1] != ["start"] or names[-1:] != ["done"] or set(names[1:-1]) != {"delta"}:
        run.errors[f"events out of shape: {names[:2]}...{names[-2:]} ({len(names)})"] += 1
    elif deltas != run.expected:
        run.errors["deltas differ from the scenario (missing, extra or out of order)"] += 1
    elif message.get("status") != "complete" or message.get("content") != "".join(run.expected):
        run.errors[f"done message not complete: {message.get('status')!r}"] += 1
    else:
        run.ok += 1


async def _sample(pid: int, run: Run) -> None:
    """The worker's memory, threads and descriptors every 50 ms until the run ends."""
    while not run.finished:
        status = proc_status(pid)
        run.rss_peak = max(run.rss_peak, status["VmRSS"])
        run.threads_peak = max(run.threads_peak, status["Threads"])
        run.fds_peak = max(run.fds_peak, open_fds(pid))
        if run.open_now == run.streams:
            run.rss_peak_all_open = max(run.rss_peak_all_open, status["VmRSS"])
        await asyncio.sleep(0.05)


async def _streams(url: str, accounts: list[Account], run: Run, args, pid: int | None) -> None:
    size = len(accounts) + 16
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    timeout = httpx.Timeout(300, connect=120, pool=None)
    opening = asyncio.Semaphore(args.opening)
    sampler = asyncio.create_task(_sample(pid, run)) if pid else None
    clock = time.perf_counter()
    step = args.ramp / max(len(accounts) - 1, 1)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        await asyncio.gather(
            *(_one(client, account, i * step, opening, run, clock) for i, account in enumerate(accounts))
        )
    run.finished = True
    if sampler is not None:
        await sampler


def _raise_fd_limit(streams: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * streams + 256
    if soft >= wanted:
        return
    if hard < wanted:
        sys.exit(f"ulimit -n is {soft} (hard {hard}); {streams} streams need about {wanted}: raise it first")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main() -> int:
    args = _parse()
    n = args.streams
    _raise_fd_limit(n)
    database_url = resolve_database_url(args.database_url)
    expected = _chunks(args.chunks)
    scenario = {"chunks": expected, "chunk_delay": args.chunk_delay, "first_chunk_delay": args.chunk_delay}
    pool = {}
    if args.pool_max:
        pool["DATABASE_POOL_MAX"] = args.pool_max
    if args.pool_timeout:
        pool["DATABASE_POOL_TIMEOUT"] = args.pool_timeout
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    print("machine:", json.dumps(machine()), "| commit:", commit.stdout.strip())
    print(f"database: {database_url.split('@')[-1]}{'' if is_postgres(database_url) else ' (SQLite!)'}")
    print(
        f"streams: {n}, at most {args.opening} opening at once, ramp {args.ramp:g} s; "
        f"reply: {args.chunks} chunks, {args.chunk_delay:g} s apart"
    )
    print(f"ulimit -n: {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}; pool: {pool or 'app defaults'}")

    with FakeUpstream({"chunks": expected, "chunk_delay": 0.001}) as fake:
        env = server_env(database_url, fake.base_url, **pool)
        prepare_database(database_url, env)
        seeded = time.perf_counter()
        accounts = seed_users(env, n + args.warmup, f"cap-{run_id()}")
        print(f"seeded {len(accounts)} users in {time.perf_counter() - seeded:.1f} s")
        with Server(env, backlog=max(2048, n + 64)) as server:
            print("server:", " ".join(server.command[1:]), f"(pid {server.pid})")
            warm = Run(args.warmup, expected)
            asyncio.run(_streams(server.url, accounts[: args.warmup], warm, args, None))
            if warm.errors:
                print("warm-up errors:", dict(warm.errors))
            fake.configure(**scenario)
            time.sleep(1)
            baseline = proc_status(server.pid)
            run = Run(n, expected)
            meter = CpuMeter(server=server.pid, fake=fake.pid, generator=os.getpid())
            meter.start()
            asyncio.run(_streams(server.url, accounts[args.warmup :], run, args, server.pid))
            cpu = meter.stop()
            time.sleep(1)
            after = proc_status(server.pid)
        passed_audit, audit_output = audit(env)

    peak = run.rss_peak_all_open or run.rss_peak
    per_stream = (peak - baseline["VmRSS"]) / n
    errors = sum(run.errors.values())
    figures = {
        "streams": n,
        "ok": run.ok,
        "errors": errors,
        "error_kinds": dict(run.errors),
        "open_max": run.open_max,
        "all_open_at_s": round(run.all_open_at, 2) if run.all_open_at else None,
        "open_rate_per_s": round(n / run.all_open_at, 1) if run.all_open_at else None,
        "first_done_at_s": round(run.first_done_at, 2) if run.first_done_at else None,
        "start_p50_ms": round(percentile(run.starts, 50) * 1000, 1),
        "start_p99_ms": round(percentile(run.starts, 99) * 1000, 1),
        "seconds": round(cpu["wall"], 1),
        "worker_cpu_s": round(cpu["server"], 1),
        "worker_cpu_ms_per_stream": round(cpu["server"] / n * 1000, 1),
        "other_processes_cores": round(cpu["others"] / cpu["wall"], 2),
        "rss_baseline_kb": baseline["VmRSS"],
        "rss_peak_all_open_kb": run.rss_peak_all_open,
        "rss_peak_kb": run.rss_peak,
        "rss_after_kb": after["VmRSS"],
        "kb_per_stream": round(per_stream, 1),
        "threads_baseline": baseline["Threads"],
        "threads_peak": run.threads_peak,
        "fds_peak": run.fds_peak,
        "audit_passed": passed_audit,
    }
    _report(figures, run, audit_output)
    passed = (
        errors == 0
        and run.ok == n
        and run.open_max == n
        and per_stream <= TARGET_KB_PER_STREAM
        and passed_audit
    )
    print("target (all N ok and open at once, <= 150 KB each, audit clean):", "PASS" if passed else "FAIL")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), **figures}, indent=2) + "\n")
    return 0 if passed else 1


def _report(figures: dict, run: Run, audit_output: str) -> None:
    n = figures["streams"]
    print()
    print(f"streams ok: {run.ok}/{n}; errors: {figures['errors']}")
    for kind, count in run.errors.most_common(10):
        print(f"  {count} x {kind}")
    if run.all_open_at:
        print(
            f"all {n} open from {run.all_open_at:.2f} s ({figures['open_rate_per_s']} starts/s); "
            f"first done at {run.first_done_at or 0:.2f} s"
        )
    else:
        print(f"never all {n} open at once: at most {run.open_max}")
    print(f"request -> start event: p50 {figures['start_p50_ms']} ms, p99 {figures['start_p99_ms']} ms")
    print(
        f"worker RSS: baseline {figures['rss_baseline_kb'] / 1024:.1f} MiB, peak with all open "
        f"{figures['rss_peak_all_open_kb'] / 1024:.1f} MiB (peak overall {figures['rss_peak_kb'] / 1024:.1f} "
        f"MiB), after {figures['rss_after_kb'] / 1024:.1f} MiB"
    )
    print(f"memory per stream: {figures['kb_per_stream']} KB (target <= {TARGET_KB_PER_STREAM} KB)")
    print(
        f"worker threads: {figures['threads_baseline']} at baseline, {figures['threads_peak']} at peak; "
        f"open fds at peak: {figures['fds_peak']}"
    )
    print(
        f"worker CPU: {figures['worker_cpu_s']} s ({figures['worker_cpu_ms_per_stream']} ms per stream) "
        f"in {figures['seconds']} s; other processes on the machine used "
        f"{figures['other_processes_cores']} cores meanwhile"
    )
    print(f"audit_wallets: {'passed' if figures['audit_passed'] else 'FAILED'}")
    if not figures["audit_passed"]:
        print(audit_output)


if __name__ == "__main__":
    sys.exit(main())
