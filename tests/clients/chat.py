"""A Chat Completions answer as the official SDK gives it, streamed or not, read into one shape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.clients.books import Seen
from tests.clients.shared import ASK_WEATHER, CHAT_WEATHER_TOOL, MARKER, MODEL, get_weather, seen_chat


@dataclass
class Reply:
    """One choice of a Chat Completions answer, and the usage the client was told."""

    content: str | None
    tool_calls: list[dict[str, str]]
    finish_reason: str | None
    seen: Seen
    logprobs: list[Any] = field(default_factory=list)


def from_completion(completion) -> Reply:
    """The one choice of a ``chat.completion``."""
    choices, _usage = from_completion_choices(completion)
    (reply,) = choices.values()
    return reply


def from_completion_choices(completion) -> tuple[dict[int, Reply], Any]:
    """Every choice of a ``chat.completion`` (by index), and its usage."""
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    seen = seen_chat(completion.usage)
    replies = {}
    for choice in completion.choices:
        calls = choice.message.tool_calls or []
        assert all(call.type == "function" for call in calls)
        assert choice.index not in replies
        replies[choice.index] = Reply(
            content=choice.message.content,
            tool_calls=[
                {"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in calls
            ],
            finish_reason=choice.finish_reason,
            seen=seen,
            logprobs=list(choice.logprobs.content or []) if choice.logprobs else [],
        )
    return replies, completion.usage


def from_chunks(chunks: list) -> dict[int, Reply]:
    """Every choice of a stream (by index), accumulated as the SDKs do: strings concatenated."""
    assert chunks, "the stream had no chunk"
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1, "every chunk of one completion has its id"
    assert {chunk.model for chunk in chunks} == {MODEL}
    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    assert usage_chunks and usage_chunks == [chunks[-1]], "one usage chunk, the last"
    assert chunks[-1].choices == []
    parts: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            part = parts.setdefault(
                choice.index, {"content": None, "calls": {}, "finish_reason": None, "logprobs": []}
            )
            delta = choice.delta
            if delta.content:
                part["content"] = (part["content"] or "") + delta.content
            for call in delta.tool_calls or []:
                slot = part["calls"].setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += call.id or ""
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
            if choice.logprobs is not None and choice.logprobs.content:
                part["logprobs"] += choice.logprobs.content
            if choice.finish_reason is not None:
                assert part["finish_reason"] is None, "one finish reason per choice"
                part["finish_reason"] = choice.finish_reason
    seen = seen_chat(chunks[-1].usage)
    return {
        index: Reply(
            content=part["content"],
            tool_calls=[part["calls"][i] for i in sorted(part["calls"])],
            finish_reason=part["finish_reason"],
            seen=seen,
            logprobs=part["logprobs"],
        )
        for index, part in sorted(parts.items())
    }


def sync_ask(client, *, stream: bool):
    async def ask(messages: list[dict[str, Any]], **params: Any) -> Reply:
        if stream:
            chunks = list(
                client.chat.completions.create(
                    model=MODEL,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    **params,
                )
            )
            (reply,) = from_chunks(chunks).values()
            return reply
        return from_completion(client.chat.completions.create(model=MODEL, messages=messages, **params))

    return ask


def async_ask(client, *, stream: bool):
    async def ask(messages: list[dict[str, Any]], **params: Any) -> Reply:
        if stream:
            stream_ = await client.chat.completions.create(
                model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}, **params
            )
            chunks = [chunk async for chunk in stream_]
            (reply,) = from_chunks(chunks).values()
            return reply
        return from_completion(await client.chat.completions.create(model=MODEL, messages=messages, **params))

    return ask


async def tool_round_trip(ask) -> tuple[list[Seen], list[dict[str, Any]]]:
    """Ask about the weather with the tool offered; run the tool it calls; ask again with the result.

    Returns the usage told for both requests, and the conversation as sent the second time.
    """
    messages: list[dict[str, Any]] = [{"role": "user", "content": ASK_WEATHER}]
    first = await ask(messages, tools=[CHAT_WEATHER_TOOL])
    assert first.finish_reason == "tool_calls", first
    (call,) = first.tool_calls
    assert call["name"] == "get_weather" and call["id"], call
    arguments = json.loads(call["arguments"])
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str), arguments
    messages.append(
        {
            "role": "assistant",
            "content": first.content,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call["id"], "content": get_weather(**arguments)})

    second = await ask(messages, tools=[CHAT_WEATHER_TOOL])
    assert second.finish_reason == "stop", second
    assert not second.tool_calls, second
    assert second.content and MARKER in second.content, second
    return [first.seen, second.seen], messages
