"""The soak's final check, run in a Django process of its own once the load is over."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from _common import ROOT  # bench/ is on sys.path


def run_verify(args: argparse.Namespace) -> None:
    """Entry point of the check: waits for replies to settle, prints a JSON report of the books."""
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db.models import Sum

    from chats.catalogue.models import Deployment
    from chats.models import Message
    from chats.replies.pricing import reply_cost
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
    messages = list(Message.objects.filter(session__user=user).select_related("session__category__model"))
    assistant = [m for m in messages if m.role == Message.Role.ASSISTANT]
    by_hold: Counter = Counter(m.hold_id for m in assistant)
    served_by = {
        f"{d.provider.name if d.provider_id else 'default'}/{d.upstream_name}"
        for d in Deployment.objects.select_related("provider")
    }
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
            model = message.session.category.model
            priced = reply_cost(
                model=model, prompt_tokens=message.prompt_tokens, completion_tokens=message.completion_tokens
            )
            if message.cost != priced:  # whichever deployment served it: the model's price
                problems.append(
                    f"{where}: {message.prompt_tokens}+{message.completion_tokens} tokens at "
                    f"{model.public_id}'s price is {priced}"
                )
            if message.deployment not in served_by:
                problems.append(f"{where}: served by {message.deployment!r}, not a deployment of the model")
        elif message.status == Message.Status.FAILED:
            if hold.status != Hold.Status.RELEASED or charge is not None or message.cost or hold.charged:
                problems.append(
                    f"{where}: hold {hold.status}, charged {hold.charged}, charge entry {charged}"
                )
            if message.deployment:
                problems.append(f"{where}: failed, yet names {message.deployment!r} as having served it")
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
        "messages": {
            str(m.pk): [m.status, m.cost, m.content, m.completion_tokens, m.deployment] for m in assistant
        },
        "deployments": Counter(f"{m.deployment or 'none'} {m.status}" for m in assistant),
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
