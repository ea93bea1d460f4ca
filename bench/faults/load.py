"""The drill's clients: ~20 replies streaming over both workers, and a trickle of other requests.

Every request becomes a record of what its client saw, timestamped, so that
a scenario can tell apart what happened before, during and after its fault.
Nothing is inferred from the server's side here: an HTTP status, an error
code, ``Retry-After``, the SSE events and their ids, the text of the deltas,
or the transport error when the connection ended without an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from _sse import sse_frames  # bench/ is on sys.path

#: No byte for this long on a stream: the client gives up and records a hang.
IDLE_TIMEOUT = 20.0


#: The kinds of request that read a reply's events.
STREAMS = frozenset({"reply", "probe", "message", "resume"})


@dataclass
class User:
    login: str
    password: str
    token: str = ""
    session: str = ""  # one chat session per user, created at sign-up
    #: Which worker (0 or 1) its stream clients use: a killed worker's users are known.
    home: int = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Record:
    """One request as its client saw it."""

    kind: str  # reply | probe | login | wallet | readyz | message | resume | stop
    worker: int
    user: str
    started: float
    ended: float = 0.0
    answered_at: float = 0.0  # when the status line came
    status: int | None = None
    code: str | None = None  # the JSON error's code, for a refusal
    retry_after: str | None = None
    events: list[str] = field(default_factory=list)  # SSE event names, in order
    last_id: int = 0  # the last numbered event seen (what Last-Event-ID resends)
    message_id: str | None = None
    session: str = ""
    text: str = ""  # the deltas, joined
    final: str | None = None  # "done" | "error" | None (the stream ended without its last event)
    final_code: str | None = None  # done: the message's status; error: the error's code
    final_status: str | None = None  # the stored message as the last event described it
    final_content: str | None = None
    cost: int | None = None
    transport: str | None = None  # the exception that ended the request without a (whole) answer

    def outcome(self) -> str:
        """What the client saw, in a few words (the tables count these)."""
        if self.status is None:
            if self.transport and self.transport.startswith("ConnectError"):
                return "connection refused"
            return f"no answer ({self.transport})"
        if self.status == 200 and self.kind in STREAMS and not self.events:
            return f"200, then cut before any event ({self.transport or 'ended'})"
        if self.status != 200 or self.kind not in STREAMS:
            text = f"{self.status} {self.code or ''}".strip()
            if self.status in (429, 503):
                text += " +Retry-After" if self.retry_after else " NO Retry-After"
            return text
        if self.final is None:
            cut = self.transport or "ended"
            return f"200, cut after {len(self.events)} event(s) ({cut})"
        return f"200 {self.final} {self.final_code}"

    @property
    def answered(self) -> bool:
        """The server said something conclusive: a status with its body, or, for a stream, a 200
        and then its last event (``done`` or ``error``)."""
        if self.status is None:
            return False
        return self.status != 200 or self.kind not in STREAMS or self.final is not None


class Load:
    """The clients of one scenario: started, stopped (each finishes its request), their records."""

    def __init__(
        self, bases: list[str], stream_users: list[User], trickle_users: list[User], *, per_user: int
    ):
        self.bases = bases
        self.stream_users = stream_users
        self.trickle_users = trickle_users
        self.per_user = per_user
        self.records: list[Record] = []
        #: Cleared while a worker is known to be down: its users' clients wait rather than hammer it.
        self.up = [asyncio.Event() for _ in bases]
        for event in self.up:
            event.set()
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(IDLE_TIMEOUT, connect=5, pool=10),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=0),
        )

    # --- running ------------------------------------------------------------------------------

    def start(self) -> None:
        for user in self.stream_users:
            for _ in range(self.per_user):
                self.tasks.append(asyncio.create_task(self._stream_client(user)))
        self.tasks.append(asyncio.create_task(self._trickle()))

    async def stop(self, timeout: float = 45) -> None:
        """Clients finish the request they are on (at most ``timeout`` s), then stop."""
        self.stopping.set()
        _, pending = await asyncio.wait(self.tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    async def close(self) -> None:
        await self.client.aclose()

    def in_flight(self, worker: int | None = None) -> list[Record]:
        """Replies whose stream has started and not ended (on ``worker``, or any)."""
        return [
            r
            for r in self.records
            if r.kind == "reply" and r.message_id and not r.ended and (worker is None or r.worker == worker)
        ]

    async def wait_in_flight(self, count: int, timeout: float, worker: int | None = None) -> int:
        """Wait until ``count`` replies stream (at most ``timeout`` s); how many do."""
        deadline = time.monotonic() + timeout
        while len(self.in_flight(worker)) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return len(self.in_flight(worker))

    async def _stream_client(self, user: User) -> None:
        await asyncio.sleep(random.uniform(0, 2))  # spread the starts: replies end at different times
        while not self.stopping.is_set():
            if not self.up[user.home].is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.up[user.home].wait(), 1)
                continue
            record = await self.post_message(user, user.home, kind="reply")
            await asyncio.sleep(pause_after(record))

    async def _trickle(self) -> None:
        """About four requests a second of the other kinds, on a worker that is up, each on its own."""
        running: set[asyncio.Task] = set()
        kinds = ["login", "wallet", "readyz", "message", "resume", "stop"]
        while not self.stopping.is_set():
            await asyncio.sleep(0.25)
            workers = [index for index, up in enumerate(self.up) if up.is_set()]
            if not workers or len(running) > 12:
                continue
            kind, worker = random.choice(kinds), random.choice(workers)
            task = asyncio.create_task(self._one_of(kind, random.choice(self.trickle_users), worker))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running, return_exceptions=True)

    async def _one_of(self, kind: str, user: User, worker: int) -> Record | None:
        if kind == "login":
            return await self.login(user, worker)
        if kind in ("wallet", "readyz"):
            return await self.simple(
                kind, "GET", {"wallet": "/api/wallet/", "readyz": "/readyz"}[kind], user, worker
            )
        if kind == "message":
            # At most two at once per trickle user: its third slot stays free, so a 429 is news.
            if sum(r.kind == "message" and r.user == user.login and not r.ended for r in self.records) >= 2:
                return None
            return await self.post_message(user, worker, kind="message")
        if kind == "resume":
            return await self.resume_recent(user, worker)
        return await self.stop_running(worker)

    # --- requests -----------------------------------------------------------------------------

    async def post_message(self, user: User, worker: int, *, kind: str, label: str = "") -> Record:
        """``POST /api/sessions/{id}/messages/`` and read the reply's events to its end."""
        record = Record(kind, worker, user.login, time.monotonic(), session=user.session)
        await self._post_message(record, user, worker, kind, label)
        return record

    def start_message(self, user: User, worker: int, *, kind: str) -> tuple[Record, asyncio.Task]:
        """:meth:`post_message` in a task of its own; its record at once (its status comes first)."""
        record = Record(kind, worker, user.login, time.monotonic(), session=user.session)
        return record, asyncio.create_task(self._post_message(record, user, worker, kind, ""))

    async def _post_message(self, record: Record, user: User, worker: int, kind: str, label: str) -> None:
        self.records.append(record)
        url = f"{self.bases[worker]}/api/sessions/{user.session}/messages/"
        body = {"content": f"fault drill {kind} {label or secrets.token_hex(3)}"}
        await self._read_stream(
            record, "POST", url, json=body, headers={**user.auth, "Accept": "text/event-stream"}
        )

    async def resume(
        self, user: User, worker: int, session: str, message_id: str, after: int, *, idle: float, total: float
    ) -> Record:
        """``GET …/messages/{id}/events/`` with ``Last-Event-ID: after``; read at most ``total`` s."""
        record = Record(
            "resume", worker, user.login, time.monotonic(), session=session, message_id=message_id
        )
        record.last_id = after
        self.records.append(record)
        url = f"{self.bases[worker]}/api/sessions/{session}/messages/{message_id}/events/"
        headers = {**user.auth, "Accept": "text/event-stream", "Last-Event-ID": str(after)}
        timeout = httpx.Timeout(idle, connect=5, pool=10)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._read_stream(record, "GET", url, headers=headers, timeout=timeout), total
            )
        if not record.ended:  # wait_for cut it: the stream went on past ``total`` without ending
            record.ended, record.transport = time.monotonic(), f"still open after {total:.0f} s"
        return record

    async def resume_recent(self, user: User, worker: int) -> Record | None:
        """A trickle user resumes one of its own replies (any worker), from a random point."""
        mine = [r for r in self.records if r.user == user.login and r.message_id and r.kind == "message"]
        if not mine:
            return None
        target = random.choice(mine[-5:])
        after = random.randint(0, max(target.last_id - 1, 0))  # before its last event: one is due
        return await self.resume(
            user, worker, target.session, target.message_id or "", after, idle=10, total=20
        )

    async def stop_running(self, worker: int) -> Record | None:
        """``POST …/stop/`` on a reply a stream client is reading (its reader then sees it end)."""
        running = self.in_flight()
        if not running:
            return None
        target = random.choice(running)
        user = next(u for u in self.stream_users if u.login == target.user)
        url = f"{self.bases[worker]}/api/sessions/{target.session}/messages/{target.message_id}/stop/"
        return await self.simple("stop", "POST", url, user, worker, absolute=True)

    async def login(self, user: User, worker: int) -> Record:
        body = {"login_id": user.login, "password": user.password}
        return await self.simple("login", "POST", "/auth/login/", None, worker, json=body)

    async def simple(
        self,
        kind: str,
        method: str,
        path: str,
        user: User | None,
        worker: int,
        *,
        absolute: bool = False,
        json: Any = None,
    ) -> Record:
        record = Record(kind, worker, user.login if user else "", time.monotonic())
        self.records.append(record)
        url = path if absolute else f"{self.bases[worker]}{path}"
        try:
            answer = await self.client.request(method, url, headers=user.auth if user else {}, json=json)
            record.status = answer.status_code
            record.retry_after = answer.headers.get("Retry-After")
            if answer.status_code >= 400:
                record.code = error_code(answer.content)
        except httpx.HTTPError as exc:
            record.transport = f"{type(exc).__name__}: {exc}"[:120]
        record.ended = time.monotonic()
        return record

    async def _read_stream(self, record: Record, method: str, url: str, **request: Any) -> None:
        try:
            async with self.client.stream(method, url, **request) as response:
                record.status, record.answered_at = response.status_code, time.monotonic()
                record.retry_after = response.headers.get("Retry-After")
                if response.status_code != 200:
                    record.code = error_code(await response.aread())
                    return
                async for event_id, name, raw in sse_frames(response):
                    read_event(record, event_id, name, raw)
                    if name in ("done", "error"):
                        break
        except httpx.HTTPError as exc:
            record.transport = f"{type(exc).__name__}"
        finally:
            record.ended = time.monotonic()


def read_event(record: Record, event_id: str | None, name: str, raw: bytes) -> None:
    record.events.append(name)
    if event_id and event_id.isdigit():
        record.last_id = int(event_id)
    data = json.loads(raw)
    if name == "start":
        record.message_id = data.get("assistant_message_id")
    elif name == "delta":
        record.text += data.get("content", "")
    elif name == "done":
        message = data.get("message", {})
        record.final, record.final_code = "done", message.get("status")
        record.final_status, record.final_content = message.get("status"), message.get("content")
        record.cost = data.get("cost")
    elif name == "error":
        error = data.get("error", {})
        details = error.get("details") or {}
        message = details.get("message") or {}
        record.final, record.final_code = "error", error.get("code")
        record.final_status, record.final_content = message.get("status"), message.get("content")
        record.cost = details.get("cost")


def error_code(body: bytes) -> str | None:
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"(not JSON: {body[:60]!r})"


def pause_after(record: Record) -> float:
    """A client's pause before its next message: short after a reply, ``Retry-After`` (at most 2 s)
    after a refusal, half a second after a transport error."""
    if record.status in (429, 503) and record.retry_after and record.retry_after.isdigit():
        return min(float(record.retry_after), 2.0)
    if record.status is None or record.status >= 400:
        return 0.5
    return random.uniform(0.05, 0.3)


async def register(client: httpx.AsyncClient, base: str, login: str) -> User:
    """Sign up through the API (README: ``/auth/register/``) and open the user's session."""
    user = User(login, secrets.token_urlsafe(16))
    answer = await client.post(f"{base}/auth/register/", json={"login_id": login, "password": user.password})
    answer.raise_for_status()
    user.token = answer.json()["access"]
    answer = await client.post(f"{base}/api/sessions/", json={"category": "general"}, headers=user.auth)
    answer.raise_for_status()
    user.session = answer.json()["id"]
    return user


async def probe_recovery(
    load: Load, users: list[User], since: float, timeout: float
) -> tuple[float | None, float | None, list[Record]]:
    """After a fault is repaired: messages on each worker in turn (two a second, at most two
    running per probe user, below its reply limit) until one is accepted and ends ``done
    complete``. Seconds from ``since`` until that reply was accepted (its 200), and until it
    ended; None after ``timeout``."""
    deadline = time.monotonic() + timeout
    tries: list[Record] = []
    turn = 0
    pending: set[asyncio.Task] = set()
    try:
        while time.monotonic() < deadline:
            if len(pending) < 2 * len(users):
                worker = turn % len(load.bases)
                turn += 1
                user = users[worker % len(users)]
                pending.add(asyncio.create_task(load.post_message(user, worker, kind="probe")))
            done, pending = await asyncio.wait(pending, timeout=0.5)
            for finished in done:
                record = finished.result()
                tries.append(record)
                if record.final == "done" and record.final_code == "complete":
                    return record.answered_at - since, record.ended - since, tries
    finally:  # the probes still running are let finish (cut, they would count as dropped)
        if pending:
            _, late = await asyncio.wait(pending, timeout=30)
            for task in late:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    return None, None, tries
