"""The soak's clients: one user's replies, resumed, stopped and cut, read as a browser would."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from _common import PYTHON, ROOT  # bench/ is on sys.path
from _sse import sse_frames

from soak import REPLY

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


@dataclass
class Outcome:
    mode: str
    # complete | disconnected | resumed | stopped | stop-late | failed-before | failed-mid
    # | unserved | insufficient-funds | unexpected
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
    client: httpx.AsyncClient, base: str, other: str, session: str, headers: dict, mode: str, label: str
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
    if outcome.outcome not in ("unexpected", "unserved", expected):
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
        if mode != "fail-before" and unserved(details):
            outcome.outcome = "unserved"
    elif deltas and message.get("status") == "incomplete" and message.get("content") == outcome.content:
        outcome.outcome = "failed-mid"
    else:
        outcome.detail = f"error event after {len(deltas)} deltas: {error}"


def unserved(details: dict) -> bool:
    """An error event saying no deployment served a reply that asked for no failure: the flaky fake
    failed at random (a 502, 504, 429, or a dropped connection) while ``main`` was cooling down, or
    both were. No ``[soak:fail-before]`` status (400, 500, 503) may be among them."""
    if details.get("reason") in ("cooldown", "connection"):
        return True
    return details.get("upstream_status") in (429, 502, 504)


async def resume(
    client: httpx.AsyncClient,
    base: str,
    session: str,
    outcome: Outcome,
    headers: dict,
    seen: int,
    deltas: list[str],
) -> None:
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


async def stop_reply(
    client: httpx.AsyncClient, base: str, session: str, outcome: Outcome, headers: dict
) -> int:
    """``POST …/stop/`` while the reply runs: 202, or 409 if it ended meanwhile; the status."""
    url = f"{base}/api/sessions/{session}/messages/{outcome.message_id}/stop/"
    answer = await client.post(url, headers={"Authorization": headers["Authorization"]})
    if answer.status_code not in (202, 409):
        outcome.detail = f"stop: HTTP {answer.status_code}: {answer.text[:300]}"
    return answer.status_code


async def check_stopped(
    client: httpx.AsyncClient, base: str, session: str, outcome: Outcome, headers: dict, first: int | None
) -> Outcome:
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


async def client_loop(
    index: int, bases: list[str], token: str, deadline: float, args: argparse.Namespace, tally: Tally
) -> None:

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
) -> None:
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

        async def once(command: list[str] = command) -> tuple[int | None, str]:
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
