"""The upstream's chat-completion chunks translated into Responses API events and the final
``Response`` object, in the shapes the official SDKs parse and accumulate."""

import copy
import json
import time
from typing import Any

from chats.v1.responses.request import ResponsesRequest

# Upstream finish reasons that leave a response incomplete, with OpenAI's reason for it.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}

# The field an output content part accumulates its deltas in.
PART_FIELDS = {"output_text": "text", "refusal": "refusal"}


class ResponsesTranslator:
    """Chat-completion chunks in, Responses events out; also builds the final Response object.

    Output items open as the upstream starts them: the text (and any refusal) as one message,
    each tool call as a function call. The message is closed when the first tool call starts,
    as OpenAI orders them; the calls stay open until :meth:`finish`, since an upstream may
    interleave their arguments. Every event is a snapshot: later chunks do not change it.
    """

    def __init__(
        self, *, response_id: str, model: str, request: ResponsesRequest, created_at: int | None = None
    ) -> None:
        self._id = response_id
        self._item_base = response_id.removeprefix("resp_")
        self._model = model
        self._echo = request.echo
        self._created_at = int(time.time()) if created_at is None else created_at
        self._sequence = 0
        self._output: list[dict[str, Any]] = []
        self._message: int | None = None  # the open message's output index
        self._parts: dict[str, int] = {}  # its open parts' content indices, by part type
        self._calls: dict[int, int] = {}  # open function calls' output indices, by upstream index
        self._status = "in_progress"
        self._completed_at: int | None = None
        self._usage: dict[str, Any] | None = None
        self._error: dict[str, Any] | None = None
        self._incomplete: dict[str, Any] | None = None

    def start(self) -> list[dict[str, Any]]:
        return [
            self._event("response.created", response=self.response()),
            self._event("response.in_progress", response=self.response()),
        ]

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """One upstream ``chat.completion.chunk``; only its first choice makes the response."""
        delta = _first_delta(chunk)
        events: list[dict[str, Any]] = []
        if delta.get("content"):
            events += self._part_delta("output_text", delta["content"])
        if delta.get("refusal"):
            events += self._part_delta("refusal", delta["refusal"])
        for position, call in enumerate(delta.get("tool_calls") or ()):
            events += self._call_delta(call, position)
        return events

    def finish(self, *, usage: dict[str, Any], finish_reason: str | None) -> list[dict[str, Any]]:
        """Closes the open items, then completes the response, or leaves it incomplete when the
        upstream stopped early (``length``: the token limit; ``content_filter``)."""
        reason = INCOMPLETE_REASONS.get(finish_reason or "")
        events = self._close_items(truncated=reason is not None)
        self._usage = _usage(usage)
        if reason is None:
            self._status = "completed"
            self._completed_at = int(time.time())
        else:
            self._status = "incomplete"
            self._incomplete = {"reason": reason}
        events.append(self._event(f"response.{self._status}", response=self.response()))
        return events

    def fail(self, *, code: str, message: str) -> list[dict[str, Any]]:
        """The response failed; what was produced stays in its output, cut short (``incomplete``).

        ``code`` should be one of OpenAI's response error codes (``server_error``,
        ``rate_limit_exceeded``…): the SDKs' types name them.
        """
        for index in self._open_indices():
            self._output[index]["status"] = "incomplete"
        self._message, self._parts, self._calls = None, {}, {}
        self._status = "failed"
        self._error = {"code": code, "message": message}
        return [self._event("response.failed", response=self.response())]

    def response(self) -> dict[str, Any]:
        """The Response object as it stands: the answer to a request sent without ``stream``."""
        return {
            "id": self._id,
            "object": "response",
            "created_at": self._created_at,
            "status": self._status,
            "completed_at": self._completed_at,
            "model": self._model,
            "output": copy.deepcopy(self._output),
            "usage": self._usage,
            "error": self._error,
            "incomplete_details": self._incomplete,
            **self._echo,
        }

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **copy.deepcopy(fields)}
        self._sequence += 1
        return event

    def _add_item(self, prefix: str, item: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        index = len(self._output)
        self._output.append({"id": f"{prefix}_{self._item_base}_{index}", **item, "status": "in_progress"})
        return index, [
            self._event("response.output_item.added", output_index=index, item=self._output[index])
        ]

    def _item_event(self, kind: str, index: int, **fields: Any) -> dict[str, Any]:
        return self._event(kind, item_id=self._output[index]["id"], output_index=index, **fields)

    def _part_delta(self, kind: str, delta: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self._message is None:
            self._message, events = self._add_item(
                "msg", {"type": "message", "role": "assistant", "content": []}
            )
        content = self._output[self._message]["content"]
        if kind not in self._parts:
            self._parts[kind] = len(content)
            content.append(_empty_part(kind))
            events.append(
                self._item_event(
                    "response.content_part.added",
                    self._message,
                    content_index=self._parts[kind],
                    part=content[-1],
                )
            )
        content_index = self._parts[kind]
        content[content_index][PART_FIELDS[kind]] += delta
        extra = {"logprobs": []} if kind == "output_text" else {}
        events.append(
            self._item_event(
                f"response.{kind}.delta", self._message, content_index=content_index, delta=delta, **extra
            )
        )
        return events

    def _call_delta(self, call: dict[str, Any], position: int) -> list[dict[str, Any]]:
        """A piece of a tool call: its first piece carries the id and name, the rest arguments."""
        upstream_index = call.get("index", position)
        function = call.get("function") or {}
        events: list[dict[str, Any]] = []
        if upstream_index not in self._calls:
            events += self._close_message(status="completed")
            item = {
                "type": "function_call",
                "call_id": call.get("id") or f"call_{self._item_base}_{len(self._output)}",
                "name": function.get("name") or "",
                "arguments": "",
            }
            self._calls[upstream_index], added = self._add_item("fc", item)
            events += added
        index = self._calls[upstream_index]
        item = self._output[index]
        item["name"] = item["name"] or function.get("name") or ""
        if function.get("arguments"):
            item["arguments"] += function["arguments"]
            events.append(
                self._item_event("response.function_call_arguments.delta", index, delta=function["arguments"])
            )
        return events

    def _open_indices(self) -> list[int]:
        return sorted([*([] if self._message is None else [self._message]), *self._calls.values()])

    def _close_items(self, *, truncated: bool) -> list[dict[str, Any]]:
        """Closes every open item; when the upstream was cut short, the last item is incomplete."""
        last = len(self._output) - 1
        events: list[dict[str, Any]] = []
        for index in self._open_indices():
            status = "incomplete" if truncated and index == last else "completed"
            if index == self._message:
                events += self._close_message(status=status)
            else:
                events += self._close_call(index, status=status)
        self._calls = {}
        return events

    def _close_message(self, *, status: str) -> list[dict[str, Any]]:
        if self._message is None:
            return []
        index, message = self._message, self._output[self._message]
        events = []
        for kind, content_index in self._parts.items():
            part = message["content"][content_index]
            field = PART_FIELDS[kind]
            extra = {"logprobs": []} if kind == "output_text" else {}
            events.append(
                self._item_event(
                    f"response.{kind}.done",
                    index,
                    content_index=content_index,
                    **{field: part[field]},
                    **extra,
                )
            )
            events.append(
                self._item_event("response.content_part.done", index, content_index=content_index, part=part)
            )
        message["status"] = status
        events.append(self._event("response.output_item.done", output_index=index, item=message))
        self._message, self._parts = None, {}
        return events

    def _close_call(self, index: int, *, status: str) -> list[dict[str, Any]]:
        item = self._output[index]
        item["status"] = status
        return [
            self._item_event("response.function_call_arguments.done", index, arguments=item["arguments"]),
            self._event("response.output_item.done", output_index=index, item=item),
        ]


def _first_delta(chunk: dict[str, Any]) -> dict[str, Any]:
    for choice in chunk.get("choices") or ():
        if choice.get("index", 0) == 0:
            return choice.get("delta") or {}
    return {}


def _empty_part(kind: str) -> dict[str, Any]:
    if kind == "output_text":
        return {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    return {"type": "refusal", "refusal": ""}


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Parley's counts (and ``cost``) with the breakdowns OpenAI's usage object requires.

    Parley learns of no cached or reasoning tokens, so they count 0 unless ``usage`` says otherwise.
    """
    return {
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
        **usage,
    }


def sse_event(event: dict[str, Any]) -> bytes:
    """One Responses stream event as a server-sent event, named by its type as OpenAI sends it."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()
