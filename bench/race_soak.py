#!/usr/bin/env python
"""Race soak: many concurrent replies and top-ups on ONE wallet, then the books are checked.

    .venv/bin/python bench/race_soak.py [--seconds 180] [--clients 50] [--workers 2]
    .venv/bin/python bench/race_soak.py --seconds 15          # the short run CI does
    .venv/bin/python bench/race_soak.py --redis-url ''        # without Redis

PostgreSQL only (``--database-url``, default
``postgres://postgres@127.0.0.1:5432/parley_soak``; that database is dropped
and created afresh, then migrated; after a pass it is dropped again, after a
failure it is kept with the logs, as with ``--keep``). Processes, so that no
two share a GIL:

* the fake OpenAI upstream (``tests.fakes.openai_upstream.FakeOpenAI``) in a
  process of its own, choosing **per request** how to answer from a marker in
  the last message (``[soak:normal]``, ``[soak:fail-before:503]``,
  ``[soak:mid-abort:3]``, ``[soak:mid-error:4]``): see :func:`serve_fake`;
* the app, ``--workers`` processes of ``uvicorn config.asgi:application``
  (one worker each, each on its own port, so that a client picks the worker;
  production settings: DEBUG off, ``LLM_PROVIDER=openai`` at the fake, one
  retry), sharing Redis (``--redis-url``, default ``redis://127.0.0.1:6379/11``,
  flushed before and after; ``''`` runs without) and ``MAX_CONCURRENT_REPLIES``
  set to ``--max-replies`` (100,000): one user stands for all the clients, so
  a 429 ``too_many_replies`` is a violation here, not an expected outcome;
* a top-up process (Django, the ``wallets.services.wallet_top_up`` the admin
  and ``manage.py topup_wallet`` use): every ``--topup-interval`` seconds one
  new idempotency key, sent by ``--replays`` threads at once (a barrier lines
  them up); a large amount when the wallet's available credit is low, a token
  amount otherwise. A few rounds also run ``manage.py topup_wallet --key``
  itself, the same key in two processes at once;
* this process: ``--clients`` asyncio clients (httpx), one user, one wallet,
  each client posting messages one after another to its own session (a new one
  every ``--turns`` messages), to each worker in turn, each message picking at
  random a normal reply; a client disconnect after 1-5 deltas (the reply runs
  on: it must be stored complete and charged in full); a resume (a disconnect
  after 1-5 deltas, then ``GET …/events/`` with ``Last-Event-ID`` or ``?after=``
  on any worker: every remaining event once, ids in sequence, ending in
  ``done`` with the whole reply); a stop (``POST …/stop/`` on any worker after
  1-5 deltas: 202, the stream ends in ``done`` with an ``incomplete`` message
  holding what was read, then a second stop is 409; a stop that meets the
  reply's end is 409, or 202 with the reply complete: "stop-late"); an
  upstream failure before the stream, or one mid-stream (the connection cut,
  or an SSE error event). Replies to resume or stop come slower (150 ms a
  chunk, 3 s; ``SOAK_SLOW_CHUNK_DELAY``): at 50 ms, one stop in seven found the
  reply at its end, the client being that far behind under load. Every
  event's ``id`` must follow the last. A 402 ``insufficient_funds`` is
  expected when the wallet runs dry; the client waits a little and goes on.
  Without Redis, a resume or stop goes to the worker running the reply.

When the time is up, the clients finish their current reply, the run waits
(``--settle-seconds``) for replies still being settled, and then it checks:
``manage.py audit_wallets`` passes; no hold is open and no message pending;
every hold belongs to one assistant message, settled (charge entry amount ==
-message cost == hold.charged; no entry when the cost is 0) or released
(message failed, cost 0); the sum of charges equals the sum of message costs;
every top-up key was applied exactly once, each replay answering the same
ledger entry; the balance is bonus + top-ups - charges; every message the
clients saw ended as they saw it (status and cost), and there is no message
they did not see; every reply stored complete was charged for all the chunks
the upstream reported; ``release_stale_holds --minutes 0`` finds nothing to do;
with Redis, no reply slot is left taken and every reply's event stream got its
end; the workers logged no error. It prints the counts and exits 1 on any violation (2
when it could not run).

``--fake`` and ``--topper`` are the helper processes' entry points (this file
started again), and ``--verify`` the final check's, which runs Django.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import (
    drop_database,
    free_port,
    machine,
    manage,
    reset_database,
    sse_frames,
)  # bench/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/parley_soak"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"

#: The reply of a normal stream: 20 deltas.
CHUNKS = [f" w{index:02d}" for index in range(20)]
REPLY = "".join(CHUNKS)
#: Relative weights of what a client asks for.
MODES = {
    "normal": 40,
    "disconnect": 12,
    "resume": 12,
    "stop": 10,
    "fail-before": 12,
    "mid-abort": 7,
    "mid-error": 7,
}
#: Seconds between chunks of the replies a client resumes or stops: long enough (20 chunks, 3 s)
#: for the resume or the stop to arrive while the reply runs, though the clients lag under load.
SLOW_CHUNK_DELAY = float(os.environ.get("SOAK_SLOW_CHUNK_DELAY", "0.15"))
MARKER = re.compile(r"\[soak:([a-z-]+)(?::(\d+))?\]")


# --- the fake upstream, answering per request ------------------------------------------------


_selected: contextvars.ContextVar[Any] = contextvars.ContextVar("soak_scenario", default=None)


def scenario_for(body: Any, base: Any) -> Any:
    """The scenario a request's last message asks for (``[soak:mode:n]``), else ``base``."""
    import dataclasses

    try:
        content = body["messages"][-1]["content"]
    except (TypeError, KeyError, IndexError):
        return base
    match = MARKER.search(content if isinstance(content, str) else "")
    if match is None:
        return base
    mode, number = match.group(1), int(match.group(2) or 0)
    if mode == "fail-before":
        return dataclasses.replace(base, fail_status=number or 500, fail_message="soak: failing on purpose")
    if mode == "mid-abort":
        return dataclasses.replace(base, fail_after_chunks=number)
    if mode == "mid-error":
        return dataclasses.replace(base, error_event_after_chunks=number, fail_message="soak: error event")
    if mode in ("resume", "stop"):
        return dataclasses.replace(base, chunk_delay=SLOW_CHUNK_DELAY)
    return base


def serve_fake() -> None:
    """Entry point of the fake upstream's process: prints its port, serves until stdin closes.

    ``FakeOpenAI`` has one scenario at a time; the soak needs the answer chosen
    per request. :class:`SelectingFake` overrides ``scenario`` with a property
    that reads a context variable, set around each request from the marker in
    its last message (the handler's task carries it through ``_respond``).
    """
    sys.path.insert(0, str(ROOT))
    from tests.fakes.openai_upstream import FakeOpenAI, Scenario

    class SelectingFake(FakeOpenAI):
        @property
        def scenario(self) -> Scenario:
            return _selected.get() or self._base

        @scenario.setter
        def scenario(self, value: Scenario) -> None:
            self._base = value

        async def _respond(self, reader, writer, record, raw):
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            token = _selected.set(scenario_for(body, self._base))
            try:
                return await super()._respond(reader, writer, record, raw)
            finally:
                _selected.reset(token)

    # The standard loop, not uvloop: on uvloop a write after the client hung up raises
    # RuntimeError, which the fake does not expect (it logs a traceback per disconnect).
    fake = SelectingFake()
    fake.configure(chunks=CHUNKS, first_chunk_delay=0.02, chunk_delay=0.01)
    fake.start()
    print(fake.port, flush=True)
    sys.stdin.read()
    os._exit(0)


# --- the top-up process ------------------------------------------------------------------------


def run_topper(args: argparse.Namespace) -> None:
    """Entry point of the top-up process: rounds of concurrent replays until stdin closes.

    One JSON line per attempt goes to ``--out``: key, amount, the entry each
    attempt got back (all attempts of a key must get the same one), or the error.
    """
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from wallets.models import Wallet
    from wallets.services import wallet_top_up

    user = get_user_model().objects.get_by_natural_key(args.login)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    out = open(args.out, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    lock = threading.Lock()

    def attempt(key: str, amount: int, barrier: threading.Barrier) -> None:
        record: dict[str, Any] = {"key": key, "amount": amount, "via": "service"}
        try:
            barrier.wait(timeout=10)
            entry = wallet_top_up(user=user, amount=amount, reason="race soak top-up", idempotency_key=key)
            record["entry"] = entry.pk
        except Exception as exc:  # every failure is a finding, reported by the orchestrator
            record["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()  # back to the pool
        with lock:
            out.write(json.dumps(record) + "\n")

    round_number = 0
    while not stop.wait(args.topup_interval):
        round_number += 1
        available = Wallet.objects.filter(user=user).values_list("balance", "held").get()
        connection.close()
        low = available[0] - available[1] < args.low_water
        amount = args.refill if low else 1 + round_number % 5
        key = f"soak-{args.run}-{round_number}"
        barrier = threading.Barrier(args.replays)
        threads = [threading.Thread(target=attempt, args=(key, amount, barrier)) for _ in range(args.replays)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    out.close()


# --- the final check (Django) ------------------------------------------------------------------


def run_verify(args: argparse.Namespace) -> None:
    """Entry point of the check: waits for replies to settle, prints a JSON report of the books."""
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db.models import Sum

    from chats.models import Message
    from wallets.models import Hold, LedgerEntry, Wallet

    deadline = time.monotonic() + args.settle_seconds
    while time.monotonic() < deadline:
        pending = Message.objects.filter(status=Message.Status.PENDING).count()
        open_holds = Hold.objects.filter(status=Hold.Status.OPEN).count()
        if not pending and not open_holds:
            break
        time.sleep(0.5)
    waited = args.settle_seconds - max(0.0, deadline - time.monotonic())

    problems: list[str] = []
    user = get_user_model().objects.get_by_natural_key(args.login)
    wallet = Wallet.objects.get(user=user)
    pending = list(Message.objects.filter(status=Message.Status.PENDING).values_list("pk", flat=True))
    if pending:
        problems.append(f"{len(pending)} message(s) still pending after {waited:.0f} s: {pending[:5]}")
    open_holds = list(Hold.objects.filter(status=Hold.Status.OPEN).values_list("pk", "amount"))
    if open_holds:
        problems.append(f"{len(open_holds)} hold(s) still open: {open_holds[:5]}")

    holds = {hold.pk: hold for hold in Hold.objects.filter(wallet=wallet)}
    charges = {entry.hold_id: entry for entry in LedgerEntry.objects.filter(wallet=wallet, kind="charge")}
    messages = list(Message.objects.filter(session__user=user))
    assistant = [m for m in messages if m.role == Message.Role.ASSISTANT]
    by_hold: Counter = Counter(m.hold_id for m in assistant)
    for message in assistant:
        where = f"message {message.pk} ({message.status}, cost {message.cost})"
        hold = holds.get(message.hold_id)
        if hold is None:
            problems.append(f"{where}: no hold {message.hold_id}")
            continue
        if by_hold[message.hold_id] != 1:
            problems.append(f"{where}: hold {hold.pk} is shared by {by_hold[message.hold_id]} messages")
        charge = charges.get(hold.pk)
        charged = -charge.amount if charge is not None else 0
        if message.status in (Message.Status.COMPLETE, Message.Status.INCOMPLETE):
            if hold.status != Hold.Status.SETTLED:
                problems.append(f"{where}: hold {hold.pk} is {hold.status}, not settled")
            if not (charged == hold.charged == message.cost):
                problems.append(
                    f"{where}: charge entry {charged}, hold.charged {hold.charged}, cost {message.cost}"
                )
            if message.cost > hold.amount:
                problems.append(f"{where}: cost above the {hold.amount} held")
        elif message.status == Message.Status.FAILED:
            if hold.status != Hold.Status.RELEASED or charge is not None or message.cost or hold.charged:
                problems.append(
                    f"{where}: hold {hold.status}, charged {hold.charged}, charge entry {charged}"
                )
        else:
            problems.append(f"{where}: status {message.status!r}")
    orphans = set(holds) - set(by_hold)
    if orphans:
        problems.append(f"{len(orphans)} hold(s) belong to no message: {sorted(map(str, orphans))[:5]}")
    stray = set(charges) - set(holds)
    if stray:
        problems.append(f"{len(stray)} charge(s) name a hold of no message: {sorted(map(str, stray))[:5]}")

    charge_total = -sum(entry.amount for entry in charges.values())
    cost_total = sum(m.cost for m in assistant)
    if charge_total != cost_total:
        problems.append(f"sum of charges {charge_total} != sum of message costs {cost_total}")

    topups = list(
        LedgerEntry.objects.filter(wallet=wallet, kind="topup").values("pk", "idempotency_key", "amount")
    )
    keys = Counter(entry["idempotency_key"] for entry in topups)
    doubled = [key for key, count in keys.items() if count != 1 or key is None]
    if doubled:
        problems.append(f"top-up keys applied more than once or missing: {doubled[:5]}")
    totals = {
        kind: LedgerEntry.objects.filter(wallet=wallet, kind=kind).aggregate(total=Sum("amount"))["total"]
        or 0
        for kind in ("bonus", "topup", "charge", "refund", "adjustment")
    }
    ledger_sum = sum(totals.values())
    if wallet.balance != ledger_sum:
        problems.append(f"balance {wallet.balance} != ledger sum {ledger_sum}")
    if wallet.held != 0:
        problems.append(f"wallet.held is {wallet.held} with no reply running")

    report = {
        "waited": round(waited, 1),
        "problems": problems,
        "balance": wallet.balance,
        "held": wallet.held,
        "ledger": totals,
        "ledger_sum": ledger_sum,
        "ledger_entries": LedgerEntry.objects.filter(wallet=wallet).count(),
        "holds": Counter(hold.status for hold in holds.values()),
        "statuses": Counter(m.status for m in assistant),
        "user_messages": len(messages) - len(assistant),
        "messages": {str(m.pk): [m.status, m.cost, m.content, m.completion_tokens] for m in assistant},
        "redis": redis_leftovers(user.pk, problems),
        "topups": {entry["idempotency_key"]: [entry["pk"], entry["amount"]] for entry in topups},
        "cost_total": cost_total,
    }
    print(json.dumps(report))


def redis_leftovers(user_id: Any, problems: list[str]) -> list[str]:
    """With Redis: no reply slot left taken, and every reply's event stream set to expire as ended."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return []
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    slots = client.zcard(f"parley:replies-running:{user_id}")
    if slots:
        problems.append(f"{slots} reply slot(s) still taken in Redis with no reply running")
    streams = list(client.scan_iter(match="parley:reply:*:events", count=1000))
    ttls = [client.ttl(key) for key in streams]
    running = sum(ttl > settings.REPLY_EVENTS_TTL or ttl == -1 for ttl in ttls)
    if running:
        problems.append(f"{running} reply event stream(s) in Redis never got their end (no terminal TTL)")
    client.close()
    return [f"{len(streams)} reply event streams, {running} without an end; {slots} slots taken"]


# --- processes -----------------------------------------------------------------------------------


class Processes:
    """Every helper process, stopped (TERM, then KILL) on exit whatever happens."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, command: list[str], **kwargs: Any) -> subprocess.Popen:
        process = subprocess.Popen(command, cwd=ROOT, **kwargs)
        self.started.append(process)
        return process

    def stop(self, process: subprocess.Popen, timeout: float = 20) -> None:
        if process.poll() is None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=timeout)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in reversed(self.started):
            self.stop(process, timeout=10)


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")
        time.sleep(0.2)


# --- the clients -------------------------------------------------------------------------------


@dataclass
class Outcome:
    mode: str
    # complete | disconnected | resumed | stopped | stop-late | failed-before | failed-mid
    # | insufficient-funds | unexpected
    outcome: str
    message_id: str | None = None
    cost: int | None = None
    content: str = ""
    detail: str = ""
    #: A stop-late: seconds and deltas the client read between the stop's answer and ``done``.
    late: tuple[float, int] | None = None
    elsewhere: bool = False  # a resume or stop sent to another worker than the one running the reply


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    command_topups: list[dict[str, Any]] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 1000:
            self.problems.append(text)


def _ids_follow(ids: list[str | None], after: int) -> str:
    """'' when the events' ids are after+1, after+2, … with none missing or repeated; else what is wrong."""
    want = [str(number) for number in range(after + 1, after + 1 + len(ids))]
    return "" if ids == want else f"ids {ids[:3]}...{ids[-3:]} after {after}"


async def one_reply(
    client, base: str, other: str, session: str, headers: dict, mode: str, label: str
) -> Outcome:
    """Post one message asking for ``mode``; read the reply as a client would; say what happened.

    ``other`` is where a resume or a stop goes: another worker when the run has Redis.
    """
    number = {"fail-before": random.choice([400, 500, 503]), "mid-abort": random.randint(1, 8)}.get(mode, 0)
    if mode == "mid-error":
        number = random.randint(1, 8)
    marker = f"[soak:{mode}:{number}]" if number else f"[soak:{mode}]"
    cut_after = random.randint(1, 5)
    url = f"{base}/api/sessions/{session}/messages/"
    body = {"content": f"{marker} {label}"}
    outcome = Outcome(mode=mode, outcome="unexpected", elsewhere=other != base)
    deltas: list[str] = []
    names: list[str] = []
    ids: list[str | None] = []
    stop_status, stop_answered = None, (0.0, 0)
    async with client.stream("POST", url, json=body, headers=headers) as response:
        if response.status_code in (402, 429):
            error = json.loads(await response.aread())["error"]
            outcome.outcome = "insufficient-funds"
            if (response.status_code, error.get("code")) != (402, "insufficient_funds"):
                outcome.outcome, outcome.detail = "unexpected", f"{response.status_code} {error}"
            return outcome
        if response.status_code != 200:
            outcome.detail = f"HTTP {response.status_code}: {(await response.aread())[:300]!r}"
            return outcome
        async for event_id, name, raw in sse_frames(response):
            data = json.loads(raw)
            names.append(name)
            ids.append(event_id)
            if name == "start":
                outcome.message_id = data["assistant_message_id"]
            elif name == "delta":
                deltas.append(data["content"])
                if mode in ("disconnect", "resume") and len(deltas) >= cut_after:
                    outcome.outcome, outcome.content = "disconnected", "".join(deltas)
                    break  # leaving the block closes the connection mid-stream
                if mode == "stop" and len(deltas) == cut_after:
                    stop_status = await stop_reply(client, other, session, outcome, headers)
                    stop_answered = (time.monotonic(), len(deltas))
            elif name in ("done", "error"):
                read_end(outcome, name, data, deltas, mode, number)
    if outcome.outcome == "disconnected":
        problem = _ids_follow(ids, 0)
        if problem:
            outcome.outcome, outcome.detail = "unexpected", f"before the cut: {problem}"
        elif mode == "resume":
            await resume(client, other, session, outcome, headers, len(ids), deltas)
        return outcome
    problem = "" if names[-1:] == ["error"] and ids[-1:] == [None] else _ids_follow(ids, 0)
    if names[:1] != ["start"] or names[-1:] not in (["done"], ["error"]) or problem:
        outcome.outcome, outcome.detail = "unexpected", f"events {names[:3]}...{names[-2:]} {problem}"
    if mode == "stop":
        await check_stopped(client, other, session, outcome, headers, stop_status)
        if outcome.outcome == "stop-late":  # how far from its end the stop found the reply
            outcome.late = (time.monotonic() - stop_answered[0], len(deltas) - stop_answered[1])
        return outcome
    expected = {
        "normal": "complete",
        "disconnect": "complete",  # the reply can end before the client has seen its 1-5 deltas
        "resume": "complete",
        "fail-before": "failed-before",
        "mid-abort": "failed-mid",
        "mid-error": "failed-mid",
    }[mode]
    if outcome.outcome not in ("unexpected", expected):
        outcome.detail = f"asked for {mode}, got {outcome.outcome}"
        outcome.outcome = "unexpected"
    if mode.startswith("mid-") and outcome.outcome == "failed-mid" and len(deltas) != number:
        outcome.outcome, outcome.detail = "unexpected", f"{mode}:{number} after {len(deltas)} deltas"
    return outcome


def read_end(outcome: Outcome, name: str, data: dict, deltas: list[str], mode: str, number: int) -> None:
    """The reply's last event (``done`` or ``error``): what it says of the reply, in ``outcome``."""
    outcome.content = "".join(deltas)
    if name == "done":
        message = data["message"]
        outcome.cost = data["cost"]
        if message["content"] != outcome.content:
            outcome.detail = f"done with {message['content']!r}, the deltas say {outcome.content!r}"
        elif message["status"] == "complete" and outcome.content == REPLY:
            outcome.outcome = "complete"
        elif message["status"] == "incomplete" and mode == "stop":
            outcome.outcome = "stopped"
        else:
            outcome.detail = f"done with {message['status']} {message['content']!r}"
        return
    error = data["error"]
    details = error.get("details", {})
    message = details.get("message", {})
    outcome.cost = details.get("cost")
    if error.get("code") != "llm_unavailable":
        outcome.detail = f"error event {error}"
    elif not deltas and message.get("status") == "failed" and outcome.cost == 0:
        outcome.outcome = "failed-before"
    elif deltas and message.get("status") == "incomplete" and message.get("content") == outcome.content:
        outcome.outcome = "failed-mid"
    else:
        outcome.detail = f"error event after {len(deltas)} deltas: {error}"


async def resume(client, base: str, session: str, outcome: Outcome, headers: dict, seen: int, deltas) -> None:
    """``GET …/events/`` after the ``seen`` events read: every other one once, in order, then ``done``."""
    url = f"{base}/api/sessions/{session}/messages/{outcome.message_id}/events/"
    if random.random() < 0.5:
        request = {"headers": {**headers, "Last-Event-ID": str(seen)}}
    else:
        request = {"headers": headers, "params": {"after": seen}}
    names: list[str] = []
    ids: list[str | None] = []
    async with client.stream("GET", url, **request) as response:
        if response.status_code != 200:
            outcome.outcome = "unexpected"
            outcome.detail = f"resume: HTTP {response.status_code}: {(await response.aread())[:300]!r}"
            return
        async for event_id, name, raw in sse_frames(response):
            names.append(name)
            ids.append(event_id)
            data = json.loads(raw)
            if name == "delta":
                deltas.append(data["content"])
            elif name in ("done", "error"):
                outcome.outcome = "unexpected"
                read_end(outcome, name, data, deltas, "resume", 0)
    problem = _ids_follow(ids, seen)
    if names[-1:] != ["done"] or "start" in names or problem:
        outcome.outcome = "unexpected"
        outcome.detail = f"resume after {seen}: events {names[:2]}...{names[-2:]} {problem} {outcome.detail}"
    elif outcome.outcome == "complete":
        outcome.outcome = "resumed"
    else:
        outcome.detail = f"resume after {seen}: {outcome.detail}"


async def stop_reply(client, base: str, session: str, outcome: Outcome, headers: dict) -> int:
    """``POST …/stop/`` while the reply runs: 202, or 409 if it ended meanwhile; the status."""
    url = f"{base}/api/sessions/{session}/messages/{outcome.message_id}/stop/"
    answer = await client.post(url, headers={"Authorization": headers["Authorization"]})
    if answer.status_code not in (202, 409):
        outcome.detail = f"stop: HTTP {answer.status_code}: {answer.text[:300]}"
    return answer.status_code


async def check_stopped(client, base: str, session: str, outcome: Outcome, headers: dict, first) -> Outcome:
    """A stopped reply ends in ``done``, ``incomplete``; a second stop is 409.

    A stop that arrives as the reply ends is 409, or 202 with the reply ``complete``
    (the stop found it pending, the reply ended before the signal): "stop-late".
    """
    if first is None:  # the reply ended before the client had seen enough deltas to stop it
        if outcome.outcome == "complete":
            outcome.outcome = "stop-late"
        return outcome
    if outcome.outcome == "unexpected":
        return outcome
    if first not in (202, 409):
        outcome.outcome = "unexpected"
        return outcome
    if outcome.outcome == "complete":
        outcome.outcome = "stop-late"
        where = "the other worker" if outcome.elsewhere else "the worker running it"
        outcome.detail = f"stop on {where} answered {first}, the reply then ended complete"
    elif outcome.outcome != "stopped" or first != 202:
        outcome.detail = f"stop answered {first}, then the reply ended {outcome.outcome}"
        outcome.outcome = "unexpected"
        return outcome
    again = await stop_reply(client, base, session, outcome, headers)
    if again != 409:
        outcome.outcome, outcome.detail = "unexpected", f"a second stop answered {again}, not 409"
    return outcome


async def client_loop(index: int, bases: list[str], token: str, deadline: float, args, tally: Tally) -> None:
    import httpx

    auth = {"Authorization": f"Bearer {token}"}
    headers = {**auth, "Accept": "text/event-stream"}
    modes, weights = list(MODES), list(MODES.values())
    # Idle connections are dropped well before uvicorn's keep-alive timeout (5 s): reusing one as the
    # server closes it is a ReadError before the request is even read, a client artefact.
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=2)
    async with httpx.AsyncClient(timeout=httpx.Timeout(90, connect=30), limits=limits) as client:
        turn, session, sent = 0, "", 0
        while time.monotonic() < deadline:
            base = bases[sent % len(bases)]
            # A resume or a stop goes to any worker: through Redis, the one running the reply or not.
            other = random.choice(bases) if args.redis_url else base
            sent += 1
            mode = random.choices(modes, weights)[0]
            try:
                if turn % args.turns == 0:
                    answer = await client.post(
                        f"{base}/api/sessions/", json={"category": "general"}, headers=auth
                    )
                    answer.raise_for_status()
                    session = answer.json()["id"]
                turn += 1
                label = f"client {index} turn {turn}"
                outcome = await one_reply(client, base, other, session, headers, mode, label)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                outcome = Outcome(mode=mode, outcome="unexpected", detail=f"{type(exc).__name__}: {exc}")
            tally.outcomes.append(outcome)
            if outcome.outcome == "unexpected":
                tally.problem(f"client {index}: {outcome.mode}: {outcome.detail}")
            elif outcome.outcome == "insufficient-funds":
                await asyncio.sleep(random.uniform(0.05, 0.25))


async def command_topups(
    env: dict[str, str], login: str, run: str, rounds: int, seconds: float, tally: Tally
):
    """``manage.py topup_wallet --key K`` twice at once, ``rounds`` times spread over the run."""
    for number in range(rounds):
        await asyncio.sleep(seconds / (rounds + 1))
        key = f"soak-{run}-command-{number}"
        command = [
            PYTHON,
            "manage.py",
            "topup_wallet",
            login,
            "50",
            "--reason",
            "race soak command",
            "--key",
            key,
        ]

        async def once(command=command):
            process = await asyncio.create_subprocess_exec(
                *command, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            output, _ = await process.communicate()
            return process.returncode, output.decode()

        results = await asyncio.gather(once(), once())
        for status, output in results:
            tally.command_topups.append(
                {"key": key, "amount": 50, "status": status, "output": output.strip()}
            )
            if status != 0:
                tally.problem(f"topup_wallet --key {key} exited {status}: {output.strip()}")
        if sum("nothing added" in output for _, output in results) > 1:
            tally.problem(f"topup_wallet --key {key}: both runs say nothing was added: {results}")


# --- the run -------------------------------------------------------------------------------------


def orchestrate(args: argparse.Namespace) -> int:
    import httpx

    if urlsplit(args.database_url).scheme not in {"postgres", "postgresql"}:
        print("race_soak needs PostgreSQL (--database-url postgres://...)", file=sys.stderr)
        return 2
    run = f"{time.strftime('%H%M%S')}-{secrets.token_hex(2)}"
    workdir = Path(tempfile.mkdtemp(prefix="parley-soak-"))
    started = time.monotonic()
    print(f"race soak {run}: {args.seconds:g} s, {args.clients} clients, {args.workers} uvicorn worker(s)")
    print("machine:", json.dumps(machine()))

    with Processes() as processes:
        fake = processes.start(
            [PYTHON, __file__, "--fake"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        upstream = f"http://127.0.0.1:{int(fake.stdout.readline())}/v1"
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": args.database_url,
                "DATABASE_POOL_MAX": "10",
                "SECRET_KEY": "race-soak-" + secrets.token_urlsafe(40),
                "DEBUG": "false",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "REDIS_URL": args.redis_url,
                "LLM_PROVIDER": "openai",
                "OPENAI_BASE_URL": upstream,
                "OPENAI_API_KEY": "soak",
                "LLM_MAX_RETRIES": "1",
                "LLM_TIMEOUT": "30",
                "LLM_MAX_TOKENS": "256",
                "INITIAL_WALLET_BALANCE": str(args.balance),
                "AUTH_THROTTLE_RATE": "1000/min",
                "MESSAGE_THROTTLE_RATE": "1000000/min",  # one user sends every reply: not what a soak tests
                "JWT_ACCESS_MINUTES": "600",
                "LOG_LEVEL": "WARNING",
                # One user stands for the 50 clients that share its wallet: no per-user cap here.
                "MAX_CONCURRENT_REPLIES": str(args.max_replies),
            }
        )
        if args.redis_url:
            try:
                flush_redis(args.redis_url)
            except Exception as exc:
                print(f"no Redis at {args.redis_url} ({exc}); --redis-url '' runs without", file=sys.stderr)
                return 2
        reset_database(args.database_url)
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )

        # One uvicorn process (one worker) per port, so that a client can pick the worker: a resume
        # or a stop sent to the other one must go through Redis.
        bases, servers, server_logs = [], [], []
        for number in range(args.workers):
            port = free_port()
            server_logs.append(workdir / f"uvicorn-{number}.log")
            uvicorn = [PYTHON, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
            uvicorn += [f"--port={port}", "--workers=1", "--no-access-log", "--backlog=2048"]
            output = server_logs[-1].open("w")
            servers.append(processes.start(uvicorn, env=env, stdout=output, stderr=subprocess.STDOUT))
            bases.append(f"http://127.0.0.1:{port}")
        for base, server in zip(bases, servers, strict=True):
            wait_ready(f"{base}/healthz", server)
        base = bases[0]
        redis_text = f"Redis {args.redis_url}" if args.redis_url else "no Redis"
        print(
            f"setup: {time.monotonic() - started:.1f} s (database {args.database_url}, {redis_text}, "
            f"logs in {workdir})"
        )

        login = f"soak-{run}"
        answer = httpx.post(
            f"{base}/auth/register",
            json={"login_id": login, "password": secrets.token_urlsafe(16)},
            timeout=60,
        )
        answer.raise_for_status()
        token = answer.json()["access"]

        topups_file = workdir / "topups.jsonl"
        topper_args = [
            PYTHON,
            __file__,
            "--topper",
            "--login",
            login,
            "--run",
            run,
            "--out",
            str(topups_file),
        ]
        topper_args += [f"--topup-interval={args.topup_interval}", f"--replays={args.replays}"]
        topper_args += [f"--low-water={args.low_water}", f"--refill={args.refill}"]
        topper = processes.start(topper_args, env=env, stdin=subprocess.PIPE, text=True)

        tally = Tally()
        load_started = time.monotonic()
        deadline = load_started + args.seconds

        async def load() -> None:
            rounds = max(1, int(args.seconds // 60))
            await asyncio.gather(
                *(client_loop(index, bases, token, deadline, args, tally) for index in range(args.clients)),
                command_topups(env, login, run, rounds, args.seconds, tally),
            )

        asyncio.run(load())
        load_seconds = time.monotonic() - load_started
        processes.stop(topper)
        if topper.returncode != 0:
            tally.problem(f"the top-up process exited with status {topper.returncode}")

        verify = subprocess.run(
            [PYTHON, __file__, "--verify", "--login", login, f"--settle-seconds={args.settle_seconds}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        if verify.returncode != 0:
            print("the final check crashed", file=sys.stderr)
            return 2
        books = json.loads(verify.stdout)
        audit = manage(env, "audit_wallets", check=False)
        stale = manage(env, "release_stale_holds", "--minutes", "0", check=False)
        for server in servers:
            processes.stop(server, timeout=30)

    status = report(args, run, tally, books, audit, stale, topups_file, server_logs, load_seconds, started)
    if status == 0 and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
        drop_database(args.database_url)
        if args.redis_url:
            flush_redis(args.redis_url)
    else:
        print(f"kept for a post-mortem: database {args.database_url}, logs in {workdir}")
    return status


def flush_redis(url: str) -> None:
    """Empty the soak's Redis database: its user ids restart at 1 with each fresh PostgreSQL one."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def report(
    args, run, tally: Tally, books, audit, stale, topups_file, server_logs, load_seconds, started
) -> int:
    problems = list(tally.problems) + books["problems"]

    # Top-ups: every attempt at a key answered by the one entry in the ledger.
    attempts = [json.loads(line) for line in topups_file.read_text().splitlines() if line.strip()]
    by_key: dict[str, list[dict]] = {}
    for attempt in attempts:
        by_key.setdefault(attempt["key"], []).append(attempt)
        if "error" in attempt:
            problems.append(f"top-up {attempt['key']}: {attempt['error']}")
    ledger_topups = books["topups"]
    for key, tries in by_key.items():
        entries = {attempt.get("entry") for attempt in tries if "entry" in attempt}
        if key not in ledger_topups:
            problems.append(f"top-up key {key} is not in the ledger")
        elif entries != {ledger_topups[key][0]}:
            problems.append(
                f"top-up key {key}: attempts got entries {entries}, ledger has {ledger_topups[key][0]}"
            )
    command_keys = {item["key"] for item in tally.command_topups}
    for key in command_keys:
        if key not in ledger_topups:
            problems.append(f"manage.py top-up key {key} is not in the ledger")
    unknown = set(ledger_topups) - set(by_key) - command_keys
    if unknown:
        problems.append(f"top-ups in the ledger that nobody sent: {sorted(unknown)[:5]}")
    topup_total = sum(amount for _, amount in ledger_topups.values())
    if topup_total != books["ledger"]["topup"]:
        problems.append(f"top-up total {topup_total} != ledger top-ups {books['ledger']['topup']}")

    # Messages: what the clients saw is what the database says; nothing else is there.
    seen: dict[str, Outcome] = {}
    for outcome in tally.outcomes:
        if outcome.message_id:
            seen[outcome.message_id] = outcome
    stored = books["messages"]
    stored_status: Counter = Counter()
    for message_id, outcome in seen.items():
        if message_id not in stored:
            problems.append(f"message {message_id} ({outcome.outcome}) is not in the database")
            continue
        status, cost, content, completion_tokens = stored[message_id]
        stored_status[(outcome.outcome, status)] += 1
        # A reply runs to its end whatever becomes of its client: a disconnected one is complete,
        # charged in full (the upstream's usage: every chunk), like one read to the end.
        want = {
            "complete": "complete",
            "resumed": "complete",
            "disconnected": "complete",
            "stop-late": "complete",
            "stopped": "incomplete",
            "failed-before": "failed",
            "failed-mid": "incomplete",
        }.get(outcome.outcome)
        if want is not None and status != want:
            problems.append(f"message {message_id}: the client saw {outcome.outcome}, stored {status}")
        if outcome.cost is not None and outcome.cost != cost:
            problems.append(f"message {message_id}: the client was told cost {outcome.cost}, stored {cost}")
        seen_whole = ("complete", "resumed", "stopped", "stop-late", "failed-mid")
        if outcome.outcome in seen_whole and content != outcome.content:
            problems.append(f"message {message_id}: stored content differs from the deltas")
        if outcome.outcome == "disconnected" and content != REPLY:
            problems.append(f"message {message_id}: disconnected, stored {content!r}, not the whole reply")
        if want == "complete" and completion_tokens != len(CHUNKS):
            problems.append(
                f"message {message_id} ({outcome.outcome}): charged for {completion_tokens} completion "
                f"tokens, not the {len(CHUNKS)} the upstream reported"
            )

    unseen = set(stored) - set(seen)
    if unseen:
        problems.append(f"{len(unseen)} assistant message(s) no client saw start: {sorted(unseen)[:3]}")
    if books["user_messages"] != len(stored):
        problems.append(f"{books['user_messages']} user messages for {len(stored)} assistant messages")
    if audit.returncode != 0:
        problems.append(f"audit_wallets failed: {audit.stdout.strip()}")
    if "Released 0 stale hold(s)." not in stale.stdout or "Closed 0 stale replies" not in stale.stdout:
        problems.append(f"release_stale_holds --minutes 0 found something: {stale.stdout.strip()}")
    log = "\n".join(path.read_text(errors="replace") for path in server_logs)
    errors = [
        line for line in log.splitlines() if "Traceback" in line or " ERROR " in line or "ERROR:" in line
    ]
    if errors:
        problems.append(f"the server logged {len(errors)} error line(s), first: {errors[0]}")

    outcomes = Counter(outcome.outcome for outcome in tally.outcomes)
    started_replies = len(seen)
    applied = len(by_key)
    replayed = len(attempts) - applied
    commands_replayed = sum("nothing added" in item["output"] for item in tally.command_topups)
    print()
    print(
        f"load: {load_seconds:.1f} s, {len(tally.outcomes)} requests, {started_replies} replies started "
        f"({started_replies / load_seconds:.1f}/s)"
    )
    print("replies by outcome (client side):")
    for name in (
        "complete",
        "disconnected",
        "resumed",
        "stopped",
        "stop-late",
        "failed-before",
        "failed-mid",
        "insufficient-funds",
        "unexpected",
    ):
        print(f"  {name:<20} {outcomes[name]:6d}")
    disconnected = {status: n for (seen_as, status), n in stored_status.items() if seen_as == "disconnected"}
    print(f"  (disconnects stored as: {dict(sorted(disconnected.items()))})")
    elsewhere = Counter(o.outcome for o in tally.outcomes if o.elsewhere and o.mode in ("resume", "stop"))
    print(f"  (resumes and stops sent to the other worker: {dict(sorted(elsewhere.items()))})")
    late = Counter(o.detail for o in tally.outcomes if o.outcome == "stop-late")
    if late:
        print(f"  (stop-late: {dict(late)})")
        after = sorted(o.late for o in tally.outcomes if o.late)
        print(
            "  (stop-late, then read before done: "
            + ", ".join(f"{seconds * 1000:.0f} ms/{deltas} deltas" for seconds, deltas in after[-10:])
            + ")"
        )
    for line in books["redis"]:
        print(f"redis: {line}")
    statuses = dict(sorted(books["statuses"].items()))
    print(f"assistant messages stored: {statuses}; holds: {dict(sorted(books['holds'].items()))}")
    print(
        f"top-ups: {applied} keys x {args.replays} concurrent attempts: {applied} applied, "
        f"{replayed} replayed; manage.py topup_wallet --key: {len(tally.command_topups)} runs on "
        f"{len(command_keys)} keys, {commands_replayed} said nothing was added"
    )
    ledger = books["ledger"]
    print(
        f"ledger: bonus {ledger['bonus']} + top-ups {ledger['topup']} + charges {ledger['charge']} "
        f"= {books['ledger_sum']} ({books['ledger_entries']} entries); "
        f"sum of message costs {books['cost_total']}"
    )
    print(
        f"final balance {books['balance']}, held {books['held']}; replies settled {books['waited']} s after"
    )
    print(f"audit_wallets: {'passed' if audit.returncode == 0 else 'FAILED'} ({audit.stdout.strip()})")
    print(f"total time {time.monotonic() - started:.1f} s")
    if problems:
        print(f"\n{len(problems)} VIOLATION(S):")
        for problem in problems[:50]:
            print(f"  - {problem}")
        return 1
    print("no violation")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180, help="load duration (default 180)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--turns", type=int, default=8, help="messages per session before a new one")
    parser.add_argument("--database-url", default=os.environ.get("SOAK_DATABASE_URL", DEFAULT_DATABASE))
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("SOAK_REDIS_URL", DEFAULT_REDIS),
        help=f"flushed before and after (default {DEFAULT_REDIS}); '' runs without Redis: then a resume "
        "or a stop goes to the worker running the reply",
    )
    parser.add_argument(
        "--max-replies", type=int, default=100_000, help="MAX_CONCURRENT_REPLIES of the server (per user)"
    )
    parser.add_argument("--balance", type=int, default=100, help="the sign-up bonus")
    parser.add_argument("--topup-interval", type=float, default=0.5)
    parser.add_argument("--replays", type=int, default=4, help="concurrent attempts per top-up key")
    parser.add_argument("--low-water", type=int, default=20, help="refill when available credit is below")
    parser.add_argument("--refill", type=int, default=120)
    parser.add_argument("--settle-seconds", type=float, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database and logs after a pass")
    parser.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--topper", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--verify", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--login", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake:
        serve_fake()
        return 0
    if args.topper:
        run_topper(args)
        return 0
    if args.verify:
        run_verify(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
