"""The soak's verdict: what the clients saw, the top-up attempts and the books, held against each other."""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from soak import CHUNKS, REPLY
from soak.clients import Outcome, Tally

#: What the database must say of a reply, given what its client saw. A reply runs to its end whatever
#: becomes of its client: a disconnected one is complete, charged in full (the upstream's usage: every
#: chunk), like one read to the end.
STORED_AS = {
    "complete": "complete",
    "resumed": "complete",
    "disconnected": "complete",
    "stop-late": "complete",
    "stopped": "incomplete",
    "failed-before": "failed",
    "failed-mid": "incomplete",
    "unserved": "failed",
}
#: The outcomes whose client read every delta of what was stored.
SEEN_WHOLE = ("complete", "resumed", "stopped", "stop-late", "failed-mid")
#: The client-side outcomes, in the report's order.
OUTCOMES = (
    "complete",
    "disconnected",
    "resumed",
    "stopped",
    "stop-late",
    "failed-before",
    "failed-mid",
    "unserved",
    "insufficient-funds",
    "unexpected",
)


def report(
    args: argparse.Namespace,
    tally: Tally,
    books: dict[str, Any],
    audit: subprocess.CompletedProcess,
    stale: subprocess.CompletedProcess,
    topups_file: Path,
    server_logs: list[Path],
    load_seconds: float,
    started: float,
    routing: dict[str, Any],
) -> int:
    """What the clients saw, the top-up attempts and the books, held against each other.

    Each alone can look right. The exit status: 1 on any violation.
    """
    attempts = read_attempts(topups_file)
    seen = seen_replies(tally)
    problems = [
        *tally.problems,
        *books["problems"],
        *topup_problems(attempts, tally, books),
        *message_problems(seen, books),
        *command_problems(audit, stale),
        *server_log_problems(server_logs),
        *routing_problems(tally, books, routing),
    ]
    print()
    print_load(tally, seen, load_seconds)
    print_outcomes(tally, seen, books["messages"])
    print_routing(books, routing)
    print_books(args, tally, books, attempts, audit)
    print(f"total time {time.monotonic() - started:.1f} s")
    return verdict(problems)


def read_attempts(topups_file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in topups_file.read_text().splitlines() if line.strip()]


def seen_replies(tally: Tally) -> dict[str, Outcome]:
    """Only a reply its client saw start has a message id to look up in the books."""
    seen: dict[str, Outcome] = {}
    for outcome in tally.outcomes:
        if outcome.message_id:
            seen[outcome.message_id] = outcome
    return seen


def topup_problems(attempts: list[dict[str, Any]], tally: Tally, books: dict[str, Any]) -> list[str]:
    """Every attempt at a key answered by the one entry in the ledger, and no entry nobody sent."""
    problems: list[str] = []
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
    return problems


def message_problems(seen: dict[str, Outcome], books: dict[str, Any]) -> list[str]:
    """What the clients saw is what the database says; nothing else is there."""
    stored = books["messages"]
    problems: list[str] = []
    for message_id, outcome in seen.items():
        if message_id not in stored:
            problems.append(f"message {message_id} ({outcome.outcome}) is not in the database")
            continue
        problems += stored_reply_problems(message_id, outcome, *stored[message_id])
    unseen = set(stored) - set(seen)
    if unseen:
        problems.append(f"{len(unseen)} assistant message(s) no client saw start: {sorted(unseen)[:3]}")
    if books["user_messages"] != len(stored):
        problems.append(f"{books['user_messages']} user messages for {len(stored)} assistant messages")
    return problems


def stored_reply_problems(
    message_id: str, outcome: Outcome, status: str, cost: int, content: str, completion_tokens: int, *_: Any
) -> list[str]:
    """Where one stored reply differs from what its client saw."""
    problems: list[str] = []
    want = STORED_AS.get(outcome.outcome)
    if want is not None and status != want:
        problems.append(f"message {message_id}: the client saw {outcome.outcome}, stored {status}")
    if outcome.cost is not None and outcome.cost != cost:
        problems.append(f"message {message_id}: the client was told cost {outcome.cost}, stored {cost}")
    if outcome.outcome in SEEN_WHOLE and content != outcome.content:
        problems.append(f"message {message_id}: stored content differs from the deltas")
    if outcome.outcome == "disconnected" and content != REPLY:
        problems.append(f"message {message_id}: disconnected, stored {content!r}, not the whole reply")
    if want == "complete" and completion_tokens != len(CHUNKS):
        problems.append(
            f"message {message_id} ({outcome.outcome}): charged for {completion_tokens} completion "
            f"tokens, not the {len(CHUNKS)} the upstream reported"
        )
    return problems


def _summed(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for key, value in samples.items():
        sample, _, rest = key.partition("{")
        have = dict(pair.split("=", 1) for pair in rest.rstrip("}").split(",") if pair)
        if sample == name and all(have.get(k) == v for k, v in labels.items()):
            total += value
    return total


def routing_problems(tally: Tally, books: dict[str, Any], routing: dict[str, Any]) -> list[str]:
    """The failovers happened and were counted: each failure a fake answered (but a 400, which no
    deployment would serve) is one ``parley_failovers_total`` of its deployment; ``/metrics`` says the
    same on every worker (the counts of all of them, summed) and agrees with the books; both
    deployments served; a reply no deployment served means ``main`` was cooling down."""
    problems: list[str] = []
    metrics, fakes, names = routing["metrics"], routing["fakes"], routing["deployments"]
    if any(samples != metrics[0] for samples in metrics[1:]):
        problems.append("the workers' /metrics differ: multiprocess counts are not summed across workers")
    samples = metrics[0]
    for fake, name in names.items():
        failed = sum(count for status, count in fakes[fake]["failures"].items() if status != "400")
        counted = _summed(samples, "parley_failovers_total", deployment=name)
        if counted != failed:
            problems.append(
                f"{name}: the fake failed {failed} request(s), parley_failovers_total says {counted:g}"
            )
    if not sum(fakes["flaky"]["failures"].get(kind, 0) for kind in ("502", "504", "429", "drop")):
        problems.append("the flaky deployment never failed at random: no failover was tested")
    served = books["deployments"]
    for name in names.values():
        if not sum(count for key, count in served.items() if key.startswith(f"{name} ")):
            problems.append(f"{name} served no reply")
        for status in ("complete", "incomplete"):
            stored = served.get(f"{name} {status}", 0)
            counted = _summed(samples, "parley_replies_total", deployment=name, outcome=status)
            if counted != stored:
                problems.append(
                    f"{name}: {stored} {status} replies stored, parley_replies_total says {counted:g}"
                )
    failed = sum(count for key, count in served.items() if key.endswith(" failed"))
    counted = _summed(samples, "parley_replies_total", deployment="none", outcome="failed")
    if counted != failed:
        problems.append(
            f"{failed} failed replies stored, parley_replies_total{{deployment=none}} says {counted:g}"
        )
    credits = _summed(samples, "parley_credits_total")
    if credits != books["cost_total"]:
        problems.append(f"parley_credits_total says {credits:g}, the messages cost {books['cost_total']}")
    unserved = sum(outcome.outcome == "unserved" for outcome in tally.outcomes)
    if unserved and not _summed(samples, "parley_cooldowns_total", deployment=names["main"]):
        problems.append(f"{unserved} replies unserved, though {names['main']} never cooled down")
    return problems


def print_routing(books: dict[str, Any], routing: dict[str, Any]) -> None:
    """Failovers and cooldowns by deployment (``/metrics``), failures by kind (the fakes), replies served."""
    samples, fakes, names = routing["metrics"][0], routing["fakes"], routing["deployments"]
    for fake, name in names.items():
        failovers = _summed(samples, "parley_failovers_total", deployment=name)
        cooldowns = _summed(samples, "parley_cooldowns_total", deployment=name)
        served = {
            key.rpartition(" ")[2]: count
            for key, count in books["deployments"].items()
            if key.startswith(f"{name} ")
        }
        failures = dict(sorted(fakes[fake]["failures"].items()))
        print(
            f"{name}: {fakes[fake]['requests']} requests, failed {failures}; {failovers:g} failovers and "
            f"{cooldowns:g} cooldowns (/metrics, {len(routing['metrics'])} workers summed); served {served}"
        )


def command_problems(audit: subprocess.CompletedProcess, stale: subprocess.CompletedProcess) -> list[str]:
    """``audit_wallets`` passed, and ``release_stale_holds --minutes 0`` found nothing to do."""
    problems: list[str] = []
    if audit.returncode != 0:
        problems.append(f"audit_wallets failed: {audit.stdout.strip()}")
    if "Released 0 stale hold(s)." not in stale.stdout or "Closed 0 stale replies" not in stale.stdout:
        problems.append(f"release_stale_holds --minutes 0 found something: {stale.stdout.strip()}")
    return problems


def server_log_problems(server_logs: list[Path]) -> list[str]:
    """An error the workers logged, though every request answered, is a violation too."""
    log = "\n".join(path.read_text(errors="replace") for path in server_logs)
    errors = [
        line for line in log.splitlines() if "Traceback" in line or " ERROR " in line or "ERROR:" in line
    ]
    if errors:
        return [f"the server logged {len(errors)} error line(s), first: {errors[0]}"]
    return []


def print_load(tally: Tally, seen: dict[str, Outcome], load_seconds: float) -> None:
    started_replies = len(seen)
    print(
        f"load: {load_seconds:.1f} s, {len(tally.outcomes)} requests, {started_replies} replies started "
        f"({started_replies / load_seconds:.1f}/s)"
    )


def print_outcomes(tally: Tally, seen: dict[str, Outcome], stored: dict[str, list]) -> None:
    """The replies by what their client saw, then how the disconnects, resumes and stops went."""
    outcomes = Counter(outcome.outcome for outcome in tally.outcomes)
    print("replies by outcome (client side):")
    for name in OUTCOMES:
        print(f"  {name:<20} {outcomes[name]:6d}")
    disconnected = Counter(
        stored[message_id][0]
        for message_id, outcome in seen.items()
        if outcome.outcome == "disconnected" and message_id in stored
    )
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


def print_books(
    args: argparse.Namespace,
    tally: Tally,
    books: dict[str, Any],
    attempts: list[dict[str, Any]],
    audit: subprocess.CompletedProcess,
) -> None:
    """Redis, the stored replies and holds, the top-ups, the ledger and the audit, as the check found them."""
    for line in books["redis"]:
        print(f"redis: {line}")
    statuses = dict(sorted(books["statuses"].items()))
    print(f"assistant messages stored: {statuses}; holds: {dict(sorted(books['holds'].items()))}")
    print_topups(args, tally, attempts)
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


def print_topups(args: argparse.Namespace, tally: Tally, attempts: list[dict[str, Any]]) -> None:
    applied = len({attempt["key"] for attempt in attempts})
    replayed = len(attempts) - applied
    command_keys = {item["key"] for item in tally.command_topups}
    commands_replayed = sum("nothing added" in item["output"] for item in tally.command_topups)
    print(
        f"top-ups: {applied} keys x {args.replays} concurrent attempts: {applied} applied, "
        f"{replayed} replayed; manage.py topup_wallet --key: {len(tally.command_topups)} runs on "
        f"{len(command_keys)} keys, {commands_replayed} said nothing was added"
    )


def verdict(problems: list[str]) -> int:
    """The first 50 violations, if any; the exit status."""
    if problems:
        print(f"\n{len(problems)} VIOLATION(S):")
        for problem in problems[:50]:
            print(f"  - {problem}")
        return 1
    print("no violation")
    return 0
