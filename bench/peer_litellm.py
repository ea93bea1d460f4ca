#!/usr/bin/env python
"""A streamed reply through Parley against the same reply through the LiteLLM proxy, in one run.

    .venv/bin/python bench/peer_litellm.py --runs 3
    .venv/bin/python bench/peer_litellm.py --runs 3 --variant ../wt-other   # + another tree
    .venv/bin/python bench/peer_litellm.py --runs 3 --no-failover            # single upstream only

Processes, so that no two share a GIL: the fake upstream
(``python -m tests.fakes.openai_upstream``: 20 word-sized chunks, 2 ms apart);
Parley (``uvicorn config.asgi:application``, one worker, PostgreSQL, DEBUG
off, ``LLM_PROVIDER=openai`` at the fake); the LiteLLM proxy (its own
virtualenv, ``--litellm``, one worker, one ``model_list`` entry: the fake as an
OpenAI-compatible model, ``master_key`` auth, no database); with
``--variant TREE``, a second Parley from another git worktree, on a database of
its own (``--database-url`` + ``_variant``) migrated by that tree, since a tree
cannot write to a schema with columns it does not know; and this process, the
load generator (asyncio + httpx).

The paths, in interleaved rounds (the order rotates each round, so drift hits
them alike): *direct*, the fake's ``/v1/chat/completions``; *parley*,
``POST /api/sessions/{id}/messages/`` (SSE; a client per user, a new session
every 5 messages); *litellm*, the proxy's ``POST /chat/completions`` with
``stream``; *v1*, Parley's OpenAI API, ``POST /v1/chat/completions`` with
``stream`` and a personal key (``pk-…``, one per client, made with
``POST /api/keys/``; model ``general``, whose system prompt Parley adds, so
the body carries only the user's message and the upstream gets the same
prompt as through LiteLLM); *direct-tools*, *v1-tools* and *litellm-tools*,
the same three with a ``tools`` list in the body as Open WebUI sends it (five
functions with JSON-schema parameters, ``tool_choice`` absent, a question that
names none of them, so the model answers in text: the same deltas); with
``--variant``, *variant* (that tree's chat API) and *variant-v1* (its ``/v1/``,
without tools); and, unless ``--no-failover``, *v1-failover* and
*litellm-failover* (below). Every reply is checked: each delta in order, then
``done`` or ``[DONE]``. At 1 client and at 32 concurrent clients, it records the time to
first token (TTFT: from sending to the first content delta).

Reported per path: added TTFT (the path's percentile minus direct's, or
direct-tools' for a path with tools) p50 and p99 at 1 client and p99 at 32
clients, and the server's CPU per reply (the worker's utime + stime from
``/proc``, over all its rounds; for Parley the PostgreSQL backends' CPU is
printed beside it). Then the ratios parley ÷ litellm, v1 ÷ litellm, v1-tools ÷
litellm-tools, variant-v1 ÷ litellm and variant ÷ parley, for each run, and
their median and range across ``--runs`` (the servers stay up between runs);
and, per run, "after ÷ before" of the ratio to LiteLLM: (v1 ÷ litellm) ÷
(variant-v1 ÷ litellm), and (v1-tools ÷ litellm-tools) ÷ (variant-v1 ÷
litellm), against the limit of 1.10. Lower is better.

Failover (issue 21): two more fake upstream processes, *flaky* and *backup*,
with the same reply; *flaky* answers ``--fail-ratio`` of its requests (10 %)
with ``--fail-status`` (503) before the stream starts, drawn at random from a
fixed seed (the fake's ``fail_ratio``/``fail_seed``). One model,
``bench-failover``, has two deployments, *flaky* first and *backup* second.
In Parley it is a catalogue model applied with ``manage.py llm_config apply``
(two providers, priority 1 and 2, ``retries: 0``); *v1-failover* is its
``/v1/`` (a personal key, the system prompt in the body since a model id has
no category's). In LiteLLM it is two model groups, ``bench-failover`` (flaky)
and ``bench-failover-backup`` (backup), with ``router_settings.fallbacks``
from the first to the second and ``num_retries: 0`` (LiteLLM's documented
failover between deployments in order: its default of 2 retries would try the
flaky one again first); *litellm-failover* is its ``/chat/completions``. So
each tries the flaky deployment once, then the backup at once, and neither
retries inside its OpenAI client. Cooldowns are kept out of the way on both
sides, so that every failure is a failover: Parley's ``COOLDOWN_FAILURES`` is
set out of reach (with three failures in a row needed, it would seldom start
at 10 % anyway, and the benchmark measured ``57600a8``, whose count did not
reset on a success and cooled the flaky deployment down within seconds);
LiteLLM does not cool down a one-deployment group with a fallback on a 5xx
under 50 % failures. Per run the script prints how many
requests each fake got during the timed failover phases: the backup's count
is the failovers. Ratios added: v1-failover ÷ litellm-failover, and each
failover path over its single-upstream path (what failover costs each).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
    loadavg,
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
FAILOVER_MODEL = "bench-failover"  # two deployments: the flaky fake first, the backup second
FAILOVER_BACKUP = "bench-failover-backup"  # LiteLLM's fallback model group (the backup)
FAIL_SEED = 21  # the flaky fake's draws, the same each invocation
SYSTEM_PROMPT = "You are a helpful assistant."  # the ``general`` category's, as migrated
QUESTION = "Could you explain, briefly, how a streamed reply gets from the model to my screen?"
METRICS = ("added TTFT p50, 1 client", "added TTFT p99, 1 client", "added TTFT p99, 32 clients", "CPU/reply")
SUMMARY = (*METRICS, "CPU/reply with PostgreSQL", "TTFT p50, 1 client", "TTFT p50, 32 clients")
# The paths that speak OpenAI's API with the master key (the fake ignores it), Parley's /v1/
# paths (a personal key), and those whose body offers TOOLS.
OPENAI_PATHS = {"direct", "direct-tools", "litellm", "litellm-tools", "litellm-failover"}
V1_PATHS = {"v1", "v1-tools", "variant-v1", "v1-failover"}
FAILOVER_PATHS = ("v1-failover", "litellm-failover")
TOOLS_PATHS = {"direct-tools", "v1-tools", "litellm-tools"}
# Printed ratios (top ÷ bottom), and "after ÷ before": one ratio to LiteLLM over another.
PAIRS = (
    ("parley", "litellm"),
    ("v1", "litellm"),
    ("v1-tools", "litellm-tools"),
    ("variant-v1", "litellm"),
    ("variant", "parley"),
    ("v1-failover", "litellm-failover"),
    ("v1-failover", "v1"),
    ("litellm-failover", "litellm"),
)
AFTER_BEFORE = (
    (("v1", "litellm"), ("variant-v1", "litellm")),
    (("v1-tools", "litellm-tools"), ("variant-v1", "litellm")),
)
LIMIT = 1.10  # an after ÷ before above this: the ratio to LiteLLM got worse by more than 10 %


def _function(name: str, description: str, properties: dict, required: list[str]) -> dict:
    parameters = {"type": "object", "properties": properties, "required": required}
    function = {"name": name, "description": description, "parameters": parameters}
    return {"type": "function", "function": function}


# What Open WebUI sends with native function calling on: each tool a function with a JSON schema.
# None of their names (nor with spaces for underscores) is in QUESTION: the model answers in text.
TOOLS = [
    _function(
        "get_current_weather",
        "Get the current weather for a location.",
        {
            "location": {"type": "string", "description": "The city and country, e.g. Paris, France"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
        },
        ["location"],
    ),
    _function(
        "search_web",
        "Search the web and return the top results with their titles, links and snippets.",
        {
            "query": {"type": "string", "description": "The search terms."},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
        },
        ["query"],
    ),
    _function(
        "fetch_url",
        "Fetch a web page and return its text content.",
        {"url": {"type": "string", "format": "uri", "description": "The address of the page."}},
        ["url"],
    ),
    _function(
        "create_calendar_event",
        "Add an event to the user's calendar.",
        {
            "title": {"type": "string"},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "attendees": {"type": "array", "items": {"type": "string", "format": "email"}},
            "description": {"type": "string"},
        },
        ["title", "start"],
    ),
    _function(
        "run_python",
        "Run a short Python program in a sandbox and return what it printed.",
        {
            "code": {"type": "string", "description": "The program's source."},
            "timeout_seconds": {"type": "number", "minimum": 1, "maximum": 60, "default": 10},
        },
        ["code"],
    ),
]

LITELLM_CONFIG = """
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {upstream}
      api_key: fake
{failover}general_settings:
  master_key: {key}
"""
# Appended to model_list: two groups of one deployment each, the second the first's fallback.
LITELLM_FAILOVER = """
  - model_name: {model}
    litellm_params:
      model: openai/{upstream_model}
      api_base: {flaky}
      api_key: fake
  - model_name: {backup_model}
    litellm_params:
      model: openai/{upstream_model}
      api_base: {backup}
      api_key: fake
router_settings:
  num_retries: 0
  fallbacks: [{{"{model}": ["{backup_model}"]}}]
"""

# Parley's side of the same: ``manage.py llm_config apply`` (the key's variable is in server_env).
PARLEY_FAILOVER = """
providers:
  - {{name: flaky, kind: openai, base_url: "{flaky}", api_key_env: BENCH_UPSTREAM_KEY, retries: 0}}
  - {{name: backup, kind: openai, base_url: "{backup}", api_key_env: BENCH_UPSTREAM_KEY, retries: 0}}
models:
  - id: {model}
    name: Bench failover
    prompt_price: 0.15
    completion_price: 0.6
    deployments:
      - {{provider: flaky, model: {upstream_model}, priority: 1}}
      - {{provider: backup, model: {upstream_model}, priority: 2}}
"""

# Users of another tree, made by that tree's code on its own database (``manage.py shell``):
# an access token each, as ``seed_tokens`` does for this tree.
SEEDER = """
from rest_framework_simplejwt.tokens import AccessToken
from accounts.models import User
for index in range({count}):
    print(AccessToken.for_user(User.objects.create_user(f"{prefix}-{{index}}", password=None)))
"""


def chunks(count: int) -> list[str]:
    """The reply's deltas, word-sized: ``" t0"``, ``" t1"``..."""
    return [f" t{index}" for index in range(count)]


class BadReply(Exception):
    pass


class Client:
    """One simulated user: a connection to each path, its token and key on each Parley path,
    and for Parley's chat API a session it rotates."""

    def __init__(
        self, urls: dict[str, str], creds: dict[str, tuple[str, str]], expected: list[str], turns: int
    ) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.http = {
            path: httpx.AsyncClient(base_url=url, timeout=120, limits=limits) for path, url in urls.items()
        }
        self.creds, self.expected, self.turns = creds, expected, turns
        self.sessions: dict[str, tuple[str, int]] = {}
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": QUESTION}]
        completion = {
            "model": MODEL,
            "messages": messages,
            "max_tokens": 256,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        v1 = {**completion, "model": "general", "messages": messages[1:]}  # + the category's
        self.bodies = {
            "direct": completion,
            "litellm": completion,
            "direct-tools": {**completion, "tools": TOOLS},
            "litellm-tools": {**completion, "tools": TOOLS},
            "v1": v1,
            "variant-v1": v1,
            "v1-tools": {**v1, "tools": TOOLS},
            # A catalogue model has no category's system prompt: the body carries it, as LiteLLM's.
            "v1-failover": {**completion, "model": FAILOVER_MODEL},
            "litellm-failover": {**completion, "model": FAILOVER_MODEL},
        }

    async def aclose(self) -> None:
        for client in self.http.values():
            await client.aclose()

    async def reply(self, path: str) -> float:
        """Send one message on ``path`` and read the whole reply; its TTFT in seconds."""
        http = self.http[path]
        if path in OPENAI_PATHS:
            request = http.stream(
                "POST", "/chat/completions", json=self.bodies[path], headers=bearer(MASTER_KEY)
            )
        elif path in V1_PATHS:
            key = self.creds[path][1]
            request = http.stream("POST", "/v1/chat/completions", json=self.bodies[path], headers=bearer(key))
        else:
            token = self.creds[path][0]
            session, sent = self.sessions.get(path, ("", 0))
            if sent % self.turns == 0:  # a fresh conversation, untimed
                session = await create_session(http, token)
            self.sessions[path] = (session, sent + 1)
            headers = {**bearer(token), "Accept": "text/event-stream"}
            request = http.stream(
                "POST", f"/api/sessions/{session}/messages/", json={"content": QUESTION}, headers=headers
            )
        deltas: list[str] = []
        ttft, last = None, ""
        started = time.perf_counter()
        async with request as response:
            if response.status_code != 200:
                raise BadReply(f"{path}: HTTP {response.status_code}: {(await response.aread())[:200]!r}")
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
    args,
    urls: dict[str, str],
    pids: dict[str, int],
    creds: dict[str, list[tuple[str, str]]],
    databases: dict[str, str],
    fakes: dict[str, str] | None = None,
) -> dict:
    """One run: each level's rounds, paths interleaved; TTFT samples and CPU per path, and the
    requests each of ``fakes`` (name: base URL) got during each failover path's timed phases."""
    fakes = fakes or {}
    upstream: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    expected = chunks(args.chunks)
    spread = args.chunk_delay * (args.chunks + 1)  # one reply's length: clients out of lockstep
    ttft: dict[tuple[str, int], list[float]] = defaultdict(list)
    cpu: dict[str, float] = defaultdict(float)
    replies: dict[str, int] = defaultdict(int)
    errors: list[str] = []
    paths = list(urls)
    for clients_count, per_client in args.levels:
        clients = [
            Client(urls, {path: each[i] for path, each in creds.items()}, expected, args.turns)
            for i in range(clients_count)
        ]
        try:
            for path in paths:  # warm-up: connections, pools, caches
                await phase(clients, path, args.warmup, spread, [], errors)
            for number in range(args.rounds):
                count = per_client // args.rounds + (number < per_client % args.rounds)
                for path in paths[number % len(paths) :] + paths[: number % len(paths)]:
                    database = databases.get(path, args.database_url)
                    before = cpu_seconds(pids[path]) if path in pids else 0.0
                    pg_before = postgres_cpu(database) if path in pids else 0.0
                    samples: list[float] = []
                    counted = fakes if path in FAILOVER_PATHS else {}
                    seen = {name: await fake_requests(url) for name, url in counted.items()}
                    await phase(clients, path, count, spread, samples, errors)
                    for name, url in counted.items():
                        upstream[path][name] += await fake_requests(url) - seen[name]
                    if path in pids:
                        cpu[path] += cpu_seconds(pids[path]) - before
                        cpu[f"{path} PostgreSQL"] += postgres_cpu(database) - pg_before
                    ttft[path, clients_count] += samples
                    replies[path] += len(samples)
        finally:
            for client in clients:
                await client.aclose()
    return {"ttft": ttft, "cpu": cpu, "replies": replies, "errors": errors, "upstream": upstream}


async def fake_requests(base_url: str) -> int:
    """How many requests the fake at ``base_url`` has received (``GET /fake/stats``)."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(base_url.removesuffix("/v1") + "/fake/stats")
    return answer.json()["requests"]


def baseline(path: str, paths: list[str]) -> str:
    """The direct path a path's added TTFT is taken from: the same body, tools or not."""
    return "direct-tools" if path in TOOLS_PATHS and "direct-tools" in paths else "direct"


def summarize(run: dict, paths: list[str], levels: list[tuple[int, int]]) -> dict[str, dict[str, float]]:
    """Per path: added TTFT (ms) at each level's p50 and p99, CPU ms per reply."""
    table: dict[str, dict[str, float]] = {}
    for path in paths:
        row: dict[str, float] = {}
        for clients, _ in levels:
            for q in (50, 99):
                mine = percentile(run["ttft"][path, clients], q) * 1000
                direct = percentile(run["ttft"][baseline(path, paths), clients], q) * 1000
                row[f"TTFT p{q}, {clients} client{'s' if clients > 1 else ''}"] = mine
                row[f"added TTFT p{q}, {clients} client{'s' if clients > 1 else ''}"] = mine - direct
        if not path.startswith("direct"):
            replies = max(run["replies"][path], 1)
            row["CPU/reply"] = run["cpu"][path] / replies * 1000
            row["PostgreSQL CPU/reply"] = run["cpu"][f"{path} PostgreSQL"] / replies * 1000
            row["CPU/reply with PostgreSQL"] = row["CPU/reply"] + row["PostgreSQL CPU/reply"]
        table[path] = row
    return table


def print_table(table: dict[str, dict[str, float]]) -> None:
    columns = [key for key in table["parley"] if key.startswith("added") or key.endswith("CPU/reply")]
    print(f"{'ms':14}" + "".join(f"{column:>27}" for column in columns))
    for path, row in table.items():
        print(f"{path:14}" + "".join(f"{row.get(column, float('nan')):27.2f}" for column in columns))


def ratio(table: dict[str, dict[str, float]], top: str, bottom: str, metric: str) -> float:
    return table[top][metric] / table[bottom][metric]


def ratios(table: dict[str, dict[str, float]], top: str, bottom: str) -> dict[str, float]:
    return {metric: ratio(table, top, bottom, metric) for metric in METRICS if metric in table[top]}


def after_before(table: dict[str, dict[str, float]], after: tuple, before: tuple, metric: str) -> float:
    """One ratio to LiteLLM over another, in the same run."""
    return ratio(table, *after, metric) / ratio(table, *before, metric)


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
    parser.add_argument(
        "--failover",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure v1-failover and litellm-failover (two deployments, the first flaky)",
    )
    parser.add_argument(
        "--fail-ratio", type=float, default=0.1, help="share of the flaky deployment's requests that fail"
    )
    parser.add_argument("--fail-status", type=int, default=503, help="what the flaky deployment answers then")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    args.levels = [tuple(int(n) for n in level.split("x")) for level in args.levels.split(",")]
    if not {1, 32} <= {clients for clients, _ in args.levels}:
        parser.error("--levels must include 1 and 32 clients (the ratios are taken there)")

    print("machine:", json.dumps(machine()))
    trees = {"parley": describe(ROOT), **({"variant": describe(args.variant)} if args.variant else {})}
    print("trees:", json.dumps(trees))
    print(
        f"reply: {args.chunks} chunks, {args.chunk_delay * 1000:g} ms apart; "
        f"levels {args.levels}, runs {args.runs}"
    )
    if args.failover:
        print(
            f"failover: {FAILOVER_MODEL}, deployment 1 fails {args.fail_ratio:.0%} with "
            f"{args.fail_status} before the stream (seed {FAIL_SEED}), deployment 2 never; cooldowns off"
        )
    workdir = Path(tempfile.mkdtemp(prefix="parley-peer-"))
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(FakeUpstream(chunks(args.chunks), chunk_delay=args.chunk_delay))
        fakes: dict[str, str] = {}
        if args.failover:
            flaky = FakeUpstream(chunks(args.chunks), chunk_delay=args.chunk_delay)
            flaky.scenario.update(
                fail_status=args.fail_status, fail_ratio=args.fail_ratio, fail_seed=FAIL_SEED
            )
            backup = FakeUpstream(chunks(args.chunks), chunk_delay=args.chunk_delay)
            fakes = {
                "flaky": stack.enter_context(flaky).base_url,
                "backup": stack.enter_context(backup).base_url,
            }
        names = {"model": FAILOVER_MODEL, "backup_model": FAILOVER_BACKUP, "upstream_model": MODEL, **fakes}
        clients = max(clients for clients, _ in args.levels)
        prefix = f"peer-{time.strftime('%H%M%S')}"
        urls, pids = {"direct": fake.base_url, "direct-tools": fake.base_url}, {}
        creds: dict[str, list[tuple[str, str]]] = {}
        databases: dict[str, str] = {}
        for name, tree in (("parley", ROOT), ("variant", args.variant)):
            if tree is None:
                continue
            database = args.database_url if name == "parley" else sibling(args.database_url, "_variant")
            # Cooldowns out of reach: every failure of the flaky deployment is a failover.
            env = server_env(database, fake.base_url, BENCH_UPSTREAM_KEY="bench", COOLDOWN_FAILURES=10**9)
            reset_database(database)
            manage(env, "migrate", "--noinput", "-v", "0", tree=tree)
            if name == "parley" and fakes:
                catalogue = workdir / "catalogue.yaml"
                catalogue.write_text(PARLEY_FAILOVER.format(**names))
                print(manage(env, "llm_config", "apply", str(catalogue), tree=tree).stdout.strip())
            if name == "parley":
                tokens = seed_tokens(env, clients, prefix)
            else:
                tokens = seed_other(env, tree, clients, prefix)
            server = stack.enter_context(Server(env, tree=tree, log=workdir / f"{name}.log"))
            keys = [api_key(server.url, token) for token in tokens]
            # The chat API, then the same worker's OpenAI API (without and with tools).
            apis = ["v1", "v1-tools"] if name == "parley" else ["variant-v1"]
            apis += ["v1-failover"] if name == "parley" and fakes else []
            for path in [name, *apis]:
                urls[path], pids[path], databases[path] = server.url, server.pid, database
                creds[path] = list(zip(tokens, keys, strict=True))
        if args.litellm:
            port = free_port()
            config = workdir / "litellm.yaml"
            failover = LITELLM_FAILOVER.format(**names) if fakes else ""
            config.write_text(
                LITELLM_CONFIG.format(model=MODEL, upstream=fake.base_url, key=MASTER_KEY, failover=failover)
            )
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
            for path in ("litellm", "litellm-tools", *(["litellm-failover"] if fakes else [])):
                urls[path], pids[path] = f"http://127.0.0.1:{port}", proxy.pid
        print(f"logs in {workdir}", flush=True)
        results = [
            run_and_report(number, args, urls, pids, creds, databases, fakes)
            for number in range(1, args.runs + 1)
        ]
    tables = [result["table"] for result in results]
    trees_now = {name: describe(tree) for name, tree in (("parley", ROOT), ("variant", args.variant)) if tree}
    if trees_now != trees:
        print("\ntrees changed during the runs (the servers run what they imported at start):")
        print("  now:", json.dumps(trees_now))
    figures: dict = {"machine": machine(), "trees": trees, "runs": tables, "ratios": {}, "after ÷ before": {}}
    figures["failover upstream requests"] = [result["upstream"] for result in results]
    for top, bottom in (pair for pair in PAIRS if set(pair) <= set(urls)):
        print(f"\n{top} ÷ {bottom} over {args.runs} run(s): median (min-max); lower is better for {top}")
        for metric in SUMMARY:
            values = [ratio(table, top, bottom, metric) for table in tables]
            figures["ratios"].setdefault(f"{top} ÷ {bottom}", {})[metric] = values
            print(f"  {metric:28} {median_range(values)}")
    for after, before in (pair for pair in AFTER_BEFORE if set(pair[0] + pair[1]) <= set(urls)):
        label = f"({after[0]} ÷ {after[1]}) ÷ ({before[0]} ÷ {before[1]})"
        print(f"\nafter ÷ before, {label}: median (min-max); at most {LIMIT:.2f}")
        for metric in SUMMARY:
            values = [after_before(table, after, before, metric) for table in tables]
            figures["after ÷ before"].setdefault(label, {})[metric] = values
            verdict = "ok" if statistics.median(values) <= LIMIT else "WORSE by more than 10 %"
            print(f"  {metric:28} {median_range(values):24} {verdict}")
    write_json(args.json, figures)
    print(f"logs in {workdir}")
    return 1 if any(result["errors"] for result in results) else 0


def sibling(url: str, suffix: str) -> str:
    """The database URL ``url`` with ``suffix`` added to the database's name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path + suffix))


def describe(tree: Path) -> str:
    """A tree's commit, and ``+ uncommitted`` with the files and the diff's digest when ``git
    status`` shows changes to code (tests and docs aside)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tree, capture_output=True, text=True).stdout

    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    code = [path for path in changed if "tests" not in path.split("/") and not path.startswith("docs/")]
    if not code:
        return git("rev-parse", "--short", "HEAD").strip()
    digest = hashlib.sha1(git("diff", "HEAD", "--", *code).encode()).hexdigest()[:10]
    return f"{git('rev-parse', '--short', 'HEAD').strip()} + uncommitted {' '.join(code)} (diff {digest})"


def seed_other(env: dict[str, str], tree: Path, count: int, prefix: str) -> list[str]:
    """``count`` users with an access token each, made by ``tree``'s code in its database."""
    done = manage(env, "shell", "-c", SEEDER.format(count=count, prefix=prefix), tree=tree)
    tokens = [line for line in done.stdout.split() if line.count(".") == 2]
    if len(tokens) != count:
        raise RuntimeError(f"seeding {tree} gave {len(tokens)} tokens of {count}:\n{done.stdout}")
    return tokens


def api_key(base_url: str, token: str) -> str:
    """``POST /api/keys/`` with the user's JWT: the new personal key's secret."""
    answer = httpx.post(f"{base_url}/api/keys/", json={"name": "bench"}, headers=bearer(token), timeout=60)
    answer.raise_for_status()
    return answer.json()["secret"]


def run_and_report(
    number: int,
    args,
    urls: dict[str, str],
    pids: dict[str, int],
    creds: dict[str, list[tuple[str, str]]],
    databases: dict[str, str],
    fakes: dict[str, str],
) -> dict:
    started = time.monotonic()
    run = asyncio.run(one_run(args, urls, pids, creds, databases, fakes))
    table = summarize(run, list(urls), args.levels)
    print(f"\n== run {number}: {time.monotonic() - started:.0f} s, {sum(run['replies'].values())} replies ==")
    print("load average:", loadavg())
    print_table(table)
    for top, bottom in (pair for pair in PAIRS if set(pair) <= set(table)):
        print(
            f"{top} ÷ {bottom}:",
            {key: round(value, 2) for key, value in ratios(table, top, bottom).items()},
        )
    for path, counts in run["upstream"].items():
        timed = run["replies"][path]
        print(
            f"{path}: {timed} timed replies; the fakes got {dict(counts)} requests; "
            f"failovers (backup's) {counts['backup'] / max(timed, 1):.1%} of replies"
        )
    for error in run["errors"][:5]:
        print("  error:", error)
    if run["errors"]:
        print(f"  {len(run['errors'])} error(s) in all")
    upstream = {path: dict(counts) for path, counts in run["upstream"].items()}
    return {"table": table, "errors": len(run["errors"]), "upstream": upstream}


if __name__ == "__main__":
    sys.exit(main())
