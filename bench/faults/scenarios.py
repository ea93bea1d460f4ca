"""The four faults, one at a time, each under load, then the sweep and the audit.

Each scenario measures and records; it never assumes. Two kinds of checks
come out of it: *invariants* (no 500, no connection dropped without an
answer where none was cut on purpose, what a client was sent is what was
stored and charged, the books clean after the sweep), whose failure makes
the drill exit 1, and *expectations* (the behaviour issue 25 asks for: 409
while the lease runs, one final event after the sweep, slots freed, ...),
reported as met or not with what was seen.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from faults import books
from faults.load import Load, Record, User, probe_recovery
from faults.stack import Stack

#: Statuses a server may answer while a dependency is down: refusals that say so.
FINE_5XX = {
    (503, "service_unavailable"),
    (503, "llm_unavailable"),
    (502, "llm_unavailable"),
    (503, "not_ready"),  # /readyz: saying a dependency is down is its job
}


@dataclass
class Expectation:
    text: str
    met: bool
    seen: str


@dataclass
class Result:
    name: str
    fault: str
    started: float = 0.0
    fault_at: float = 0.0
    repaired_at: float = 0.0
    ended: float = 0.0
    records: list[Record] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    sweep: books.Command | None = None
    #: Scenario 3: the sweep run once the killed replies' lease ran out, before resuming again.
    sweep_mid: books.Command | None = None
    #: Seconds from the repair until a new reply was accepted, and until it ended complete.
    recovery: tuple[float | None, float | None] | None = None
    #: What stands for the recovery when no probe measures it (scenario 3: the slots freed).
    recovery_note: str = ""
    audit: books.Command | None = None
    leftovers: dict[str, Any] = field(default_factory=dict)
    stored: dict[str, Any] = field(default_factory=dict)
    #: The workers' log lines of the scenario: WARNING/ERROR lines by message, and tracebacks.
    log: Counter = field(default_factory=Counter)
    log_offsets: dict[str, int] = field(default_factory=dict)
    #: Records whose connection was cut on purpose (the killed worker's streams): not violations.
    cut_on_purpose: set[int] = field(default_factory=set)

    def figure(self, name: str, value: Any) -> None:
        self.figures.append((name, str(value)))

    def expect(self, text: str, met: bool, seen: str) -> None:
        self.expectations.append(Expectation(text, met, seen))

    def phase(self, record: Record) -> str:
        """Before the fault, during it (until repaired), or after."""
        if record.started < self.fault_at:
            return "before"
        if record.started < self.repaired_at:
            return "during"
        return "after"


@dataclass
class Drill:
    """What the scenarios share: the stack, the users, the settings."""

    stack: Stack
    stream_users: list[User]
    trickle_users: list[User]
    probe_users: list[User]
    per_user: int
    lease: int

    @property
    def bases(self) -> list[str]:
        return [worker.base for worker in self.stack.workers]

    def load(self) -> Load:
        return Load(self.bases, self.stream_users, self.trickle_users, per_user=self.per_user)


async def warm_up(drill: Drill, load: Load, result: Result, want: int) -> None:
    result.log_offsets = {str(w.log): w.log.stat().st_size for w in drill.stack.workers}
    load.start()
    result.started = time.monotonic()
    streaming = await load.wait_in_flight(want, timeout=25)
    await asyncio.sleep(1.0)  # a second into the replies: the fault lands mid-stream
    result.figure("replies streaming when the fault hit", len(load.in_flight()))
    if streaming < want:
        result.figure("(wanted streaming)", want)


async def finish(drill: Drill, load: Load, result: Result, cut_worker: int | None = None) -> None:
    """Stop the load; once every lease has run out, ``release_stale_holds``, the audit, the leftovers.

    ``cut_worker``: the worker killed at ``fault_at``; the requests it was serving then lost their
    connection on purpose.
    """
    await load.stop()
    result.ended = time.monotonic()
    result.records = list(load.records)
    result.cut_on_purpose = {
        index
        for index, r in enumerate(result.records)
        if r.worker == cut_worker and r.started <= result.fault_at <= r.ended
    }
    await load.close()
    await asyncio.sleep(drill.lease + 1.5)  # a reply whose worker died renews nothing: its lease runs out
    env = drill.stack.env
    result.sweep = await books.manage(env, "release_stale_holds")
    result.audit = await books.manage(env, "audit_wallets")
    result.leftovers = await books.leftovers(env)
    ids = sorted({r.message_id for r in result.records if r.message_id})
    result.stored = await books.stored(env, ids)
    result.log = read_logs(result.log_offsets)
    check_books(result)
    check_answers(result)
    check_stored(result)


# --- the invariants ---------------------------------------------------------------------------


def check_books(result: Result) -> None:
    if result.sweep is None or not result.sweep.ok:
        result.violations.append(f"release_stale_holds failed: {result.sweep and result.sweep.output}")
    if result.audit is None or not result.audit.ok:
        result.violations.append(f"audit_wallets not clean: {result.audit and result.audit.output[-600:]}")
    left = result.leftovers
    if "_error" in left:
        result.violations.append(f"could not read the leftovers: {left['_error'][-300:]}")
        return
    for name in ("open_holds", "pending_replies", "wallets_holding"):
        if left.get(name):
            result.violations.append(f"after the sweep: {name} = {left[name]}")


def check_answers(result: Result) -> None:
    """No 500 (a refusal names its cause: 503 with Retry-After); no connection dropped unanswered."""
    bad: Counter = Counter()
    for index, record in enumerate(result.records):
        if index in result.cut_on_purpose:
            continue
        if record.status is not None and record.status >= 500:
            if (record.status, record.code) not in FINE_5XX:
                bad[f"{record.kind}: {record.status} {record.code}"] += 1
            elif record.code == "service_unavailable" and not record.retry_after:
                bad[f"{record.kind}: 503 without Retry-After"] += 1
        if record.kind == "resume" and result.name.startswith("3"):
            continue  # the killed worker's resumes are the scenario's expectations, not invariants
        if not record.answered and not (record.transport or "").startswith("ConnectError"):
            bad[f"{record.kind}: {record.outcome()}"] += 1
        if record.final == "error" and record.final_code == "server_error":
            bad[f"{record.kind}: error event server_error"] += 1
    for text, count in bad.items():
        result.violations.append(f"{count} x {text}")


def check_stored(result: Result) -> None:
    """Every reply whose client got its last event: the sent text and the stored content agree, and
    what was charged (the ledger) is the cost the client was told and the one stored."""
    if "_error" in result.stored:
        result.violations.append(f"could not read the stored replies: {result.stored['_error'][-300:]}")
        return
    problems: Counter = Counter()
    for record in result.records:
        if record.kind == "resume" or not record.message_id or record.final is None:
            continue
        row = result.stored.get(record.message_id)
        if row is None:
            problems["reply not stored"] += 1
            continue
        if row["content"] != record.text:
            problems[f"stored content != the text sent (stored {row['status']})"] += 1
        if record.final_status and row["status"] != record.final_status:
            problems[f"last event said {record.final_status}, stored {row['status']}"] += 1
        if record.cost is not None and record.cost != row["cost"]:
            problems["cost told != cost stored"] += 1
        if row["charged"] != row["cost"]:
            problems[f"charged {row['charged']} != cost (stored {row['status']})"] += 1
    for text, count in problems.items():
        result.violations.append(f"{count} x {text}")


# --- the scenarios ----------------------------------------------------------------------------


async def redis_down(drill: Drill, seconds: float = 10) -> Result:
    result = Result("1 Redis down", f"redis-server stopped {seconds:.0f} s, then started (empty)")
    load = drill.load()
    await warm_up(drill, load, result, want=18)
    result.fault_at = time.monotonic()
    await asyncio.to_thread(drill.stack.redis.stop)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(drill.stack.redis.start)
    result.repaired_at = time.monotonic()
    await recovery(drill, load, result, "Redis restarted")
    await asyncio.sleep(3)
    await finish(drill, load, result)
    during = [r for r in result.records if result.phase(r) == "during" and r.kind != "probe"]
    result.figure(
        "requests started during the outage", summary(Counter(f"{r.kind} {r.outcome()}" for r in during))
    )
    refused = [r for r in during if r.status == 503 and r.kind != "readyz"]
    result.expect(
        "while Redis is down, what needs it is refused 503 service_unavailable with Retry-After",
        bool(refused) and all(r.code == "service_unavailable" and r.retry_after for r in refused),
        summary(Counter(f"{r.kind} {r.outcome()}" for r in refused)),
    )
    unanswered = [r for r in during if not r.answered or (r.status or 0) == 500]
    result.expect(
        "never a 500, never a connection dropped without an answer",
        not unanswered,
        summary(Counter(f"{r.kind} {r.outcome()}" for r in unanswered)),
    )
    return result


async def postgres_restart(drill: Drill) -> Result:
    result = Result("2 PostgreSQL restart", "pg_ctl restart -m fast while replies stream")
    load = drill.load()
    await warm_up(drill, load, result, want=18)
    result.fault_at = time.monotonic()
    streaming = {id(r) for r in load.in_flight()}
    took = await asyncio.to_thread(drill.stack.postgres.restart_fast)
    result.repaired_at = time.monotonic()
    result.figure("pg_ctl restart took (s)", f"{took:.1f}")
    await recovery(drill, load, result, "PostgreSQL back")
    await asyncio.sleep(3)
    await finish(drill, load, result)
    hit = [r for r in result.records if id(r) in streaming]
    # Replies that ended while the server was down or just after, whenever they started.
    ending = [
        r
        for r in result.records
        if r.kind == "reply" and result.fault_at <= r.ended <= result.repaired_at + 2
    ]
    for label, group in (("streaming at the restart", hit), ("ending during the restart (+2 s)", ending)):
        ends = Counter(stored_outcome(r, result.stored) for r in group)
        result.figure(f"replies {label}: by outcome", f"{len(group)}: {summary(ends)}")
    kept = [r for r in hit if r.final == "done" and stored_matches(r, result.stored)]
    result.expect(
        "every reply streaming at the restart ends complete/incomplete, stored with the text sent, charged",
        len(kept) == len(hit) and bool(hit),
        f"{len(kept)} of {len(hit)}; the rest: "
        + summary(Counter(stored_outcome(r, result.stored) for r in hit if r not in kept)),
    )
    late = [r for r in result.records if r.status == 503 and r.started >= result.repaired_at]
    last = max((r.started for r in late), default=result.repaired_at) - result.repaired_at
    result.figure(
        "503s for requests sent after PostgreSQL was back", f"{len(late)}, the last +{last:.1f} s after"
    )
    during = [r for r in result.records if result.phase(r) == "during" and r.kind != "reply"]
    result.figure(
        "requests started during the restart", summary(Counter(f"{r.kind} {r.outcome()}" for r in during))
    )
    return result


async def worker_killed(drill: Drill) -> Result:
    result = Result("3 worker SIGKILLed", "kill -9 worker A mid-reply; resume on B; sweep; restart A")
    load = drill.load()
    await warm_up(drill, load, result, want=18)
    await load.wait_in_flight(8, timeout=10, worker=0)
    victims = load.in_flight(worker=0)
    result.fault_at = time.monotonic()
    load.up[0].clear()  # as a load balancer would: no new request to a worker that is gone
    pid = await asyncio.to_thread(drill.stack.workers[0].kill)
    result.figure("killed worker A, pid", pid)
    result.figure("replies streaming on A at the kill", len(victims))
    await asyncio.sleep(0.3)  # their readers see the connection go
    users = {u.login: u for u in drill.stream_users}
    killed_users = [u for u in drill.stream_users if u.home == 0]
    slots = asyncio.create_task(slot_probes(load, killed_users, drill, since=result.fault_at))

    async def resume_all(idle: float, total: float) -> list[Record]:
        return await asyncio.gather(
            *(
                load.resume(
                    users[v.user], 1, v.session, v.message_id or "", v.last_id, idle=idle, total=total
                )
                for v in victims
            )
        )

    # Three heartbeats (WORKER_HEARTBEAT_SECONDS=0.5) after the kill, well within the lease.
    await asyncio.sleep(max(0.0, result.fault_at + 1.8 - time.monotonic()))
    early = await resume_all(idle=3, total=4)
    sent = max((r.started for r in early), default=result.fault_at) - result.fault_at
    result.figure(
        f"resumes on B before the lease ran out (sent {sent:.1f} s after the kill, read 3 s at most)",
        summary(Counter(resume_outcome(r) for r in early)),
    )
    result.expect(
        "resume on B while the lease runs: 409 reply_unavailable",
        bool(early) and all(r.status == 409 and r.code == "reply_unavailable" for r in early),
        summary(Counter(resume_outcome(r) for r in early)),
    )
    await asyncio.sleep(max(0.0, result.fault_at + drill.lease + 2 - time.monotonic()))
    result.sweep_mid = await books.manage(drill.stack.env, "release_stale_holds")
    result.figure("release_stale_holds after the lease", one_line(result.sweep_mid.output))
    late = await resume_all(idle=12, total=20)
    result.figure("resumes on B after the sweep", summary(Counter(resume_outcome(r) for r in late)))
    result.expect(
        "resume on B after the sweep: 200, one final error event, then the stream ends",
        bool(late) and all(r.status == 200 and r.events == ["error"] and r.final == "error" for r in late),
        summary(Counter(resume_outcome(r) for r in late)),
    )
    freed = await slots
    for login, (first_429, full) in freed.items():
        result.figure(
            f"  {login}: {drill.stack.max_replies} at once again after (s)",
            f"{fmt(full)} (first 429 at {fmt(first_429)})",
        )
    times = [full for _, full in freed.values() if full is not None]
    result.recovery_note = f"slots {max(times):.1f}" if times else "slots never"
    result.figure(
        "killed worker's users: s until they run MAX_CONCURRENT_REPLIES at once again",
        f"max {max(times):.1f}" if times else "never within the wait",
    )
    result.expect(
        f"slots of the killed replies freed (within 2 x lease = {2 * drill.lease} s plus a probe)",
        len(times) == len(freed) and all(t <= 2 * drill.lease + 3 for t in times),
        ", ".join(f"{t:.1f} s" for t in times) or "none freed",
    )
    took = await asyncio.to_thread(drill.stack.workers[0].start)
    result.repaired_at = time.monotonic()
    result.figure("worker A restarted, /healthz after (s)", f"{took:.1f}")
    load.up[0].set()
    await asyncio.sleep(3)
    await finish(drill, load, result, cut_worker=0)
    after = Counter(stored_outcome(v, result.stored, chars=False) for v in victims)
    result.figure("the killed replies, stored after the sweep", summary(after))
    sent_chars = sorted(len(v.text) for v in victims)
    if sent_chars:
        result.figure("  what their clients had been sent (chars)", f"{sent_chars[0]}-{sent_chars[-1]}")
    return result


async def upstream_killed(drill: Drill, down: float = 3) -> Result:
    result = Result(
        "4 upstream killed", f"the fake upstream SIGKILLed mid-stream, restarted {down:.0f} s later"
    )
    load = drill.load()
    await warm_up(drill, load, result, want=18)
    streaming = {id(r) for r in load.in_flight()}
    result.fault_at = time.monotonic()
    await asyncio.to_thread(drill.stack.fake.kill)
    await asyncio.sleep(down)
    await asyncio.to_thread(drill.stack.fake.start)
    result.repaired_at = time.monotonic()
    await recovery(drill, load, result, "upstream restarted")
    await asyncio.sleep(3)
    await finish(drill, load, result)
    hit = [r for r in result.records if id(r) in streaming]
    result.figure(
        "replies cut by the kill: as their clients saw the end", summary(Counter(r.outcome() for r in hit))
    )
    result.figure("  stored as", summary(Counter(stored_outcome(r, result.stored) for r in hit)))
    tokens = Counter(
        "tokens == deltas"
        if row_of(r, result.stored).get("completion_tokens") == r.events.count("delta")
        else "tokens != deltas"
        for r in hit
        if r.message_id in result.stored
    )
    result.figure("  completion tokens charged vs deltas sent", summary(tokens))
    ended = [r for r in hit if r.final is not None]
    charged = [
        r
        for r in ended
        if stored_matches(r, result.stored) and (not r.text or row_of(r, result.stored)["cost"] > 0)
    ]
    result.expect(
        "each cut reply ends (a last event), stored with the text sent, charged for what was produced",
        len(charged) == len(hit) and bool(hit),
        f"{len(charged)} of {len(hit)}",
    )
    during = [r for r in result.records if result.phase(r) == "during"]
    result.figure(
        "requests started while it was down", summary(Counter(f"{r.kind} {r.outcome()}" for r in during))
    )
    return result


# --- helpers ---------------------------------------------------------------------------------


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def read_logs(offsets: dict[str, int]) -> Counter:
    """The workers' WARNING and ERROR lines written since ``offsets``, by message (ids and times
    taken out), and how many tracebacks: what an operator would see in the logs during the fault."""
    found: Counter = Counter()
    for path, offset in offsets.items():
        with open(path, errors="replace") as log:
            log.seek(offset)
            for line in log:
                if line.startswith("Traceback"):
                    found["(tracebacks)"] += 1
                elif " WARNING " in line or " ERROR " in line or line.startswith("ERROR:"):
                    message = line[24:] if line[:4].isdigit() else line
                    found[UUID.sub("<id>", message.strip())[:140]] += 1
    return found


async def recovery(drill: Drill, load: Load, result: Result, what: str) -> None:
    accepted, complete, tries = await probe_recovery(load, drill.probe_users, result.repaired_at, timeout=60)
    result.recovery = (accepted, complete)
    result.figure(
        f"recovery after {what}: a new reply accepted / complete (s)",
        f"{fmt(accepted)} / {fmt(complete)} "
        f"({len(tries)} probe(s): {summary(Counter(r.outcome() for r in tries))})",
    )


async def slot_probes(
    load: Load, users: list[User], drill: Drill, since: float
) -> dict[str, tuple[float | None, float | None]]:
    """For each user whose replies ran on the killed worker: messages on B every half second,
    keeping the accepted ones running, until MAX_CONCURRENT_REPLIES run at once (the killed
    replies' slots are free again). Per user: seconds after the kill of the first 429, and of
    the moment the limit was reached (None: not within 40 s)."""
    limit = drill.stack.max_replies

    async def one(user: User) -> tuple[str, tuple[float | None, float | None]]:
        first_429: float | None = None
        running: set[asyncio.Task] = set()
        deadline = time.monotonic() + 40
        try:
            while time.monotonic() < deadline:
                record, task = load.start_message(user, 1, kind="probe")
                while not task.done() and record.status is None:  # the answer's status, not the whole reply
                    await asyncio.sleep(0.05)
                if record.status == 200 and not task.done():
                    running.add(task)
                    task.add_done_callback(running.discard)
                    if len(running) >= limit:
                        return user.login, (first_429, time.monotonic() - since)
                else:
                    await task
                    if record.status == 429 and first_429 is None:
                        first_429 = time.monotonic() - since
                await asyncio.sleep(0.5)
            return user.login, (first_429, None)
        finally:
            if running:
                await asyncio.wait(running, timeout=20)

    return dict(await asyncio.gather(*(one(user) for user in users)))


def row_of(record: Record, stored: dict[str, Any]) -> dict[str, Any]:
    return stored.get(record.message_id or "", {}) if "_error" not in stored else {}


def stored_matches(record: Record, stored: dict[str, Any]) -> bool:
    row = row_of(record, stored)
    return bool(row) and row["content"] == record.text and row["charged"] == row["cost"]


def stored_outcome(record: Record, stored: dict[str, Any], *, chars: bool = True) -> str:
    """``STATUS``, whether its content is the text the client was sent, and its cost."""
    row = row_of(record, stored)
    if not row:
        return f"not stored ({record.outcome()})"
    if row["content"] == record.text:
        same = "= sent"
    elif not chars:
        same = "content empty, not what was sent" if not row["content"] else "content != sent"
    else:
        same = f"!= sent ({len(row['content'])} vs {len(record.text)} chars)"
    return f"{row['status']} {same}, cost {'>0' if row['cost'] else '0'}"


def resume_outcome(record: Record) -> str:
    if record.status != 200:
        return record.outcome()
    events = ",".join(record.events) or "no event"
    end = f"{record.final} {record.final_code}" if record.final else f"not ended: {record.transport}"
    return f"200 [{events}] {end} after {record.ended - record.started:.1f} s"


def summary(counter: Counter) -> str:
    return ", ".join(f"{count} x {name}" for name, count in counter.most_common()) or "none"


def one_line(text: str) -> str:
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"
