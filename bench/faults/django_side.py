"""The drill's reads of the books, in a Django process of its own (the drill itself stays a client).

    python bench/faults/django_side.py stored < ids.json    # each reply as stored, and its charge
    python bench/faults/django_side.py leftovers            # open holds, pending replies, taken slots

Prints one JSON document on stdout. Read-only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent


def stored(ids: list[str]) -> dict[str, Any]:
    """Each assistant message: status, content, cost, tokens; its hold; the charge entry of that hold."""
    from chats.models import Message
    from wallets.models import Hold, LedgerEntry

    messages = {str(m.pk): m for m in Message.objects.filter(pk__in=ids)}
    hold_ids = [m.hold_id for m in messages.values() if m.hold_id]
    holds = {h.pk: h for h in Hold.objects.filter(pk__in=hold_ids)}
    charges: dict[Any, list[int]] = {}
    for entry in LedgerEntry.objects.filter(kind="charge", hold_id__in=hold_ids):
        charges.setdefault(entry.hold_id, []).append(-entry.amount)
    found: dict[str, Any] = {}
    for pk, message in messages.items():
        hold = holds.get(message.hold_id)
        found[pk] = {
            "status": message.status,
            "content": message.content,
            "cost": message.cost,
            "completion_tokens": message.completion_tokens,
            "finish_reason": getattr(message, "finish_reason", None),
            "hold": hold.status if hold else None,
            "hold_charged": hold.charged if hold else None,
            "charged": sum(charges.get(message.hold_id, [])),
            "charge_entries": len(charges.get(message.hold_id, [])),
        }
    return found


def leftovers() -> dict[str, Any]:
    """What a fault may leave behind: open holds, replies still pending, wallets holding credit, slots."""
    from django.conf import settings

    from chats.models import Message
    from wallets.models import Hold, Wallet

    result: dict[str, Any] = {
        "open_holds": Hold.objects.filter(status=Hold.Status.OPEN).count(),
        "pending_replies": Message.objects.filter(status=Message.Status.PENDING).count(),
        "wallets_holding": Wallet.objects.exclude(held=0).count(),
        "slots": None,
    }
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        try:
            result["slots"] = sum(client.zcard(key) for key in client.scan_iter("parley:replies-running:*"))
        except redis.RedisError as exc:
            result["slots"] = f"Redis: {exc}"
        finally:
            client.close()
    return result


def main() -> None:
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    if sys.argv[1] == "stored":
        print(json.dumps(stored(json.load(sys.stdin)), default=str))
    else:
        print(json.dumps(leftovers(), default=str))


if __name__ == "__main__":
    main()
