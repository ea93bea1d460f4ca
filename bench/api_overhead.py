#!/usr/bin/env python
"""Requests per second of two API reads against a bare view of a stock Django project.

    apt-get install wrk
    .venv/bin/python bench/api_overhead.py [--seconds 10] [--rounds 3] [--variant ../wt-other]

Two uvicorn workers, the same command for both (one worker each): Parley
(production settings, DEBUG off, PostgreSQL from ``--database-url``, dropped
and created afresh) and the yardstick, a project made here and now by
``django-admin startproject`` (its settings and default middleware as
generated, no Parley code) whose one added URL, ``GET /bench/bare``, is a sync
view returning a small ``JsonResponse``. One user with 20 sessions; ``wrk``
(``--connections`` keep-alive connections, 2 threads) loads the bare view,
``GET /api/wallet/`` and ``GET /api/sessions/`` in turn (the order rotating),
``--seconds`` each, ``--rounds`` times after a warm-up. With ``--variant
TREE`` a third worker runs another worktree of Parley on the same database,
and its ``GET /api/sessions/`` joins the rounds: the ratio variant ÷ this
tree is printed per round. Reported per endpoint: the median round's
requests per second, its ratio to the bare view, latency p50/p99, and CPU
per request of the worker and of the database's PostgreSQL backends.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Server,
    bearer,
    cpu_seconds,
    machine,
    manage,
    median_range,
    postgres_cpu,
    register,
    reset_database,
    server_env,
    steal_seconds,
    write_json,
)

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/parley_bench_api"
SESSIONS = 20
ENDPOINTS = [("wallet", "/api/wallet/"), ("sessions (20)", "/api/sessions/")]
BARE_VIEW = """

from django.http import JsonResponse  # noqa: E402


def bare(request):
    return JsonResponse({"status": "ok"})


urlpatterns.append(path("bench/bare", bare))  # noqa: F821
"""


def stock_project(parent: Path) -> Path:
    """``django-admin startproject yardstick``, plus the bare view; the project's directory."""
    directory = parent / "stock"
    directory.mkdir()
    django_admin = Path(sys.executable).with_name("django-admin")
    subprocess.run([str(django_admin), "startproject", "yardstick", str(directory)], check=True)
    with (directory / "yardstick" / "urls.py").open("a") as urls:
        urls.write(BARE_VIEW)
    return directory


WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50": %d, "p99": %d, "failed": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def load(args, url: str, token: str, seconds: float, lua: Path, pid: int | None = None) -> dict:
    """One wrk run against ``url``: requests per second, latency (ms), CPU per request (ms)."""
    command = ["wrk", "-t2", f"-c{args.connections}", f"-d{seconds:g}s", "-s", str(lua)]
    command += ["-H", f"Authorization: Bearer {token}", "-H", "Accept: application/json", url]
    before = (cpu_seconds(pid), postgres_cpu(args.database_url), steal_seconds()) if pid else None
    output = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    result = json.loads(line.removeprefix("WRK_JSON "))
    requests = max(result["requests"], 1)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    if before:
        result["worker_ms"] = (cpu_seconds(pid) - before[0]) * 1000 / requests
        result["postgres_ms"] = (postgres_cpu(args.database_url) - before[1]) * 1000 / requests
        result["steal_percent"] = 100 * (steal_seconds() - before[2]) / (2 * seconds)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3, help="seconds per endpoint before measuring")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--variant", type=Path, help="another worktree whose GET /api/sessions/ is measured too"
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE, help="dropped and created afresh")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")

    workdir = Path(tempfile.mkdtemp(prefix="parley-api-"))
    lua = workdir / "summary.lua"
    lua.write_text(WRK_SCRIPT)
    env = server_env(args.database_url)
    stock_env = {key: value for key, value in env.items() if key != "DJANGO_SETTINGS_MODULE"}
    reset_database(args.database_url)
    manage(env, "migrate", "--noinput", "-v", "0")
    print("machine:", json.dumps(machine()))
    print(f"wrk: {args.connections} connections, {args.seconds:g} s x {args.rounds} rounds per endpoint")
    yardstick = Server(
        stock_env,
        tree=stock_project(workdir),
        app="yardstick.asgi:application",
        ready_path="/bench/bare",
        log=workdir / "stock.log",
    )
    with Server(env, log=workdir / "uvicorn.log") as server, yardstick:
        token = register(server.url, "bench-api")
        for index in range(SESSIONS):
            body = {"category": "general", "title": f"Session {index}"}
            httpx.post(f"{server.url}/api/sessions/", json=body, headers=bearer(token)).raise_for_status()
        endpoints = {"bare view": (f"{yardstick.url}/bench/bare", yardstick.pid)}
        endpoints |= {name: (f"{server.url}{path}", server.pid) for name, path in ENDPOINTS}
        variant = (
            Server(env, tree=args.variant, log=workdir / "variant.log").__enter__() if args.variant else None
        )
        try:
            if variant:
                endpoints["sessions (variant)"] = (f"{variant.url}/api/sessions/", variant.pid)
            for name, (url, _) in endpoints.items():
                answer = httpx.get(url, headers=bearer(token))
                answer.raise_for_status()
                if "sessions" in name:
                    assert len(answer.json()["results"]) == SESSIONS, answer.text
                load(args, url, token, args.warmup, lua)
            results: dict[str, list[dict]] = {name: [] for name in endpoints}
            for number in range(args.rounds):
                names = (
                    list(endpoints)[number % len(endpoints) :] + list(endpoints)[: number % len(endpoints)]
                )
                for name in names:  # the order rotates each round, so drift hits every endpoint alike
                    url, pid = endpoints[name]
                    result = load(args, url, token, args.seconds, lua, pid)
                    results[name].append(result)
                    print(
                        f"  {number + 1} {name:<20} {result['rps']:6.0f} req/s  "
                        f"p50 {result['p50'] / 1000:6.1f} ms  p99 {result['p99'] / 1000:6.1f} ms  "
                        f"CPU/req worker {result['worker_ms']:.2f} ms, "
                        f"PostgreSQL {result['postgres_ms']:.2f} ms  failed {result['failed']}"
                        f"  (steal {result['steal_percent']:.0f}%)"
                    )
        finally:
            if variant:
                variant.__exit__()

    bare = statistics.median(result["rps"] for result in results["bare view"])
    print(
        f"\n| endpoint | req/s (median of {args.rounds}) | ÷ bare | p50 ms | p99 ms "
        "| worker CPU ms/req | PG CPU ms/req |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, runs in results.items():
        rps = statistics.median(run["rps"] for run in runs)
        cells = [
            statistics.median(run[key] for run in runs) for key in ("p50", "p99", "worker_ms", "postgres_ms")
        ]
        print(
            f"| {name} | {rps:.0f} | {rps / bare:.2f} | {cells[0] / 1000:.1f} | {cells[1] / 1000:.1f} "
            f"| {cells[2]:.2f} | {cells[3]:.2f} |"
        )
    if variant:
        pairs = zip(results["sessions (variant)"], results["sessions (20)"], strict=True)
        ratios = [mine["rps"] / theirs["rps"] for mine, theirs in pairs]
        print(f"\nGET /api/sessions/ req/s, variant ÷ this tree, per round: {median_range(ratios)}")
    write_json(args.json, {"machine": machine(), "results": results})
    failed = sum(run["failed"] for runs in results.values() for run in runs)
    print(f"failed requests: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
