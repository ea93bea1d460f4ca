"""A Responses API request read and translated into a chat-completions request."""

from dataclasses import dataclass
from typing import Any

from chats.errors import InvalidParameter, UnsupportedParameter

# Refused when set: Parley keeps no responses or conversations to continue.
STATEFUL = ("previous_response_id", "conversation")

# Refused when set: features that need OpenAI's servers, with no chat-completions equivalent.
UNSUPPORTED = ("prompt", "moderation")

# Accepted and dropped: they steer OpenAI's storage, logging or hosted tools, not the answer.
DROPPED = {
    "background",
    "background_options",
    "include",
    "store",
    "stream_options",
    "truncation",
    "max_tool_calls",
    "top_logprobs",
    "context_management",
    "prompt_cache_options",
    "access_programs",
    "image",
}

# Read and translated by this module.
TRANSLATED = {
    "model",
    "stream",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "temperature",
    "top_p",
    "max_output_tokens",
    "reasoning",
    "metadata",
}

# Chat completions knows these under the same name: passed on when set.
SAME_NAME = ("user", "prompt_cache_key", "safety_identifier", "service_tier", "prompt_cache_retention")

KNOWN = {*STATEFUL, *UNSUPPORTED, *DROPPED, *TRANSLATED, *SAME_NAME}

SAMPLING = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}

INPUT_ROLES = ("user", "system", "developer", "assistant")

TOOL_CHOICE_MODES = ("auto", "none", "required")

TEXT_FORMATS = ("text", "json_object", "json_schema")


@dataclass(frozen=True)
class ResponsesRequest:
    """A Responses request translated: what the upstream is asked, what the Response repeats.

    ``chat_body`` is a chat-completions body without ``model``, ``stream`` and
    ``stream_options``, which the caller sets (the model is Parley's category).
    """

    model: str
    stream: bool
    chat_body: dict[str, Any]
    echo: dict[str, Any]


def responses_request(body: Any) -> ResponsesRequest:
    """The request of ``POST /v1/responses``, or :class:`InvalidParameter` naming what is wrong."""
    if not isinstance(body, dict):
        raise InvalidParameter("The body must be a JSON object.", param=None)
    _refuse_what_needs_state(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidParameter("'model' must be the name of a model (see /v1/models).", param="model")
    tools = _tools(body.get("tools"))
    chat_body = {
        # Keys Responses does not know go first, so they can never replace a translated one.
        **{name: value for name, value in body.items() if name not in KNOWN},
        "messages": _messages(body),
        **_tool_options(body, tools),
        **_text_options(body.get("text")),
        **_sampling(body),
        **_reasoning_options(body.get("reasoning")),
        **_same_name(body),
    }
    return ResponsesRequest(
        model=model, stream=bool(_optional_bool(body, "stream")), chat_body=chat_body, echo=_echo(body)
    )


def _refuse_what_needs_state(body: dict) -> None:
    for name in STATEFUL:
        if body.get(name) is not None:
            raise InvalidParameter(
                f"Parley's Responses API is stateless: it keeps no responses or conversations, so "
                f"'{name}' cannot be used. Send the whole conversation in 'input' instead.",
                param=name,
            )
    for name in UNSUPPORTED:
        if body.get(name) is not None:
            raise UnsupportedParameter(f"Parley does not support the parameter '{name}'.", param=name)
    if body.get("background"):
        raise UnsupportedParameter(
            "Parley's Responses API is stateless: it cannot run a response in the background.",
            param="background",
        )


def _optional_bool(container: dict, name: str, *, param: str | None = None) -> bool | None:
    value = container.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidParameter(f"'{param or name}' must be true or false.", param=param or name)
    return value


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidParameter(f"'{param}' must be a string.", param=param)
    return value


def _optional_string(value: Any, param: str) -> str | None:
    return None if value is None else _string(value, param)


def _object(value: Any, param: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidParameter(f"'{param}' must be an object.", param=param)
    return value


# --- input: the conversation, as chat messages ------------------------------------------------------


def _messages(body: dict) -> list[dict[str, Any]]:
    """``instructions`` as a leading system message, then ``input``: a user's string, or items."""
    messages: list[dict[str, Any]] = []
    instructions = _optional_string(body.get("instructions"), "instructions")
    if instructions is not None:
        messages.append({"role": "system", "content": instructions})
    given = body.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        for index, item in enumerate(given):
            _add_item(messages, _object(item, f"input[{index}]"), f"input[{index}]")
    elif given is not None:
        raise InvalidParameter("'input' must be a string or a list of items.", param="input")
    if not messages:
        raise InvalidParameter("'input' must not be empty.", param="input")
    return messages


def _add_item(messages: list[dict[str, Any]], item: dict, param: str) -> None:
    """One input item onto the chat messages; a model's turn (text and calls) becomes one message."""
    kind = item.get("type", "message")
    if kind == "message":
        _add_message(messages, item, param)
    elif kind == "function_call":
        _add_tool_call(messages, _tool_call(item, param))
    elif kind == "function_call_output":
        messages.append(_tool_message(item, param))
    elif kind == "item_reference":
        raise InvalidParameter(
            f"Parley's Responses API is stateless: it keeps no items for '{param}' to refer to. "
            "Send the item itself.",
            param=param,
        )
    elif kind != "reasoning":  # a model's private reasoning: chat completions takes none back
        raise InvalidParameter(
            f"'{param}': Parley's Responses API takes message, function_call, function_call_output "
            f"and reasoning items, not '{kind}'.",
            param=param,
        )


def _add_message(messages: list[dict[str, Any]], item: dict, param: str) -> None:
    role = item.get("role")
    if role not in INPUT_ROLES:
        raise InvalidParameter(
            f"'{param}.role' must be one of {', '.join(INPUT_ROLES)}.", param=f"{param}.role"
        )
    content = item.get("content")
    if not isinstance(content, str | list):
        raise InvalidParameter(
            f"'{param}.content' must be a string or a list of parts.", param=f"{param}.content"
        )
    if role == "assistant":
        _add_assistant_text(messages, content, f"{param}.content")
    else:
        messages.append({"role": role, "content": _input_content(content, role, f"{param}.content")})


def _input_content(content: str | list, role: str, param: str) -> str | list[dict[str, Any]]:
    """A user's parts become chat parts; a system or developer message can only hold text."""
    if isinstance(content, str):
        return content
    parts = [
        _input_part(_object(part, f"{param}[{index}]"), f"{param}[{index}]")
        for index, part in enumerate(content)
    ]
    for index, part in enumerate(parts):
        if role != "user" and part["type"] != "text":
            raise UnsupportedParameter(
                f"'{param}[{index}]': a {role} message can only hold text.", param=f"{param}[{index}]"
            )
    return parts


def _input_part(part: dict, param: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "input_text":
        return {"type": "text", "text": _string(part.get("text"), f"{param}.text")}
    if kind == "input_image":
        return _image_part(part, param)
    if kind == "input_file":
        return _file_part(part, param)
    raise InvalidParameter(
        f"'{param}.type' must be input_text, input_image or input_file.", param=f"{param}.type"
    )


def _image_part(part: dict, param: str) -> dict[str, Any]:
    """An image by URL (or data URL); an uploaded ``file_id`` has no chat-completions equivalent."""
    if part.get("image_url") is None:
        raise UnsupportedParameter(
            f"'{param}': Parley takes images by 'image_url' (a URL or a data URL), not by file id.",
            param=f"{param}.image_url",
        )
    image = {"url": _string(part["image_url"], f"{param}.image_url")}
    if part.get("detail") is not None:
        image["detail"] = _string(part["detail"], f"{param}.detail")
    return {"type": "image_url", "image_url": image}


def _file_part(part: dict, param: str) -> dict[str, Any]:
    """A file inline or by id, as chat completions takes it; chat completions takes no file URL."""
    if part.get("file_url") is not None:
        raise UnsupportedParameter(
            f"'{param}': Parley takes files as 'file_data' or 'file_id', not by URL.",
            param=f"{param}.file_url",
        )
    file = {
        name: _string(part[name], f"{param}.{name}")
        for name in ("file_data", "file_id", "filename")
        if part.get(name) is not None
    }
    if "file_data" not in file and "file_id" not in file:
        raise InvalidParameter(f"'{param}' needs 'file_data' or 'file_id'.", param=param)
    return {"type": "file", "file": file}


def _add_assistant_text(messages: list[dict[str, Any]], content: str | list, param: str) -> None:
    """The model's earlier text; joined to the calls of its turn when they came first."""
    text, refusal = _assistant_text(content, param)
    previous = messages[-1] if messages else None
    if previous and previous["role"] == "assistant" and previous.get("content") is None:
        message = previous
    else:
        message = {"role": "assistant"}
        messages.append(message)
    message["content"] = text
    if refusal is not None:
        message["refusal"] = refusal


def _assistant_text(content: str | list, param: str) -> tuple[str, str | None]:
    """An assistant message's text (its text parts joined) and its refusal, if it has one."""
    if isinstance(content, str):
        return content, None
    texts: list[str] = []
    refusals: list[str] = []
    for index, part in enumerate(content):
        part_param = f"{param}[{index}]"
        kind = _object(part, part_param).get("type")
        if kind in ("output_text", "input_text"):
            texts.append(_string(part.get("text"), f"{part_param}.text"))
        elif kind == "refusal":
            refusals.append(_string(part.get("refusal"), f"{part_param}.refusal"))
        else:
            raise InvalidParameter(
                f"'{part_param}.type' must be output_text or refusal.", param=f"{part_param}.type"
            )
    return "".join(texts), "".join(refusals) if refusals else None


def _tool_call(item: dict, param: str) -> dict[str, Any]:
    return {
        "id": _string(item.get("call_id"), f"{param}.call_id"),
        "type": "function",
        "function": {
            "name": _string(item.get("name"), f"{param}.name"),
            "arguments": _string(item.get("arguments"), f"{param}.arguments"),
        },
    }


def _add_tool_call(messages: list[dict[str, Any]], call: dict[str, Any]) -> None:
    """A call joins the assistant message just before it (its turn's text or calls), as chat has it."""
    previous = messages[-1] if messages else None
    if previous and previous["role"] == "assistant":
        previous.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool_message(item: dict, param: str) -> dict[str, Any]:
    output = item.get("output")
    if isinstance(output, list):
        output = [
            _tool_output_part(_object(part, f"{param}.output[{index}]"), f"{param}.output[{index}]")
            for index, part in enumerate(output)
        ]
    elif not isinstance(output, str):
        raise InvalidParameter(
            f"'{param}.output' must be a string or a list of parts.", param=f"{param}.output"
        )
    return {
        "role": "tool",
        "tool_call_id": _string(item.get("call_id"), f"{param}.call_id"),
        "content": output,
    }


def _tool_output_part(part: dict, param: str) -> dict[str, Any]:
    """Chat completions takes only text back from a tool."""
    if part.get("type") != "input_text":
        raise UnsupportedParameter(f"'{param}': a tool's output can only be text.", param=f"{param}.type")
    return {"type": "text", "text": _string(part.get("text"), f"{param}.text")}


# --- tools, text format, sampling -------------------------------------------------------------------


def _tools(tools: Any) -> list[dict[str, Any]]:
    """Function tools in chat's shape; hosted tools (web search, file search…) need OpenAI's servers."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidParameter("'tools' must be a list of tools.", param="tools")
    return [_tool(_object(tool, f"tools[{index}]"), f"tools[{index}]") for index, tool in enumerate(tools)]


def _tool(tool: dict, param: str) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise UnsupportedParameter(
            f"Parley supports only function tools, not '{tool.get('type')}'.", param=f"{param}.type"
        )
    function: dict[str, Any] = {"name": _string(tool.get("name"), f"{param}.name")}
    if tool.get("description") is not None:
        function["description"] = _string(tool["description"], f"{param}.description")
    if tool.get("parameters") is not None:
        function["parameters"] = _object(tool["parameters"], f"{param}.parameters")
    strict = _optional_bool(tool, "strict", param=f"{param}.strict")
    if strict is not None:
        function["strict"] = strict
    return {"type": "function", "function": function}


def _tool_options(body: dict, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Tools, and how to use them; chat completions refuses ``tool_choice`` and
    ``parallel_tool_calls`` without tools, so they go only with them."""
    tool_choice = _tool_choice(body.get("tool_choice"))
    parallel = _optional_bool(body, "parallel_tool_calls")
    if not tools:
        return {}
    options: dict[str, Any] = {"tools": tools}
    if tool_choice is not None:
        options["tool_choice"] = tool_choice
    if parallel is not None:
        options["parallel_tool_calls"] = parallel
    return options


def _tool_choice(choice: Any) -> str | dict[str, Any] | None:
    if choice is None or choice in TOOL_CHOICE_MODES:
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return _named_function(choice, "tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        return _allowed_tools(choice)
    raise UnsupportedParameter(
        "'tool_choice' must be auto, none, required, a function or allowed function tools.",
        param="tool_choice",
    )


def _named_function(choice: dict, param: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": _string(choice.get("name"), f"{param}.name")}}


def _allowed_tools(choice: dict) -> dict[str, Any]:
    tools = choice.get("tools")
    if choice.get("mode") not in ("auto", "required") or not isinstance(tools, list):
        raise InvalidParameter(
            "'tool_choice' of type allowed_tools needs a mode (auto or required) and a list of tools.",
            param="tool_choice",
        )
    allowed = []
    for index, tool in enumerate(tools):
        param = f"tool_choice.tools[{index}]"
        if _object(tool, param).get("type") != "function":
            raise UnsupportedParameter("Parley supports only function tools.", param=f"{param}.type")
        allowed.append(_named_function(tool, param))
    return {"type": "allowed_tools", "allowed_tools": {"mode": choice["mode"], "tools": allowed}}


def _text_options(text: Any) -> dict[str, Any]:
    """``text.format`` as ``response_format`` (plain text is chat's default), and the verbosity."""
    if text is None:
        return {}
    _object(text, "text")
    options: dict[str, Any] = {}
    if text.get("format") is not None:
        text_format = _object(text["format"], "text.format")
        if text_format.get("type") not in TEXT_FORMATS:
            raise InvalidParameter(
                f"'text.format.type' must be one of {', '.join(TEXT_FORMATS)}.", param="text.format.type"
            )
        if text_format["type"] == "json_schema":
            options["response_format"] = {"type": "json_schema", "json_schema": _json_schema(text_format)}
        elif text_format["type"] == "json_object":
            options["response_format"] = {"type": "json_object"}
    if text.get("verbosity") is not None:
        options["verbosity"] = _string(text["verbosity"], "text.verbosity")
    return options


def _json_schema(text_format: dict) -> dict[str, Any]:
    schema = {
        "name": _string(text_format.get("name"), "text.format.name"),
        "schema": _object(text_format.get("schema"), "text.format.schema"),
    }
    if text_format.get("description") is not None:
        schema["description"] = _string(text_format["description"], "text.format.description")
    strict = _optional_bool(text_format, "strict", param="text.format.strict")
    if strict is not None:
        schema["strict"] = strict
    return schema


def _sampling(body: dict) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, (low, high) in SAMPLING.items():
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise InvalidParameter(f"'{name}' must be a number from {low} to {high}.", param=name)
            options[name] = value
    tokens = body.get("max_output_tokens")
    if tokens is not None:
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            raise InvalidParameter(
                "'max_output_tokens' must be a positive integer.", param="max_output_tokens"
            )
        options["max_completion_tokens"] = tokens
    return options


def _reasoning_options(reasoning: Any) -> dict[str, Any]:
    """The reasoning effort maps to chat's ``reasoning_effort``; summaries have no chat equivalent."""
    if reasoning is None:
        return {}
    effort = _optional_string(_object(reasoning, "reasoning").get("effort"), "reasoning.effort")
    return {} if effort is None else {"reasoning_effort": effort}


def _same_name(body: dict) -> dict[str, Any]:
    return {name: _string(body[name], name) for name in SAME_NAME if body.get(name) is not None}


def _echo(body: dict) -> dict[str, Any]:
    """The request's fields a Response repeats, with OpenAI's defaults for those not sent."""
    metadata = body.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values())
    ):
        raise InvalidParameter("'metadata' must be an object of strings.", param="metadata")
    parallel = body.get("parallel_tool_calls")
    return {
        "instructions": body.get("instructions"),
        "tools": body.get("tools") or [],
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": True if parallel is None else parallel,
        "text": body.get("text") or {"format": {"type": "text"}},
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": metadata or {},
        "reasoning": body.get("reasoning"),
        "user": body.get("user"),
    }
