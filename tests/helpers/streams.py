"""Reading a reply's Server-Sent Events over real HTTP, as a client would."""

import json
import time

import httpx

from chats.models import Message


def sse_events(response: httpx.Response, stop_after_deltas: int | None = None) -> list[tuple[str, dict]]:
    events, name, deltas = [], None, 0
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
            if name == "delta":
                deltas += 1
                if stop_after_deltas is not None and deltas >= stop_after_deltas:
                    break
    return events


def post_stream(url, session, headers, content="Hello there", stop_after_deltas=None):
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST", f"{url}/api/sessions/{session.id}/messages/", json={"content": content}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        return sse_events(response, stop_after_deltas)


def settled_reply(session, timeout: float = 5.0) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = Message.objects.filter(session=session, role="assistant").first()
        if reply is not None and reply.status != Message.Status.PENDING:
            return reply
        time.sleep(0.02)
    raise AssertionError("the reply was never settled")


def read_events(lines, *, stop_after_deltas: int | None = None) -> list[dict]:
    """SSE events as ``{id, event, data}`` from a response or its lines; at most ``stop_after_deltas``."""
    if isinstance(lines, httpx.Response):
        lines = lines.iter_lines()
    events, current, deltas = [], {}, 0
    for line in lines:
        if not line:
            if current:
                events.append(current)
                if current["event"] == "delta":
                    deltas += 1
                    if stop_after_deltas is not None and deltas >= stop_after_deltas:
                        break
            current = {}
            continue
        field, _, value = line.partition(": ")
        current[field] = json.loads(value) if field == "data" else int(value) if field == "id" else value
    return events


def start_reply(base, session, headers, *, deltas: int) -> list[dict]:
    """POST a message, read ``deltas`` deltas, then drop the connection."""
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST", f"{base}/api/sessions/{session.id}/messages/", json={"content": "Hi"}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        return read_events(response, stop_after_deltas=deltas)


def events_url(base, session, message_id) -> str:
    return f"{base}/api/sessions/{session.id}/messages/{message_id}/events/"


def resume(base, session, message_id, headers, **params) -> list[dict]:
    with (
        httpx.Client(timeout=20) as client,
        client.stream("GET", events_url(base, session, message_id), headers=headers, **params) as response,
    ):
        assert response.status_code == 200, response.read()
        return read_events(response)
