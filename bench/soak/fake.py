"""The fake upstream of the soak, answering each request as its last message asks."""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import re
import sys
from typing import Any

from _common import ROOT  # bench/ is on sys.path

from soak import CHUNKS

#: Seconds between chunks of the replies a client resumes or stops: long enough (20 chunks, 3 s)
#: for the resume or the stop to arrive while the reply runs, though the clients lag under load.
SLOW_CHUNK_DELAY = float(os.environ.get("SOAK_SLOW_CHUNK_DELAY", "0.15"))
MARKER = re.compile(r"\[soak:([a-z-]+)(?::(\d+))?\]")

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
    from tests.fakes.openai_upstream import FakeOpenAI, RecordedRequest, Scenario

    class SelectingFake(FakeOpenAI):
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
