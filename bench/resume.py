#!/usr/bin/env python
"""Replies that outlive their connection: memory with and without a reader, and the time to resume.

    .venv/bin/python bench/resume.py [--replies 300] [--resumes 200] [--redis-url redis://127.0.0.1:6379/12]

PostgreSQL (``--database-url``, dropped and created afresh) and Redis
(``--redis-url``, flushed before and after), the fake upstream
(``python -m tests.fakes.openai_upstream``, 20 chunks) in its own process, Parley
under uvicorn, production settings.

(a) Memory per running reply, one worker, the fake sending a chunk every
``--chunk-delay`` seconds (a reply lasts 20 of them): ``--replies`` replies,
one user, wallet and session each, at most ``--opening`` awaiting their
``start`` event at once, either *with readers* (each POST read to its
``done``) or *without* (each POST dropped right after ``start``: the reply
runs on). A fresh worker for each case (same database), so that neither
inherits the other's freed memory: its ``VmRSS`` after a warm-up (baseline),
then sampled every 50 ms until the replies end; per reply = (peak - baseline)
/ N. Afterwards every reply is read back through ``GET …/events/`` and must be
the whole reply, ``done`` and ``complete``.

(b) Time to resume, two workers (one uvicorn process each, on its own port),
the fake sending a chunk every 50 ms: ``--concurrency`` clients post
``--resumes`` messages in all, each read until its 3rd delta, then dropped;
after ``--gap`` seconds (so that missed events are waiting in the log), ``GET
…/events/`` with ``Last-Event-ID`` on the *other* worker (every other resume on
the same worker, for comparison), read to the end: every remaining event once,
ids in sequence, ``done`` with the whole reply. Reported: the first
connection's time to first token (POST sent → first ``delta``), and the
reconnect's time to its first missed event (GET sent → that event), p50 and
p99, and their ratio. Then ``manage.py audit_wallets``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    FakeUpstream,
    Server,
    bearer,
    create_sessions,
    drop_database,
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
from _sse import sse_frames

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/parley_bench_resume"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
CHUNKS = [f"{'' if i == 0 else ' '}word{i:02d}" for i in range(20)]
REPLY = "".join(CHUNKS)
CUT_AFTER = 3  # deltas read before the connection is dropped in (b)


def flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


async def read_events(response: httpx.Response, until: int | None = None):
    """``[(id, name, data)]`` of an SSE response; stops after ``until`` deltas when given."""
    events, deltas = [], 0
    async for event_id, name, raw in sse_frames(response):
        events.append((event_id, name, json.loads(raw)))
        deltas += name == "delta"
        if until is not None and deltas >= until:
            break
    return events


def whole(events: list, after: int) -> str:
    """'' when ``events`` are after+1, after+2, … ending in ``done`` with the whole, complete reply."""
    ids = [event_id for event_id, _, _ in events]
    if ids != [str(n) for n in range(after + 1, after + 1 + len(events))]:
        return f"ids {ids[:3]}...{ids[-3:]} after {after}"
    if not events or events[-1][1] != "done":
        return f"ends with {events[-1][1] if events else 'nothing'}"
    message = events[-1][2]["message"]
    if message["status"] != "complete" or message["content"] != REPLY:
        return f"done with {message['status']} {message['content'][:40]!r}"
    return ""


# --- (a) memory per running reply ------------------------------------------------------------------


async def memory_case(
    url: str, pid: int, tokens: list[str], *, readers: bool, opening: int, reply_seconds: float = 0
) -> dict:
    """N replies on the worker at ``pid``, read to the end or dropped after ``start``; the peak RSS."""
    errors: list[str] = []
    async with many_streams_client(url, len(tokens)) as client:
        sessions = await create_sessions(client, tokens)
        baseline = proc_status(pid)["VmRSS"]
        peak, done, last_start = baseline, asyncio.Event(), 0.0
        gate = asyncio.Semaphore(opening)
        began = time.monotonic()

        async def one(token: str, session: str) -> str | None:
            headers = {**bearer(token), "Accept": "text/event-stream"}
            request = client.build_request(
                "POST",
                f"/api/sessions/{session}/messages/",
                json={"content": "Tell me slowly."},
                headers=headers,
            )
            async with gate:  # at most ``opening`` awaiting their start event
                response = await client.send(request, stream=True)
                if response.status_code != 200:
                    errors.append(f"HTTP {response.status_code}")
                    await response.aclose()
                    return None
                frames = sse_frames(response)
                events = [await anext(frames)]
                nonlocal last_start
                last_start = time.monotonic()
            try:
                if not readers:  # dropped right after start: the reply runs on
                    return json.loads(events[0][2])["assistant_message_id"]
                events += [item async for item in frames]
            finally:
                await response.aclose()
            events = [(event_id, name, json.loads(raw)) for event_id, name, raw in events]
            problem = whole(events, 0)
            if problem:
                errors.append(problem)
            return events[0][2]["assistant_message_id"]

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, proc_status(pid)["VmRSS"])
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        ids = await asyncio.gather(*(one(t, s) for t, s in zip(tokens, sessions, strict=True)))
        all_started = last_start - began
        if not readers:
            # No reader while they run: sample until they have surely ended, then stop sampling.
            await asyncio.sleep(reply_seconds + 3)
            done.set()
            await sampler

            # Read every reply back (from event 1): this waits for their end, and checks them.
            async def back(token: str, session: str, reply_id: str | None) -> None:
                if reply_id is None:
                    return
                url = f"/api/sessions/{session}/messages/{reply_id}/events/"
                async with client.stream(
                    "GET", url, headers={**bearer(token), "Last-Event-ID": "1"}
                ) as answer:
                    problem = whole(await read_events(answer), 1)
                if problem:
                    errors.append(problem)

            reading = asyncio.Semaphore(64)

            async def gated(*item) -> None:
                async with reading:
                    await back(*item)

            await asyncio.gather(*(gated(*item) for item in zip(tokens, sessions, ids, strict=True)))
        done.set()
        await sampler
    return {
        "replies": len(tokens),
        "readers": readers,
        "errors": errors[:5],
        "error_count": len(errors),
        "rss_baseline_mib": round(baseline / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "kb_per_reply": round((peak - baseline) / len(tokens), 1),
        "seconds_to_start_all": round(all_started, 1),
    }


# --- (b) time to resume ------------------------------------------------------------------------------


async def resume_case(urls: list[str], tokens: list[str], *, resumes: int, concurrency: int, gap: float):
    ttft: list[float] = []
    resume_other: list[float] = []
    resume_same: list[float] = []
    errors: list[str] = []
    queue = list(range(resumes))

    async def client_loop(index: int) -> None:
        token = tokens[index]
        auth = bearer(token)
        async with httpx.AsyncClient(timeout=httpx.Timeout(60)) as client:
            session, turn = "", 0
            while queue:
                number = queue.pop()
                turn += 1
                home = urls[number % 2]
                other = urls[(number + number // 2) % 2]  # every other resume on the other worker
                if turn % 5 == 1:  # a new session every 5 messages
                    answer = await client.post(
                        f"{home}/api/sessions/", json={"category": "general"}, headers=auth
                    )
                    session = answer.json()["id"]
                url = f"{home}/api/sessions/{session}/messages/"
                sent = time.perf_counter()
                first = None
                headers = {**auth, "Accept": "text/event-stream"}
                async with client.stream(
                    "POST", url, json={"content": "Go on."}, headers=headers
                ) as response:
                    events = []
                    async for event_id, name, raw in sse_frames(response):
                        events.append((event_id, name, json.loads(raw)))
                        if name == "delta":
                            if first is None:
                                first = time.perf_counter() - sent
                            if sum(n == "delta" for _, n, _ in events) >= CUT_AFTER:
                                break
                seen = int(events[-1][0])
                reply_id = events[0][2]["assistant_message_id"]
                await asyncio.sleep(gap)
                resume_url = f"{other}/api/sessions/{session}/messages/{reply_id}/events/"
                sent = time.perf_counter()
                missed = None
                after = []
                async with client.stream(
                    "GET", resume_url, headers={**auth, "Last-Event-ID": str(seen)}
                ) as answer:
                    async for event_id, name, raw in sse_frames(answer):
                        if missed is None:
                            missed = time.perf_counter() - sent
                        after.append((event_id, name, json.loads(raw)))
                problem = whole(after, seen)
                content = "".join(d["content"] for _, n, d in events + after if n == "delta")
                if problem or content != REPLY:
                    errors.append(problem or f"deltas {content[:40]!r}")
                    continue
                ttft.append(first)
                (resume_other if other != home else resume_same).append(missed)

    await asyncio.gather(*(client_loop(index) for index in range(concurrency)))
    both = resume_other + resume_same

    def ms(values: list[float], q: float) -> float:
        return round(percentile(values, q) * 1000, 1)

    return {
        "resumes": resumes,
        "ok": len(both),
        "errors": errors[:5],
        "error_count": len(errors),
        "ttft_p50_ms": ms(ttft, 50),
        "ttft_p99_ms": ms(ttft, 99),
        "resume_other_worker_p50_ms": ms(resume_other, 50),
        "resume_other_worker_p99_ms": ms(resume_other, 99),
        "resume_same_worker_p50_ms": ms(resume_same, 50),
        "resume_same_worker_p99_ms": ms(resume_same, 99),
        "resume_other": len(resume_other),
        "resume_same": len(resume_same),
        "ratio_p50_other": round(percentile(resume_other, 50) / percentile(ttft, 50), 2),
        "ratio_p99_other": round(percentile(resume_other, 99) / percentile(ttft, 99), 2),
        "ratio_p50_same": round(percentile(resume_same, 50) / percentile(ttft, 50), 2),
        "ratio_p99_same": round(percentile(resume_same, 99) / percentile(ttft, 99), 2),
    }


# --- the run -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=300, help="(a) replies running at once")
    parser.add_argument("--opening", type=int, default=32, help="(a) requests awaiting start at once")
    parser.add_argument("--chunk-delay", type=float, default=1.0, help="(a) seconds between chunks")
    parser.add_argument("--warmup", type=int, default=20, help="(a) quick replies before the baseline")
    parser.add_argument("--resumes", type=int, default=200, help="(b) replies dropped and resumed")
    parser.add_argument("--concurrency", type=int, default=4, help="(b) clients at once")
    parser.add_argument("--gap", type=float, default=0.2, help="(b) seconds between the drop and the resume")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE, help="dropped and created afresh")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="flushed before and after")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    n = args.replies
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * n + 256 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (2 * n + 256, hard))
    print("machine:", json.dumps(machine()))
    figures: dict = {}
    flush(args.redis_url)
    with FakeUpstream(CHUNKS, chunk_delay=0.001) as fake:
        env = server_env(
            args.database_url, fake.base_url, REDIS_URL=args.redis_url, MAX_CONCURRENT_REPLIES=1000
        )
        reset_database(args.database_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        tokens = seed_tokens(env, 2 * (n + args.warmup) + args.concurrency, "resume")
        if not args.skip_memory:
            for number, readers in enumerate((True, False)):
                fake.configure(chunks=CHUNKS, chunk_delay=0.001)
                mine = tokens[number * (n + args.warmup) : (number + 1) * (n + args.warmup)]
                with Server(env, backlog=max(2048, n + 64)) as server:
                    asyncio.run(
                        memory_case(server.url, server.pid, mine[: args.warmup], readers=True, opening=8)
                    )
                    fake.configure(
                        chunks=CHUNKS, chunk_delay=args.chunk_delay, first_chunk_delay=args.chunk_delay
                    )
                    time.sleep(1)
                    case = asyncio.run(
                        memory_case(
                            server.url,
                            server.pid,
                            mine[args.warmup :],
                            readers=readers,
                            opening=args.opening,
                            reply_seconds=(len(CHUNKS) + 1) * args.chunk_delay,
                        )
                    )
                name = "with_readers" if readers else "without_readers"
                figures[name] = case
                print(name, json.dumps(case))
        fake.configure(chunks=CHUNKS, chunk_delay=0.05, first_chunk_delay=0.002)
        with Server(env) as first, Server(env) as second:
            figures["resume"] = asyncio.run(
                resume_case(
                    [first.url, second.url],
                    tokens[-args.concurrency :],
                    resumes=args.resumes,
                    concurrency=args.concurrency,
                    gap=args.gap,
                )
            )
        print("resume", json.dumps(figures["resume"]))
        audit = manage(env, "audit_wallets", check=False)
        figures["audit"] = audit.stdout.strip()
    if "with_readers" in figures:
        with_, without = figures["with_readers"]["kb_per_reply"], figures["without_readers"]["kb_per_reply"]
        figures["without_over_with"] = round(without / with_, 2) if with_ else None
        print(f"memory per running reply: with a reader {with_} KB, without {without} KB")
    r = figures["resume"]
    print(f"first connection, time to first token: p50 {r['ttft_p50_ms']} ms, p99 {r['ttft_p99_ms']} ms")
    for where in ("other", "same"):
        print(
            f"reconnect -> first missed event, {where} worker: p50 {r[f'resume_{where}_worker_p50_ms']} ms "
            f"({r[f'ratio_p50_{where}']} x TTFT p50), p99 {r[f'resume_{where}_worker_p99_ms']} ms "
            f"({r[f'ratio_p99_{where}']} x TTFT p99)"
        )
    print("audit_wallets:", figures["audit"])
    errors = sum(case.get("error_count", 0) for case in figures.values() if isinstance(case, dict))
    write_json(args.json, {"machine": machine(), **figures})
    passed = not errors and audit.returncode == 0
    if passed:
        drop_database(args.database_url)
        flush(args.redis_url)
    print("PASS" if passed else f"FAIL ({errors} error(s))")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
