#!/usr/bin/env python
"""Requests per second and latency of two API reads against a bare Django view, on one server.

    .venv/bin/python bench/api_overhead.py [--seconds 10] [--rounds 3] [--connections 32]

The server is ``uvicorn config.asgi:application``, one worker, production
settings (DEBUG off) on PostgreSQL (``--database-url``, default
``postgres://postgres@127.0.0.1:5432/parley_bench_api``, dropped and created
afresh), with ``DJANGO_SETTINGS_MODULE=bench.settings_bench``: the production
URLconf plus ``GET /bench/bare``, a sync view returning a small
``JsonResponse`` behind the same middleware (``bench/urls_bench.py``). One
user with 20 chat sessions. Measured, with the user's bearer token:

* ``GET /bench/bare``: the baseline (the token is sent but nothing reads it);
* ``GET /api/wallet/``: JWT authentication, the wallet, its serializer;
* ``GET /api/sessions/``: the first page, 20 sessions with their message counts.

The load generator is ``wrk`` (Debian package ``wrk``) in its own process,
``--connections`` keep-alive connections (default 32) over 2 threads; each
endpoint runs ``--seconds`` per round, the endpoints in turn, ``--rounds``
times, after a warm-up; the table shows the median round of each. Without
``wrk`` (or with ``--client python``) a small asyncio HTTP/1.1 client in a
separate process does the same, less efficiently (it needs CPU the server
would otherwise get, so its figures are lower). Target (issue 5): each API
endpoint at least half the bare view's throughput; the exit status is 1 when
it is missed or any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from _common import (  # bench/ is on sys.path
    cpu_seconds,
    free_port,
    machine,
    percentile,
    reset_database,
    steal_seconds,
)

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/parley_bench_api"
ENDPOINTS = [("bare view", "/bench/bare"), ("wallet", "/api/wallet/"), ("sessions (20)", "/api/sessions/")]
SESSIONS = 20

# wrk prints this JSON line when a run is done (latencies in microseconds).
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# --- the fallback load generator (its own process) ---------------------------------------------


async def _python_client(url: str, seconds: float, connections: int, token: str) -> dict:
    """``connections`` keep-alive HTTP/1.1 connections, each sending GETs back to back."""
    parts = urlsplit(url)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.monotonic() < deadline:
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - sent)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.monotonic() - started
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        **{f"p{q}": int(percentile(latencies, q) * 1e6) for q in (50, 90, 99)},
        "max": int(max(latencies) * 1e6),
        "status": errors,
    }


# --- helpers -----------------------------------------------------------------------------------


def loadavg() -> str:
    with open("/proc/loadavg") as load:
        return " ".join(load.read().split()[:3])


def backends_cpu(database_url: str) -> dict[int, float]:
    """CPU time of each PostgreSQL backend connected to the benchmark's database, by pid."""
    import psycopg

    parts = urlsplit(database_url)
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (parts.path.lstrip("/"),)
        ).fetchall()
    found = {}
    for (pid,) in rows:
        with contextlib.suppress(OSError):
            found[pid] = cpu_seconds(pid)
    return found


def load_run(args, url: str, token: str, seconds: float, lua: Path, server_pid: int | None = None) -> dict:
    """One load run against ``url``: the wrk (or fallback) summary as a dict, with CPU per request."""
    if args.client == "wrk":
        command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s", "--latency"]
        command += ["-H", f"Authorization: Bearer {token}", "-H", "Accept: application/json"]
        command += ["-s", str(lua), url]
    else:
        command = [PYTHON, __file__, "--load-client", url, f"--seconds={seconds}"]
        command += [f"--connections={args.connections}", f"--token={token}"]
    steal_before = steal_seconds()
    worker_before = cpu_seconds(server_pid) if server_pid else 0.0
    backends_before = backends_cpu(args.database_url) if server_pid else {}
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    worker_after = cpu_seconds(server_pid) if server_pid else 0.0
    backends_after = backends_cpu(args.database_url) if server_pid else {}
    # A backend that started meanwhile counts whole; one that ended is lost (the pool keeps them).
    postgres = sum(cpu - backends_before.get(pid, 0.0) for pid, cpu in backends_after.items())
    line = next((line for line in done.stdout.splitlines() if line.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no summary from the load generator:\n{done.stdout}")
    result = json.loads(line.removeprefix("WRK_JSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["worker_ms"] = (worker_after - worker_before) * 1000 / max(1, result["requests"])
    result["postgres_ms"] = postgres * 1000 / max(1, result["requests"])
    result["load"] = loadavg().split()[0]
    result["steal"] = 100 * (steal_seconds() - steal_before) / (seconds * (os.cpu_count() or 1))
    result["failed"] = sum(result.get(key, 0) for key in ("connect", "read", "write", "status", "timeout"))
    return result


# --- the run -------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    import httpx

    if args.client == "wrk" and shutil.which("wrk") is None:
        print("wrk not found (apt-get install wrk); using the Python load generator", file=sys.stderr)
        args.client = "python"
    if urlsplit(args.database_url).scheme not in {"postgres", "postgresql"}:
        print("api_overhead measures on PostgreSQL (--database-url postgres://...)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="parley-api-overhead-"))
    lua = workdir / "summary.lua"
    lua.write_text(WRK_SCRIPT)
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings_bench",
            "DATABASE_URL": args.database_url,
            "SECRET_KEY": "api-overhead-" + secrets.token_urlsafe(40),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LLM_PROVIDER": "echo",
            "AUTH_THROTTLE_RATE": "1000/min",
            "JWT_ACCESS_MINUTES": "600",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.pop("REDIS_URL", None)
    reset_database(args.database_url)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [PYTHON, "-m", "uvicorn", "config.asgi:application", "--host=127.0.0.1", f"--port={port}"]
    command += ["--workers=1", "--no-access-log", "--log-level=warning", "--backlog=2048"]
    log = (workdir / "uvicorn.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {server.returncode}; see {workdir}/uvicorn.log")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 60 s")
            time.sleep(0.2)

        with httpx.Client(base_url=base, timeout=30) as client:
            login = f"bench-{secrets.token_hex(4)}"
            answer = client.post(
                "/auth/register", json={"login_id": login, "password": secrets.token_urlsafe(16)}
            )
            answer.raise_for_status()
            token = answer.json()["access"]
            headers = {"Authorization": f"Bearer {token}"}
            for index in range(SESSIONS):
                client.post(
                    "/api/sessions/",
                    json={"category": "general", "title": f"Session {index}"},
                    headers=headers,
                ).raise_for_status()
            for _, path in ENDPOINTS:
                client.get(path, headers=headers).raise_for_status()
            page = client.get("/api/sessions/", headers=headers).json()
            assert len(page["results"]) == SESSIONS, page
            sizes = {path: len(client.get(path, headers=headers).content) for _, path in ENDPOINTS}

        print(f"machine: {machine()}; load average before: {loadavg()}")
        print(
            f"server: uvicorn, 1 worker, DEBUG off, PostgreSQL; load: {args.client}, "
            f"{args.connections} connections, {args.seconds:g} s x {args.rounds} rounds per endpoint"
        )
        for _, path in ENDPOINTS:  # warm-up: connections, pools, caches
            load_run(args, base + path, token, args.warmup, lua)
        results: dict[str, list[dict]] = {path: [] for _, path in ENDPOINTS}
        for round_number in range(args.rounds):
            for name, path in ENDPOINTS:
                result = load_run(args, base + path, token, args.seconds, lua, server.pid)
                results[path].append(result)
                print(
                    f"  {round_number + 1} {name:<14} {result['rps']:6.0f} req/s  "
                    f"p50 {result['p50'] / 1000:6.1f} ms  p99 {result['p99'] / 1000:6.1f} ms  "
                    f"CPU/req worker {result['worker_ms']:.2f} ms, PG {result['postgres_ms']:.2f} ms  "
                    f"failed {result['failed']}  (load {result['load']}, steal {result['steal']:.0f}%)"
                )
        print(f"load average after: {loadavg()}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()

    bare_rps = statistics.median(r["rps"] for r in results["/bench/bare"])
    failures = []
    print()
    print(
        f"| endpoint | bytes | req/s (median of {args.rounds}) | vs bare | p50 ms | p99 ms "
        "| worker CPU ms/req | PostgreSQL CPU ms/req | failed |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for _, path in ENDPOINTS:
        runs = results[path]
        rps = statistics.median(r["rps"] for r in runs)
        p50 = statistics.median(r["p50"] for r in runs) / 1000
        p99 = statistics.median(r["p99"] for r in runs) / 1000
        failed = sum(r["failed"] for r in runs)
        worker_ms = statistics.median(r["worker_ms"] for r in runs)
        postgres_ms = statistics.median(r["postgres_ms"] for r in runs)
        ratio = rps / bare_rps
        print(
            f"| `GET {path}` | {sizes[path]} | {rps:.0f} | {ratio:.2f} | {p50:.1f} | {p99:.1f} "
            f"| {worker_ms:.2f} | {postgres_ms:.2f} | {failed} |"
        )
        if failed:
            failures.append(f"{path}: {failed} failed requests")
        if path != "/bench/bare" and ratio < 0.5:
            failures.append(f"{path}: {ratio:.2f} of the bare view's throughput (target 0.5)")
    print()
    if failures:
        for failure in failures:
            print(f"MISSED: {failure}")
        return 1
    print("target met: each API endpoint serves at least half the bare view's requests per second")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3, help="seconds per endpoint before measuring")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE))
    parser.add_argument("--load-client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_client:
        summary = asyncio.run(_python_client(args.load_client, args.seconds, args.connections, args.token))
        print("WRK_JSON " + json.dumps(summary))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
