"""The fake upstreams of the soak, answering each request as its last message asks.

Two of them serve the soak's model: ``main``, the existing fake, and ``flaky`` (``--fake-flaky
RATIO``), which also fails that share of the other requests at random before the first token:
a 502, a 504, a 429 with ``retry-after-ms``, or the connection closed with no answer at all.
Those are told apart from the ``[soak:fail-before:N]`` failures (400, 500, 503), which both fakes
answer alike, by their statuses: the clients and the report count on it.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import os
import random
import re
import sys
from collections import Counter
from typing import Any

from _common import ROOT  # bench/ is on sys.path

from soak import CHUNKS

#: Seconds between chunks of the replies a client resumes or stops: long enough (20 chunks, 3 s)
#: for the resume or the stop to arrive while the reply runs, though the clients lag under load.
SLOW_CHUNK_DELAY = float(os.environ.get("SOAK_SLOW_CHUNK_DELAY", "0.15"))
MARKER = re.compile(r"\[soak:([a-z-]+)(?::(\d+))?\]")
#: How the flaky fake fails at random: HTTP statuses no ``[soak:fail-before:N]`` asks for, and
#: ``drop`` (the connection closed before the status line).
RANDOM_FAILURES = ("502", "504", "429", "drop")
#: The ``retry-after-ms`` of the flaky fake's random 429s (a cooldown it starts lasts that long).
RANDOM_429_RETRY_AFTER_MS = 700

_selected: contextvars.ContextVar[Any] = contextvars.ContextVar("soak_scenario", default=None)


def scenario_for(body: Any, base: Any) -> Any:
    """The scenario a request's last message asks for (``[soak:mode:n]``), else ``base``."""
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


def serve_fake(fail_ratio: float = 0.0, seed: int | None = None) -> None:
    """Entry point of a fake upstream's process: prints its port, serves until stdin closes.

    ``fail_ratio`` > 0 makes it the flaky one: that share of the requests that ask for no failure
    fail at random (:data:`RANDOM_FAILURES`, drawn from ``seed``). ``GET /fake/stats`` adds
    ``failures``, the failed answers by kind (``"503"``, ``"drop"``, …), each one a deployment
    failure Parley's routing must count as a failover unless it is a 400.

    ``FakeOpenAI`` has one scenario at a time; the soak needs the answer chosen
    per request. :class:`SelectingFake` overrides ``scenario`` with a property
    that reads a context variable, set around each request from the marker in
    its last message (the handler's task carries it through ``_respond``).
    """
    sys.path.insert(0, str(ROOT))
    from tests.fakes.openai_upstream import FakeOpenAI, RecordedRequest, Scenario

    draws = random.Random(seed)

    class SelectingFake(FakeOpenAI):
        failures: Counter = Counter()

        @property
        def scenario(self) -> Scenario:
            return _selected.get() or self._base

        @scenario.setter
        def scenario(self, value: Scenario) -> None:
            self._base = value

        async def _respond(
            self,
            reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter,
            record: RecordedRequest,
            raw: bytes,
        ) -> bool:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            scenario = scenario_for(body, self._base)
            chat = record.path == "/v1/chat/completions"
            failure = None
            if chat and fail_ratio and scenario.fail_status is None and draws.random() < fail_ratio:
                failure = draws.choice(RANDOM_FAILURES)
            if failure == "drop":
                with self._lock:
                    self._requests.append(record)
                record.status = 0
                self.failures["drop"] += 1
                return False  # the connection closes with no answer
            if failure is not None:
                extra = {"retry_after_ms": RANDOM_429_RETRY_AFTER_MS} if failure == "429" else {}
                scenario = dataclasses.replace(
                    scenario, fail_status=int(failure), fail_message="soak: flaky on purpose", **extra
                )
            token = _selected.set(scenario)
            try:
                return await super()._respond(reader, writer, record, raw)
            finally:
                _selected.reset(token)
                if chat and record.status != 200:
                    self.failures[str(record.status)] += 1

        def stats(self) -> dict:
            return {**super().stats(), "failures": dict(self.failures)}

    # The standard loop, not uvloop: on uvloop a write after the client hung up raises
    # RuntimeError, which the fake does not expect (it logs a traceback per disconnect).
    fake = SelectingFake()
    fake.configure(chunks=CHUNKS, first_chunk_delay=0.02, chunk_delay=0.01)
    fake.start()
    print(fake.port, flush=True)
    sys.stdin.read()
    os._exit(0)
