"""Server-sent events as the benchmarks' clients read them, event by event as they arrive.

Kept apart from ``_common`` because it is the one piece the clients share that
knows the wire format; like the rest of ``bench/``, it imports nothing of Parley.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, bytes]]:
    """``(event name, data)`` for each server-sent event of ``response``, as it arrives."""
    async for _, name, data in sse_frames(response):
        yield name, data


async def sse_frames(response: httpx.Response) -> AsyncIterator[tuple[str | None, str, bytes]]:
    """``(id, event name, data)`` for each server-sent event of ``response``; id None when absent."""
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk.replace(b"\r\n", b"\n")
        while (end := buffer.find(b"\n\n")) >= 0:
            block, buffer = buffer[:end], buffer[end + 2 :]
            event_id, name, data = None, "message", []
            for line in block.split(b"\n"):
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data.append(line[5:].removeprefix(b" "))
                elif line.startswith(b"id:"):
                    event_id = line[3:].strip().decode()
            if data:
                yield event_id, name, b"\n".join(data)
