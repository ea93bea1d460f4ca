#!/usr/bin/env python
"""A streamed reply through Parley against the same reply through the LiteLLM proxy, in one run.

    .venv/bin/python bench/peer_litellm.py --runs 3
    .venv/bin/python bench/peer_litellm.py --runs 3 --variant ../wt-other   # + another tree

Processes, so that no two share a GIL: the fake upstream
(``python -m tests.fakes.openai_upstream``: 20 word-sized chunks, 2 ms apart);
Parley (``uvicorn config.asgi:application``, one worker, PostgreSQL, DEBUG
off, ``LLM_PROVIDER=openai`` at the fake); the LiteLLM proxy (its own
virtualenv, ``--litellm``, one worker, one ``model_list`` entry: the fake as an
OpenAI-compatible model, ``master_key`` auth, no database); with
``--variant TREE``, a second Parley from another git worktree on the same
database; and this process, the load generator (asyncio + httpx).

The paths, in interleaved rounds (the order rotates each round, so drift hits
them alike): *direct*, the fake's ``/v1/chat/completions``; *parley*,
``POST /api/sessions/{id}/messages/`` (SSE; a client per user, a new session
every 5 messages); *litellm*, the proxy's ``POST /chat/completions`` with
``stream``; *v1*, Parley's OpenAI API, ``POST /v1/chat/completions`` with
``stream`` and a personal key (``pk-…``, one per client, made with
``POST /api/keys/``; model ``general``, whose system prompt Parley adds, so
the body carries only the user's message and the upstream gets the same
prompt as through LiteLLM); *variant*. Every reply is checked: each delta in
order, then ``done`` or ``[DONE]``. At 1 client and at 32 concurrent clients, it records
the time to first token (TTFT: from sending to the first content delta).

Reported per path: added TTFT (the path's percentile minus direct's) p50 and
p99 at 1 client and p99 at 32 clients, and the server's CPU per reply (the
worker's utime + stime from ``/proc``, over all its rounds; for Parley the
PostgreSQL backends' CPU is printed beside it). Then the ratios Parley ÷
LiteLLM, v1 ÷ LiteLLM (and variant ÷ Parley), for each run, and their median and range
across ``--runs`` (the servers stay up between runs). Lower is better.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    ROOT,
    FakeUpstream,
    Process,
    Server,
    bearer,
    cpu_seconds,
    create_session,
    free_port,
    machine,
    manage,
    median_range,
    percentile,
    postgres_cpu,
    reset_database,
    seed_tokens,
    server_env,
    write_json,
)
from _sse import sse_events

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/parley_bench_peer"
# The proxy in a virtualenv of its own beside the checkout (its dependencies are not ours).
LITELLM = ROOT.parent / "litellm-venv" / "bin" / "litellm"
MASTER_KEY = "sk-bench-master-key"
MODEL = "gpt-4o-mini"
SYSTEM_PROMPT = "You are a helpful assistant."  # the ``general`` category's, as migrated
QUESTION = "Could you explain, briefly, how a streamed reply gets from the model to my screen?"
METRICS = ("added TTFT p50, 1 client", "added TTFT p99, 1 client", "added TTFT p99, 32 clients", "CPU/reply")

LITELLM_CONFIG = """
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {upstream}
      api_key: fake
general_settings:
  master_key: {key}
"""


def chunks(count: int) -> list[str]:
    """The reply's deltas, word-sized: ``" t0"``, ``" t1"``..."""
    return [f" t{index}" for index in range(count)]


class BadReply(Exception):
    pass


class Client:
    """One simulated user: a connection to each path, and for Parley a session it rotates."""

    def __init__(self, urls: dict[str, str], token: str, key: str, expected: list[str], turns: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.http = {
            path: httpx.AsyncClient(base_url=url, timeout=120, limits=limits) for path, url in urls.items()
        }
        self.token, self.key, self.expected, self.turns = token, key, expected, turns
        self.sessions: dict[str, tuple[str, int]] = {}
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": QUESTION}]
        self.completion = {
            "model": MODEL,
            "messages": messages,
            "max_tokens": 256,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        self.v1 = {**self.completion, "model": "general", "messages": messages[1:]}  # + the category's

    async def aclose(self) -> None:
        for client in self.http.values():
            await client.aclose()

    async def reply(self, path: str) -> float:
        """Send one message on ``path`` and read the whole reply; its TTFT in seconds."""
        http = self.http[path]
        if path in ("direct", "litellm"):
            request = http.stream(
                "POST", "/chat/completions", json=self.completion, headers=bearer(MASTER_KEY)
            )
        elif path == "v1":
            request = http.stream("POST", "/v1/chat/completions", json=self.v1, headers=bearer(self.key))
        else:
            session, sent = self.sessions.get(path, ("", 0))
            if sent % self.turns == 0:  # a fresh conversation, untimed
                session = await create_session(http, self.token)
            self.sessions[path] = (session, sent + 1)
            headers = {**bearer(self.token), "Accept": "text/event-stream"}
            request = http.stream(
                "POST", f"/api/sessions/{session}/messages/", json={"content": QUESTION}, headers=headers
            )
        deltas: list[str] = []
        ttft, last = None, ""
        started = time.perf_counter()
        async with request as response:
            if response.status_code != 200:
                raise BadReply(f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            async for name, data in sse_events(response):
                content = None
                if data == b"[DONE]":
                    last = "done"
                elif name == "delta":
                    content = json.loads(data)["content"]
                elif name == "message":
                    choices = json.loads(data).get("choices")
                    content = choices[0]["delta"].get("content") if choices else None
                elif name in ("done", "error"):
                    last = name
                if content:
                    ttft = ttft or time.perf_counter() - started
                    deltas.append(content)
        if deltas != self.expected or last != "done" or ttft is None:
            raise BadReply(
                f"{path}: {len(deltas)} deltas (in order: {deltas == self.expected}), end {last!r}"
            )
        return ttft


async def phase(
    clients: list[Client], path: str, count: int, spread: float, ttfts: list, errors: list
) -> None:
    """Every client sends ``count`` messages one after another; client i starts ``spread*i/N`` s late."""

    async def loop(index: int, client: Client) -> None:
        await asyncio.sleep(spread * index / len(clients))
        for _ in range(count):
            try:
                ttfts.append(await client.reply(path))
            except (BadReply, httpx.HTTPError) as exc:
                errors.append(repr(exc))

    await asyncio.gather(*(loop(index, client) for index, client in enumerate(clients)))


async def one_run(
    args, urls: dict[str, str], pids: dict[str, int], tokens: list[str], keys: list[str]
) -> dict:
    """One run: each level's rounds, paths interleaved; TTFT samples and CPU per path."""
    expected = chunks(args.chunks)
    spread = args.chunk_delay * (args.chunks + 1)  # one reply's length: clients out of lockstep
    ttft: dict[tuple[str, int], list[float]] = defaultdict(list)
    cpu: dict[str, float] = defaultdict(float)
    replies: dict[str, int] = defaultdict(int)
    errors: list[str] = []
    paths = list(urls)
    for clients_count, per_client in args.levels:
        clients = [Client(urls, tokens[i], keys[i], expected, args.turns) for i in range(clients_count)]
        try:
            for path in paths:  # warm-up: connections, pools, caches
                await phase(clients, path, args.warmup, spread, [], errors)
            for number in range(args.rounds):
                count = per_client // args.rounds + (number < per_client % args.rounds)
                for path in paths[number % len(paths) :] + paths[: number % len(paths)]:
                    before = cpu_seconds(pids[path]) if path in pids else 0.0
                    pg_before = postgres_cpu(args.database_url) if path in pids else 0.0
                    samples: list[float] = []
                    await phase(clients, path, count, spread, samples, errors)
                    if path in pids:
                        cpu[path] += cpu_seconds(pids[path]) - before
                        cpu[f"{path} PostgreSQL"] += postgres_cpu(args.database_url) - pg_before
                    ttft[path, clients_count] += samples
                    replies[path] += len(samples)
        finally:
            for client in clients:
                await client.aclose()
    return {"ttft": ttft, "cpu": cpu, "replies": replies, "errors": errors}


def summarize(run: dict, paths: list[str], levels: list[tuple[int, int]]) -> dict[str, dict[str, float]]:
    """Per path: added TTFT (ms) at each level's p50 and p99, CPU ms per reply."""
    table: dict[str, dict[str, float]] = {}
    for path in paths:
        row: dict[str, float] = {}
        for clients, _ in levels:
            for q in (50, 99):
                mine = percentile(run["ttft"][path, clients], q) * 1000
                direct = percentile(run["ttft"]["direct", clients], q) * 1000
                row[f"TTFT p{q}, {clients} client{'s' if clients > 1 else ''}"] = mine
                row[f"added TTFT p{q}, {clients} client{'s' if clients > 1 else ''}"] = mine - direct
        if path != "direct":
            replies = max(run["replies"][path], 1)
            row["CPU/reply"] = run["cpu"][path] / replies * 1000
            row["PostgreSQL CPU/reply"] = run["cpu"][f"{path} PostgreSQL"] / replies * 1000
            row["CPU/reply with PostgreSQL"] = row["CPU/reply"] + row["PostgreSQL CPU/reply"]
        table[path] = row
    return table


def print_table(table: dict[str, dict[str, float]]) -> None:
    columns = [key for key in table["parley"] if key.startswith("added") or key.endswith("CPU/reply")]
    print(f"{'ms':10}" + "".join(f"{column:>27}" for column in columns))
    for path, row in table.items():
        print(f"{path:10}" + "".join(f"{row.get(column, float('nan')):27.2f}" for column in columns))


def ratios(table: dict[str, dict[str, float]], top: str, bottom: str) -> dict[str, float]:
    return {metric: table[top][metric] / table[bottom][metric] for metric in METRICS if metric in table[top]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="repeat the measurement; median and range of ratios"
    )
    parser.add_argument(
        "--levels", default="1x100,32x8", help="CLIENTSxMESSAGES_PER_CLIENT, per path and run"
    )
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per level")
    parser.add_argument("--warmup", type=int, default=2, help="untimed messages per client and path first")
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument(
        "--chunk-delay", type=float, default=0.002, help="seconds between chunks (and before)"
    )
    parser.add_argument("--turns", type=int, default=5, help="messages per Parley session")
    parser.add_argument("--litellm", default=str(LITELLM), help="the proxy's executable ('' to skip it)")
    parser.add_argument("--variant", type=Path, help="another worktree of Parley to measure beside this one")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE, help="dropped and created afresh")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    args.levels = [tuple(int(n) for n in level.split("x")) for level in args.levels.split(",")]
    if not {1, 32} <= {clients for clients, _ in args.levels}:
        parser.error("--levels must include 1 and 32 clients (the ratios are taken there)")

    print("machine:", json.dumps(machine()))
    print(
        f"reply: {args.chunks} chunks, {args.chunk_delay * 1000:g} ms apart; "
        f"levels {args.levels}, runs {args.runs}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="parley-peer-"))
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(FakeUpstream(chunks(args.chunks), chunk_delay=args.chunk_delay))
        env = server_env(args.database_url, fake.base_url)
        reset_database(args.database_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        clients = max(clients for clients, _ in args.levels)
        tokens = seed_tokens(env, clients, f"peer-{time.strftime('%H%M%S')}")
        urls, pids = {"direct": fake.base_url}, {}
        trees = {"parley": ROOT, **({"variant": args.variant} if args.variant else {})}
        for path, tree in trees.items():
            server = stack.enter_context(Server(env, tree=tree, log=workdir / f"{path}.log"))
            urls[path], pids[path] = server.url, server.pid
            if path == "parley":  # the same worker, its OpenAI API; a personal key per client
                urls["v1"], pids["v1"] = server.url, server.pid
                keys = [api_key(server.url, token) for token in tokens]
        if args.litellm:
            port = free_port()
            config = workdir / "litellm.yaml"
            config.write_text(LITELLM_CONFIG.format(model=MODEL, upstream=fake.base_url, key=MASTER_KEY))
            command = [args.litellm, f"--config={config}", "--host=127.0.0.1", f"--port={port}"]
            command += ["--num_workers=1"]  # its uvicorn in this very process, as Parley's
            quiet = {"LITELLM_LOG": "WARNING", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # no download
            proxy = Process(
                command,
                f"http://127.0.0.1:{port}/health/liveliness",
                log=workdir / "litellm.log",
                env={"PATH": "/usr/bin:/bin", "HOME": str(workdir), **quiet},
            )
            stack.enter_context(proxy)
            urls["litellm"], pids["litellm"] = f"http://127.0.0.1:{port}", proxy.pid
        results = [
            run_and_report(number, args, urls, pids, tokens, keys) for number in range(1, args.runs + 1)
        ]
    pairs = [
        (top, bottom)
        for top, bottom in (("parley", "litellm"), ("v1", "litellm"), ("variant", "parley"))
        if top in urls and bottom in urls
    ]
    for top, bottom in pairs:
        print(f"\n{top} ÷ {bottom} over {args.runs} run(s): median (min-max); lower is better for {top}")
        for metric in (*METRICS, "CPU/reply with PostgreSQL", "TTFT p50, 1 client", "TTFT p50, 32 clients"):
            values = [result["table"][top][metric] / result["table"][bottom][metric] for result in results]
            print(f"  {metric:28} {median_range(values)}")
    write_json(args.json, {"machine": machine(), "runs": [result["table"] for result in results]})
    print(f"logs in {workdir}")
    return 1 if any(result["errors"] for result in results) else 0


def api_key(base_url: str, token: str) -> str:
    """``POST /api/keys/`` with the user's JWT: the new personal key's secret."""
    answer = httpx.post(f"{base_url}/api/keys/", json={"name": "bench"}, headers=bearer(token), timeout=60)
    answer.raise_for_status()
    return answer.json()["secret"]


def run_and_report(
    number: int, args, urls: dict[str, str], pids: dict[str, int], tokens: list[str], keys: list[str]
) -> dict:
    started = time.monotonic()
    run = asyncio.run(one_run(args, urls, pids, tokens, keys))
    table = summarize(run, list(urls), args.levels)
    print(f"\n== run {number}: {time.monotonic() - started:.0f} s, {sum(run['replies'].values())} replies ==")
    print_table(table)
    for top in ("parley", "v1") if "litellm" in table else ():
        print(
            f"{top} ÷ litellm:",
            {key: round(value, 2) for key, value in ratios(table, top, "litellm").items()},
        )
    for error in run["errors"][:5]:
        print("  error:", error)
    return {"table": table, "errors": len(run["errors"])}


if __name__ == "__main__":
    sys.exit(main())
