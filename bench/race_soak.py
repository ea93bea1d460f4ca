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
  ``[soak:mid-abort:3]``, ``[soak:mid-error:4]``): see :func:`soak.fake.serve_fake`;
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
started again), and ``--verify`` the final check's, which runs Django. The parts
are the modules of ``bench/soak/``.
"""

from __future__ import annotations

import argparse
import os
import sys

from soak.fake import serve_fake  # bench/ is on sys.path
from soak.orchestrate import orchestrate
from soak.topper import run_topper
from soak.verify import run_verify

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/parley_soak"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"


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
    parser.add_argument(
        "--flaky-ratio",
        type=float,
        default=0.4,
        help="share of requests the second deployment (the flaky fake) fails at random (default 0.4)",
    )
    parser.add_argument(
        "--cooldown-seconds", type=float, default=0.5, help="COOLDOWN_SECONDS of the server (default 0.5)"
    )
    parser.add_argument(
        "--cooldown-failures", type=int, default=5, help="COOLDOWN_FAILURES of the server (default 5)"
    )
    parser.add_argument("--seed", type=int, help="seeds the flaky fake's failures (default: random)")
    parser.add_argument("--settle-seconds", type=float, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database and logs after a pass")
    parser.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fail-ratio", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--topper", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--verify", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--login", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake:
        serve_fake(args.fail_ratio, args.seed)
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
