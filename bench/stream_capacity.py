#!/usr/bin/env python
"""How many replies one uvicorn worker streams at once, every chunk in order, and their memory.

    .venv/bin/python bench/stream_capacity.py [--streams 1000] [--opening 32] [--chunk-delay 2]

The fake upstream (``python -m tests.fakes.openai_upstream``) answers slowly
(20 chunks, ``--chunk-delay`` seconds apart: a reply lasts ~40 s, so every
stream is still open when the last one starts); Parley runs under uvicorn,
ONE worker, PostgreSQL (``--database-url``, dropped and created afresh); this
process opens ``--streams`` replies, one user, wallet and session each, at
most ``--opening`` of them waiting for their ``start`` event at any moment.

Every stream must be HTTP 200, ``start``, each delta of the scenario in order
and nothing else, then ``done`` with a ``complete`` message holding the whole
reply; ``manage.py audit_wallets`` must pass afterwards. Memory: the worker's
``VmRSS`` after a warm-up of quick streams (baseline), then sampled every
50 ms; per stream = (peak while all N were open - baseline) / N. Target:
1,000 streams, no error, at most 128 KB per stream; the exit status says.
The worker needs about 2 file descriptors per stream: ``ulimit -n`` is raised
to 2N + 256 when the hard limit allows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    FakeUpstream,
    Server,
    bearer,
    cpu_seconds,
    create_sessions,
    machine,
    manage,
    many_streams_client,
    percentile,
    proc_status,
    reset_database,
    seed_tokens,
    server_env,
    write_json,
)
from _sse import sse_events

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/parley_bench_streams"
TARGET_KB = 128
CHUNKS = [f"{'' if i == 0 else ' '}word{i:02d}" for i in range(20)]


@dataclass
class Run:
    streams: int
    open_now: int = 0
    open_max: int = 0
    starts: list[float] = field(default_factory=list)  # seconds from request to the ``start`` event
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    rss_all_open: int = 0
    finished: bool = False


async def one(
    client: httpx.AsyncClient, token: str, session: str, opening: asyncio.Semaphore, run: Run
) -> None:
    await opening.acquire()
    waiting, started = True, time.perf_counter()
    names: list[str] = []
    deltas: list[str] = []
    done: dict = {}
    try:
        url = f"/api/sessions/{session}/messages/"
        headers = {**bearer(token), "Accept": "text/event-stream"}
        async with client.stream(
            "POST", url, json={"content": "Tell me slowly."}, headers=headers
        ) as response:
            if response.status_code != 200:
                run.errors[f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"] += 1
                return
            async for name, data in sse_events(response):
                names.append(name)
                if name == "start" and waiting:
                    waiting = False
                    opening.release()
                    run.starts.append(time.perf_counter() - started)
                    run.open_now += 1
                    run.open_max = max(run.open_max, run.open_now)
                elif name == "delta":
                    deltas.append(json.loads(data)["content"])
                elif name == "done":
                    done = json.loads(data)["message"]
    except httpx.HTTPError as exc:
        run.errors[f"{type(exc).__name__}: {exc}"] += 1
        return
    finally:
        if waiting:
            opening.release()
        else:
            run.open_now -= 1
    if names != ["start", *["delta"] * len(CHUNKS), "done"] or deltas != CHUNKS:
        run.errors["events or deltas out of order, missing or extra"] += 1
    elif done.get("status") != "complete" or done.get("content") != "".join(CHUNKS):
        run.errors[f"done message not complete: {done.get('status')!r}"] += 1
    else:
        run.ok += 1


async def sample(pid: int, run: Run) -> None:
    while not run.finished:
        if run.open_now == run.streams:
            run.rss_all_open = max(run.rss_all_open, proc_status(pid)["VmRSS"])
        await asyncio.sleep(0.05)


async def streams(url: str, tokens: list[str], opening: int, run: Run, pid: int) -> None:
    async with many_streams_client(url, len(tokens)) as client:
        sessions = await create_sessions(client, tokens)
        sampler = asyncio.create_task(sample(pid, run))
        gate = asyncio.Semaphore(opening)
        await asyncio.gather(*(one(client, t, s, gate, run) for t, s in zip(tokens, sessions, strict=True)))
        run.finished = True
        await sampler


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--opening", type=int, default=32, help="requests awaiting their start event at once")
    parser.add_argument("--chunk-delay", type=float, default=2.0, help="seconds between chunks")
    parser.add_argument("--warmup", type=int, default=20, help="quick streams before the baseline")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE, help="dropped and created afresh")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    n = args.streams
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * n + 256:
        if hard < 2 * n + 256:
            sys.exit(f"ulimit -n is {soft} (hard {hard}); {n} streams need about {2 * n + 256}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2 * n + 256, hard))
    print("machine:", json.dumps(machine()))
    with FakeUpstream(CHUNKS, chunk_delay=0.001) as fake:
        env = server_env(args.database_url, fake.base_url)
        reset_database(args.database_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        tokens = seed_tokens(env, n + args.warmup, "cap")
        with Server(env, backlog=max(2048, n + 64)) as server:
            warm = Run(args.warmup)
            asyncio.run(streams(server.url, tokens[: args.warmup], args.opening, warm, server.pid))
            fake.configure(chunks=CHUNKS, chunk_delay=args.chunk_delay, first_chunk_delay=args.chunk_delay)
            time.sleep(1)
            baseline = proc_status(server.pid)["VmRSS"]
            run = Run(n)
            cpu_before, started = cpu_seconds(server.pid), time.monotonic()
            asyncio.run(streams(server.url, tokens[args.warmup :], args.opening, run, server.pid))
            cpu, seconds = cpu_seconds(server.pid) - cpu_before, time.monotonic() - started
        audit = manage(env, "audit_wallets", check=False)
    per_stream = (run.rss_all_open - baseline) / n if run.rss_all_open else float("nan")
    figures = {
        "streams": n,
        "ok": run.ok,
        "errors": dict(run.errors),
        "warmup_errors": dict(warm.errors),
        "open_max": run.open_max,
        "start_p50_ms": round(percentile(run.starts, 50) * 1000, 1),
        "start_p99_ms": round(percentile(run.starts, 99) * 1000, 1),
        "rss_baseline_mib": round(baseline / 1024, 1),
        "rss_all_open_mib": round(run.rss_all_open / 1024, 1),
        "kb_per_stream": round(per_stream, 1),
        "worker_cpu_ms_per_stream": round(cpu / n * 1000, 1),
        "seconds": round(seconds, 1),
        "audit": audit.stdout.strip(),
    }
    print(json.dumps(figures, indent=2))
    passed = (
        run.ok == n == run.open_max and not run.errors and per_stream <= TARGET_KB and audit.returncode == 0
    )
    print(
        f"target ({n} ok, all open at once, <= {TARGET_KB} KB each, audit clean):",
        "PASS" if passed else "FAIL",
    )
    write_json(args.json, {"machine": machine(), **figures})
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
