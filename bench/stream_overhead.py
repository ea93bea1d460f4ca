#!/usr/bin/env python
"""What the API adds to a streamed reply: time to first token and total time, API minus direct.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_streams \\
        .venv/bin/python bench/stream_overhead.py [--levels 1x200,32x20] [--rounds 4]

Three processes, so that no two share a GIL:

* the fake upstream (``chats/tests/fake_openai.py``, the OpenAI streaming
  wire format) answering every chat completion with the same reply: 50
  word-sized chunks, 2 ms apart (``--chunks``, ``--chunk-delay``);
* the project under ``uvicorn config.asgi:application``, one worker,
  ``LLM_PROVIDER=openai`` pointed at the fake;
* this process, the load generator (asyncio + httpx).

Each client has its own user (registered through ``POST /auth/register``,
so no two clients contend for a wallet row) and posts messages to
``POST /api/sessions/{id}/messages/``, starting a new session every
``--turns`` messages so the prompt carries a little history but does not
grow through the run. The *direct* path is the same client streaming the
same kind of request (system prompt, the message, ``stream_options``)
straight to the fake's ``/v1/chat/completions``. Both paths are read by the
same SSE parser, and each request is checked: every delta in order, then
``done`` (API) or ``[DONE]`` (direct).

Measured per request, from sending it: TTFT, until the first content delta
arrives, and total, until the response has ended (for the API: after the
``done`` event, so it includes storing the reply and settling the wallet).
For each concurrency level (N clients, each sending its requests one after
another) the two paths run in alternating rounds, so drift hits both alike.
The *added* latency at a percentile is the API's percentile minus the direct
path's. Targets (issue 4): added p50 <= 4 ms and p99 <= 15 ms at 1 client,
p99 <= 50 ms at 32 clients, for TTFT and for total. The exit status is 1
when a target is missed or a request failed.

The database is ``--database-url``, else ``DATABASE_URL``, else a throwaway
SQLite file; PostgreSQL is the intended measurement (the database is created
if missing and migrated; each run adds its own users).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
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
    create_session,
    is_postgres,
    machine,
    percentile,
    prepare_database,
    register_users,
    resolve_database_url,
    run_id,
    server_env,
    sse_events,
)

SYSTEM_PROMPT = "You are a helpful assistant."  # the ``general`` category's, as migrated
QUESTION = "Could you explain, briefly, how a streamed reply gets from the model to my screen?"
REPLY = (
    "The model writes its answer one token at a time and the server relays each piece as soon as it "
    "arrives, so the first words appear on your screen long before the last ones are written. Each "
    "piece travels as a small event over one open HTTP response, and when the model is done the server "
    "stores the whole reply, settles the cost, and says so in a final event that closes the stream for you."
)
TARGETS = {1: (4.0, 15.0), 32: (None, 50.0)}  # clients: (added p50, added p99) in ms


@dataclass
class Sample:
    ttft: float
    total: float
    start: float = 0.0  # API only: until the ``start`` event (the reply is reserved and stored)


@dataclass
class Level:
    clients: int
    iterations: int
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {"direct": [], "api": []})
    errors: dict[str, list[str]] = field(default_factory=lambda: {"direct": [], "api": []})
    cpu: dict[str, Counter[str]] = field(default_factory=lambda: {"direct": Counter(), "api": Counter()})
    seconds: float = 0.0


class BadStream(Exception):
    pass


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="default: $DATABASE_URL, else a temporary SQLite file")
    parser.add_argument(
        "--levels",
        default="1x200,32x20",
        help="concurrency levels as CLIENTSxREQUESTS_PER_CLIENT, comma separated (default 1x200,32x20)",
    )
    parser.add_argument("--rounds", type=int, default=4, help="alternating direct/API rounds per level")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per client and path first")
    parser.add_argument("--chunks", type=int, default=50, help="content chunks in the reply (default 50)")
    parser.add_argument("--chunk-delay", type=float, default=0.002, help="seconds between chunks (0.002)")
    parser.add_argument("--first-chunk-delay", type=float, default=0.002, help="seconds before the first")
    parser.add_argument(
        "--spread",
        type=float,
        default=-1.0,
        help="stagger the clients' starts over S seconds (default: one reply's length; 0: all at once)",
    )
    parser.add_argument("--turns", type=int, default=5, help="messages per session before a new one")
    parser.add_argument("--pool-max", type=int, help="DATABASE_POOL_MAX for the worker (app default 10)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    try:
        args.levels = [tuple(int(n) for n in level.split("x")) for level in args.levels.split(",")]
    except ValueError:
        parser.error("--levels: use CLIENTSxREQUESTS, such as 1x200,32x20")
    return args


def _reply_chunks(count: int) -> list[str]:
    """``count`` word-sized deltas of the reply (each after the first with its leading space)."""
    vocabulary = REPLY.split(" ")
    words = [vocabulary[i % len(vocabulary)] for i in range(count)]
    return [words[0], *(" " + word for word in words[1:])]


class Client:
    """One simulated user: an httpx client for each path, and a session it rotates."""

    def __init__(
        self, account: Account, api_url: str, upstream: str, expected: list[str], turns: int
    ) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.api = httpx.AsyncClient(base_url=api_url, timeout=60, limits=limits)
        self.upstream = httpx.AsyncClient(base_url=upstream, timeout=60, limits=limits)
        self.account = account
        self.expected = expected
        self.turns = turns
        self.sent = 0
        self.direct_body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": QUESTION}],
            "max_tokens": 256,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.upstream.aclose()

    async def via_api(self) -> Sample:
        if self.sent and self.sent % self.turns == 0:  # a fresh conversation, untimed
            self.account.session = await create_session(self.api, self.account)
        self.sent += 1
        deltas: list[str] = []
        last = ""
        ttft = None
        opened = 0.0
        started = time.perf_counter()
        async with self.api.stream(
            "POST",
            f"/api/sessions/{self.account.session}/messages/",
            json={"content": QUESTION},
            headers=self.account.headers,
        ) as response:
            if response.status_code != 200:
                raise BadStream(f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            async for name, data in sse_events(response):
                if name == "delta":
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    deltas.append(json.loads(data)["content"])
                elif name == "start":
                    opened = time.perf_counter() - started
                elif name == "error":
                    raise BadStream(f"error event: {data[:200]!r}")
                last = name
        total = time.perf_counter() - started
        if deltas != self.expected or last != "done" or ttft is None:
            raise BadStream(
                f"{len(deltas)} deltas (in order: {deltas == self.expected}), last event {last!r}"
            )
        return Sample(ttft, total, opened)

    async def direct(self) -> Sample:
        deltas: list[str] = []
        finished = False
        ttft = None
        started = time.perf_counter()
        async with self.upstream.stream("POST", "/chat/completions", json=self.direct_body) as response:
            if response.status_code != 200:
                raise BadStream(f"HTTP {response.status_code}")
            async for _, data in sse_events(response):
                if data == b"[DONE]":
                    finished = True
                    continue
                choices = json.loads(data)["choices"]
                if choices and (content := choices[0]["delta"].get("content")):
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    deltas.append(content)
        total = time.perf_counter() - started
        if deltas != self.expected or not finished or ttft is None:
            raise BadStream(f"{len(deltas)} deltas (in order: {deltas == self.expected}), [DONE]: {finished}")
        return Sample(ttft, total)


async def _phase(clients: list[Client], path: str, count: int, level: Level | None, spread: float) -> None:
    """Every client sends ``count`` requests on ``path``, one after another, all clients at once.

    Client ``i`` starts ``spread * i / N`` seconds late (untimed), so that N
    users' requests arrive spread over a reply's length instead of in bursts
    of N that identical replies would keep in lockstep.
    """

    async def loop(index: int, client: Client) -> None:
        send: Callable[[], Awaitable[Sample]] = client.via_api if path == "api" else client.direct
        await asyncio.sleep(spread * index / len(clients))
        for _ in range(count):
            try:
                sample = await send()
            except (BadStream, httpx.HTTPError) as exc:
                if level is not None:
                    level.errors[path].append(repr(exc))
                continue
            if level is not None:
                level.samples[path].append(sample)

    await asyncio.gather(*(loop(index, client) for index, client in enumerate(clients)))


async def _measure(
    level: Level, accounts: list[Account], api_url: str, upstream: str, meter: CpuMeter, args
) -> None:
    expected = _reply_chunks(args.chunks)
    clients = [Client(account, api_url, upstream, expected, args.turns) for account in accounts]
    try:
        spread = args.spread
        if spread < 0:  # one reply's length
            spread = args.first_chunk_delay + (args.chunks - 1) * args.chunk_delay
        await _phase(clients, "direct", args.warmup, None, spread)
        await _phase(clients, "api", args.warmup, None, spread)
        started = time.perf_counter()
        for number, count in enumerate(_split(level.iterations, args.rounds)):
            order = ("direct", "api") if number % 2 == 0 else ("api", "direct")
            for path in order:
                gc.collect()
                meter.start()
                await _phase(clients, path, count, level, spread)
                level.cpu[path].update(meter.stop())
        level.seconds = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _summary(level: Level) -> dict:
    figures: dict = {"clients": level.clients, "requests_per_client": level.iterations}
    for path in ("direct", "api"):
        samples = level.samples[path]
        figures[path] = {
            "requests": len(samples),
            "errors": len(level.errors[path]),
            **{
                f"{metric}_p{q}_ms": round(percentile([getattr(s, metric) for s in samples], q) * 1000, 3)
                for metric in ("ttft", "total")
                for q in (50, 99)
            },
        }
    figures["added"] = {
        key: round(figures["api"][key] - figures["direct"][key], 3)
        for key in figures["api"]
        if key.endswith("ms")
    }
    starts = [sample.start for sample in level.samples["api"]]
    figures["api"]["start_p50_ms"] = round(percentile(starts, 50) * 1000, 3)
    figures["api"]["start_p99_ms"] = round(percentile(starts, 99) * 1000, 3)
    figures["seconds"] = round(level.seconds, 1)
    # CPU: the worker's per API request; and how busy the rest of the machine was meanwhile.
    api_cpu, requests = level.cpu["api"], max(len(level.samples["api"]), 1)
    figures["server_cpu_ms_per_reply"] = round(api_cpu["server"] / requests * 1000, 2)
    figures["postgres_cpu_ms_per_reply"] = round(api_cpu["postgres"] / requests * 1000, 2)
    wall = sum(level.cpu[path]["wall"] for path in ("api", "direct")) or 1.0
    for name in ("others", "generator", "fake"):
        used = sum(level.cpu[path][name] for path in ("api", "direct"))
        figures[f"{name}_cores"] = round(used / wall, 2)
    figures["server_cores_during_api"] = round(api_cpu["server"] / (api_cpu["wall"] or 1.0), 2)
    stolen = sum(level.cpu[path]["steal"] for path in ("api", "direct"))
    figures["steal_percent"] = round(100 * stolen / (wall * (os.cpu_count() or 1)), 1)
    return figures


def _report(figures: dict) -> bool:
    clients = figures["clients"]
    print(f"\n== {clients} concurrent client(s), {figures['requests_per_client']} requests each per path ==")
    print(f"{'':8}{'TTFT p50':>10}{'TTFT p99':>10}{'total p50':>11}{'total p99':>11}   ms")
    for row in ("direct", "api", "added"):
        values = figures[row]
        cells = [values[f"{m}_p{q}_ms"] for m in ("ttft", "total") for q in (50, 99)]
        print(f"{row:8}{cells[0]:10.2f}{cells[1]:10.2f}{cells[2]:11.2f}{cells[3]:11.2f}")
    print(
        f"(API, until the start event, i.e. authenticated, reserved and stored: "
        f"p50 {figures['api']['start_p50_ms']:.2f}, p99 {figures['api']['start_p99_ms']:.2f} ms)"
    )
    errors = figures["api"]["errors"] + figures["direct"]["errors"]
    print(
        f"requests: {figures['api']['requests']} api, {figures['direct']['requests']} direct; "
        f"errors: {errors}"
    )
    print(
        f"CPU per API reply: worker {figures['server_cpu_ms_per_reply']} ms, PostgreSQL "
        f"{figures['postgres_cpu_ms_per_reply']} ms; worker busy {figures['server_cores_during_api']} "
        f"cores during the API rounds; load generator {figures['generator_cores']}, fake "
        f"{figures['fake_cores']}, other processes on the machine {figures['others_cores']} cores; "
        f"CPU stolen by the hypervisor {figures['steal_percent']}%"
    )
    passed = errors == 0
    p50_target, p99_target = TARGETS.get(clients, (None, None))
    for metric in ("ttft", "total"):
        checks = []
        if p50_target is not None:
            checks.append(
                (
                    f"added p50 {figures['added'][f'{metric}_p50_ms']:.2f} <= {p50_target}",
                    figures["added"][f"{metric}_p50_ms"] <= p50_target,
                )
            )
        if p99_target is not None:
            checks.append(
                (
                    f"added p99 {figures['added'][f'{metric}_p99_ms']:.2f} <= {p99_target}",
                    figures["added"][f"{metric}_p99_ms"] <= p99_target,
                )
            )
        for text, ok in checks:
            print(f"target {metric:5}: {text} ms  {'PASS' if ok else 'FAIL'}")
            passed = passed and ok
    return passed


def main() -> int:
    args = _parse()
    database_url = resolve_database_url(args.database_url)
    scenario = {
        "chunks": _reply_chunks(args.chunks),
        "chunk_delay": args.chunk_delay,
        "first_chunk_delay": args.first_chunk_delay,
    }
    most_clients = max(clients for clients, _ in args.levels)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    print("machine:", json.dumps(machine()), "| commit:", commit.stdout.strip())
    print(f"database: {database_url.split('@')[-1]}{'' if is_postgres(database_url) else ' (SQLite!)'}")
    print(
        f"reply: {args.chunks} chunks, first after {args.first_chunk_delay * 1000:g} ms, "
        f"then every {args.chunk_delay * 1000:g} ms"
    )
    results = []
    with FakeUpstream(scenario) as fake:
        pool = {"DATABASE_POOL_MAX": args.pool_max} if args.pool_max else {}
        env = server_env(database_url, fake.base_url, **pool)
        prepare_database(database_url, env)
        with Server(env) as server:
            print("server:", " ".join(server.command[1:]), f"(pid {server.pid})")
            accounts = asyncio.run(register_users(server.url, most_clients, f"ovh-{run_id()}"))
            for clients, iterations in args.levels:
                level = Level(clients, iterations)
                meter = CpuMeter(server=server.pid, fake=fake.pid, generator=os.getpid())
                asyncio.run(_measure(level, accounts[:clients], server.url, fake.base_url, meter, args))
                figures = _summary(level)
                figures["passed"] = _report(figures)
                for path in ("direct", "api"):
                    for error in level.errors[path][:5]:
                        print(f"  {path} error: {error}")
                results.append(figures)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "levels": results}, indent=2) + "\n")
    return 0 if all(figures["passed"] for figures in results) else 1


if __name__ == "__main__":
    sys.exit(main())
