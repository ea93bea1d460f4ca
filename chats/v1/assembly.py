"""A streamed completion put back together: the ``choices`` of a ``chat.completion``.

Parley always streams from the upstream (its usage comes last), so a client
that asked for one JSON body gets the chunks assembled here as OpenAI
assembles them: per choice, the content, refusal and logprobs concatenated,
tool calls merged by their index (the first piece names the call, the others
add to its arguments).
"""

from typing import Any

from chats.llm import Chunk


class CompletionAssembly:
    def __init__(self) -> None:
        self._choices: dict[int, dict[str, Any]] = {}

    def add(self, chunk: Chunk) -> None:
        for choice in chunk["choices"]:
            self._add_choice(choice)

    def finished_indexes(self) -> set[int]:
        return {index for index, choice in self._choices.items() if choice["finish_reason"]}

    def choices(self, *, finish_reason: str, count: int = 1) -> list[dict[str, Any]]:
        """Every choice (``count`` at least), those the upstream left open ended by ``finish_reason``."""
        for index in range(count):
            self._choice(index)
        return [self._as_json(index, self._choices[index], finish_reason) for index in sorted(self._choices)]

    def _choice(self, index: int) -> dict[str, Any]:
        if index not in self._choices:
            self._choices[index] = {
                "content": [],
                "refusal": [],
                "tool_calls": {},
                "logprobs": None,
                "finish_reason": None,
                "extra": {},
            }
        return self._choices[index]

    def _add_choice(self, choice: dict[str, Any]) -> None:
        state = self._choice(choice.get("index", 0))
        delta = choice.get("delta") or {}
        if delta.get("content"):
            state["content"].append(delta["content"])
        if delta.get("refusal"):
            state["refusal"].append(delta["refusal"])
        for call in delta.get("tool_calls") or ():
            _merge_tool_call(state["tool_calls"], call)
        for name, value in delta.items():
            if name not in ("role", "content", "refusal", "tool_calls") and value is not None:
                state["extra"][name] = value  # reasoning_content, audio…: kept as the last piece said
        logprobs = choice.get("logprobs")
        if logprobs:
            merged = state["logprobs"] = state["logprobs"] or {}
            for name, entries in logprobs.items():
                if isinstance(entries, list):
                    merged[name] = [*(merged.get(name) or []), *entries]
        if choice.get("finish_reason"):
            state["finish_reason"] = choice["finish_reason"]

    @staticmethod
    def _as_json(index: int, state: dict[str, Any], finish_reason: str) -> dict[str, Any]:
        calls = [state["tool_calls"][position] for position in sorted(state["tool_calls"])]
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(state["content"]) if state["content"] or not calls else None,
            "refusal": "".join(state["refusal"]) or None,
            **state["extra"],
        }
        if calls:
            message["tool_calls"] = calls
        return {
            "index": index,
            "message": message,
            "logprobs": state["logprobs"],
            "finish_reason": state["finish_reason"] or finish_reason,
        }


def _merge_tool_call(calls: dict[int, dict[str, Any]], piece: dict[str, Any]) -> None:
    position = piece.get("index", len(calls))
    function = piece.get("function") or {}
    call = calls.setdefault(
        position, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
    )
    if piece.get("id"):
        call["id"] = piece["id"]
    if piece.get("type"):
        call["type"] = piece["type"]
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""
