"""OpenAI's Responses API served over chat completions: requests translated into chat requests,
chat chunks into Responses events and objects that the official ``openai`` SDK parses.

Pure translation, no database: the SDK's own pydantic types judge the output, and its own
client (over an in-memory transport, this module playing the server) accumulates the stream.
"""

import json
from typing import Any

import httpx2
import openai
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from chats.errors import InvalidParameter, UnsupportedParameter
from chats.v1.responses import ResponsesRequest, ResponsesTranslator, responses_request, sse_event

EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)

USAGE = {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17, "cost": "0.000034"}

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def chunk(**delta: Any) -> dict[str, Any]:
    """A ``chat.completion.chunk`` as an upstream streams it."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "upstream-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


def call_piece(index: int, arguments: str, *, call_id: str | None = None, name: str | None = None) -> dict:
    """One chunk's piece of a tool call: the first piece has the id and name, the rest arguments."""
    piece: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        piece |= {"id": call_id, "type": "function"}
        piece["function"]["name"] = name
    return chunk(tool_calls=[piece])


def translated(
    chunks: list[dict], *, finish_reason: str | None = "stop", body: dict | None = None
) -> tuple[ResponsesTranslator, list[dict]]:
    request = responses_request(body or {"model": "general", "input": "Hi"})
    translator = ResponsesTranslator(response_id="resp_test", model=request.model, request=request)
    events = translator.start()
    for each in chunks:
        events += translator.feed(each)
    events += translator.finish(usage=USAGE, finish_reason=finish_reason)
    return translator, events


def parsed(events: list[dict]) -> list[Any]:
    """Every event through the SDK's event union: each must parse, numbered from 0 in order."""
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return [EVENTS.validate_python(event) for event in events]


def served(
    chunks: list[dict], *, finish_reason: str = "stop"
) -> tuple[openai.OpenAI, list[ResponsesRequest]]:
    """The official client, its server this module: the SDK's request translated, ``chunks``
    answered as SSE (or as a Response object when not streamed)."""
    requests: list[ResponsesRequest] = []

    def handle(http_request: httpx2.Request) -> httpx2.Response:
        body = json.loads(http_request.content)
        request = responses_request(body)
        requests.append(request)
        translator, events = translated(chunks, finish_reason=finish_reason, body=body)
        if request.stream:
            return httpx2.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=b"".join(sse_event(event) for event in events),
            )
        return httpx2.Response(200, json=translator.response())

    client = openai.OpenAI(
        api_key="pk-test",
        base_url="http://parley.test/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
    )
    return client, requests


def refused(body: dict, error: type[InvalidParameter] = InvalidParameter) -> InvalidParameter:
    with pytest.raises(error) as raised:
        responses_request(body)
    return raised.value


# --- the request ------------------------------------------------------------------------------------


def test_a_string_input_is_one_user_message_after_the_instructions():
    request = responses_request(
        {
            "model": "general",
            "input": "Say hello",
            "instructions": "Be brief.",
            "stream": True,
            "max_output_tokens": 50,
            "temperature": 0.5,
        }
    )

    assert (request.model, request.stream) == ("general", True)
    assert request.chat_body == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
        "temperature": 0.5,
        "max_completion_tokens": 50,
    }
    assert request.echo["instructions"] == "Be brief."
    assert request.echo["max_output_tokens"] == 50


def test_images_and_files_become_chat_content_parts():
    request = responses_request(
        {
            "model": "general",
            "input": [
                {"role": "developer", "content": [{"type": "input_text", "text": "Describe."}]},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
                        {
                            "type": "input_file",
                            "file_data": "data:application/pdf;base64,JVBE",
                            "filename": "a.pdf",
                        },
                    ],
                },
            ],
        }
    )

    assert request.chat_body["messages"] == [
        {"role": "developer", "content": [{"type": "text", "text": "Describe."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
                },
            ],
        },
    ]


def test_a_function_call_round_trip_becomes_assistant_tool_calls_and_tool_messages():
    """As the Agents SDK sends a turn back: the model's message, a reasoning item, its calls (with
    ``id`` and ``status``), then the outputs."""
    request = responses_request(
        {
            "model": "general",
            "input": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_a",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                    "status": "completed",
                },
                {
                    "type": "function_call",
                    "id": "fc_2",
                    "call_id": "call_b",
                    "name": "get_weather",
                    "arguments": '{"city":"Rome"}',
                    "status": "completed",
                },
                {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
                {
                    "type": "function_call_output",
                    "id": "fco_2",
                    "call_id": "call_b",
                    "output": [{"type": "input_text", "text": "21C"}],
                    "status": "completed",
                },
            ],
        }
    )

    assert request.chat_body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "21C"}]},
    ]


def test_calls_alone_make_an_assistant_message_without_content():
    request = responses_request(
        {
            "model": "general",
            "input": [
                {"role": "user", "content": "Weather?"},
                {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
            ],
        }
    )

    assistant = request.chat_body["messages"][1]
    assert assistant["content"] is None
    assert [call["id"] for call in assistant["tool_calls"]] == ["call_a"]


def test_tools_and_tool_choice_take_the_chat_shape():
    request = responses_request(
        {
            "model": "general",
            "input": "Weather in Paris?",
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
        }
    )

    assert request.chat_body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER_TOOL["parameters"],
                "strict": True,
            },
        }
    ]
    assert request.chat_body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert request.chat_body["parallel_tool_calls"] is False
    assert request.echo["tools"] == [WEATHER_TOOL]
    assert request.echo["tool_choice"] == {"type": "function", "name": "get_weather"}


def test_allowed_tools_take_the_chat_shape():
    request = responses_request(
        {
            "model": "general",
            "input": "Hi",
            "tools": [WEATHER_TOOL],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "get_weather"}],
            },
        }
    )

    assert request.chat_body["tool_choice"] == {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        },
    }


def test_tool_options_without_tools_are_not_sent_since_chat_refuses_them():
    request = responses_request(
        {"model": "general", "input": "Hi", "tools": [], "tool_choice": "auto", "parallel_tool_calls": True}
    )

    assert set(request.chat_body) == {"messages"}


@pytest.mark.parametrize(
    ("text", "response_format"),
    [
        (
            {"format": {"type": "json_schema", "name": "city", "schema": {"type": "object"}, "strict": True}},
            {
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True},
            },
        ),
        ({"format": {"type": "json_object"}}, {"type": "json_object"}),
    ],
)
def test_text_format_becomes_response_format(text, response_format):
    request = responses_request({"model": "general", "input": "Hi", "text": text})

    assert request.chat_body["response_format"] == response_format
    assert request.echo["text"] == text


def test_the_agents_sdk_request_keeps_what_chat_completions_knows():
    """The Agents SDK's request: storage and Responses-only knobs dropped, the effort mapped, and
    what Responses does not know forwarded as sent."""
    request = responses_request(
        {
            "model": "general",
            "input": "Hi",
            "include": ["reasoning.encrypted_content"],
            "store": False,
            "truncation": "auto",
            "reasoning": {"effort": "low", "summary": "auto"},
            "metadata": {"run": "42"},
            "prompt_cache_key": "agent-1",
            "stream_options": {"include_obfuscation": False},
            "top_logprobs": 2,
            "top_k": 40,
        }
    )

    assert request.chat_body == {
        "top_k": 40,
        "messages": [{"role": "user", "content": "Hi"}],
        "reasoning_effort": "low",
        "prompt_cache_key": "agent-1",
    }
    assert request.echo["metadata"] == {"run": "42"}
    assert request.echo["reasoning"] == {"effort": "low", "summary": "auto"}


@pytest.mark.parametrize("param", ["previous_response_id", "conversation"])
def test_state_is_refused_naming_the_parameter(param):
    error = refused({"model": "general", "input": "Hi", param: "resp_123"})

    assert error.details == {"param": param}
    assert "stateless" in error.message


def test_a_hosted_tool_is_refused_naming_its_type():
    error = refused(
        {"model": "general", "input": "Hi", "tools": [WEATHER_TOOL, {"type": "web_search"}]},
        UnsupportedParameter,
    )

    assert error.details == {"param": "tools[1].type"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "Hi"}, "model"),
        ({"model": "", "input": "Hi"}, "model"),
        ({"model": "general"}, "input"),
        ({"model": "general", "input": []}, "input"),
        ({"model": "general", "input": 3}, "input"),
        ({"model": "general", "input": "Hi", "stream": "yes"}, "stream"),
        ({"model": "general", "input": "Hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "general", "input": "Hi", "temperature": 5}, "temperature"),
        ({"model": "general", "input": [{"role": "user", "content": "Hi"}, {"type": "mystery"}]}, "input[1]"),
        ({"model": "general", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"model": "general", "input": [{"role": "tool", "content": "Hi"}]}, "input[0].role"),
        (
            {"model": "general", "input": [{"type": "function_call_output", "output": "18C"}]},
            "input[0].call_id",
        ),
        ({"model": "general", "input": "Hi", "tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"model": "general", "input": "Hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"model": "general", "input": "Hi", "metadata": {"run": 42}}, "metadata"),
        (
            {"model": "general", "input": "Hi", "tools": [{**WEATHER_TOOL, "strict": "yes"}]},
            "tools[0].strict",
        ),
        (
            {
                "model": "general",
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "file_id": "file_1", "detail": "auto"}],
                    }
                ],
            },
            "input[0].content[0].image_url",
        ),
        (
            {
                "model": "general",
                "input": [
                    {"role": "system", "content": [{"type": "input_image", "image_url": "https://x.png"}]}
                ],
            },
            "input[0].content[0]",
        ),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(body, param):
    assert refused(body).details == {"param": param}


# --- the answer -------------------------------------------------------------------------------------


def test_text_streams_as_openai_orders_it_and_makes_a_completed_response():
    translator, events = translated(
        [chunk(role="assistant", content=""), chunk(content="Hel"), chunk(content="lo")]
    )

    assert [event.type for event in parsed(events)] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["output"] == []
    assert events[6]["text"] == "Hello"
    response = Response.model_validate(translator.response())
    assert response.status == "completed"
    assert response.output_text == "Hello"
    assert response.output[0].id.startswith("msg_")
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert translator.response()["usage"]["cost"] == "0.000034"
    assert events[-1]["response"] == translator.response()


def test_a_tool_call_streamed_in_pieces_is_assembled():
    translator, events = translated(
        [
            chunk(role="assistant", content="Let me check."),
            call_piece(0, "", call_id="call_a", name="get_weather"),
            call_piece(0, '{"city":'),
            call_piece(0, '"Paris"}'),
            call_piece(1, '{"city":"Rome"}', call_id="call_b", name="get_weather"),
        ],
        finish_reason="tool_calls",
        body={"model": "general", "input": "Weather?", "tools": [WEATHER_TOOL]},
    )

    kinds = [event.type for event in parsed(events)]
    # The message is closed when the first call starts, as OpenAI orders the items.
    assert kinds.index("response.output_item.done") < kinds.index("response.function_call_arguments.delta")
    done = [event for event in events if event["type"] == "response.function_call_arguments.done"]
    assert [event["arguments"] for event in done] == ['{"city":"Paris"}', '{"city":"Rome"}']
    response = Response.model_validate(translator.response())
    assert response.output_text == "Let me check."
    calls = response.output[1:]
    assert [(call.type, call.call_id, call.name, call.status) for call in calls] == [
        ("function_call", "call_a", "get_weather", "completed"),
        ("function_call", "call_b", "get_weather", "completed"),
    ]
    assert [json.loads(call.arguments) for call in calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert all(call.id.startswith("fc_") for call in calls)


def test_the_length_limit_leaves_the_response_incomplete():
    translator, events = translated([chunk(content="A long ans")], finish_reason="length")

    last = parsed(events)[-1]
    assert last.type == "response.incomplete"
    response = Response.model_validate(translator.response())
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"
    assert response.output_text == "A long ans"


def test_the_length_limit_cuts_only_the_last_tool_call():
    translator, events = translated(
        [
            call_piece(0, '{"city":"Paris"}', call_id="call_a", name="get_weather"),
            call_piece(1, '{"ci', call_id="call_b", name="get_weather"),
        ],
        finish_reason="length",
        body={"model": "general", "input": "Weather?", "tools": [WEATHER_TOOL]},
    )

    parsed(events)
    response = Response.model_validate(translator.response())
    assert [item.status for item in response.output] == ["completed", "incomplete"]


def test_a_refusal_is_a_refusal_part():
    translator, events = translated([chunk(refusal="I can't "), chunk(refusal="help with that.")])

    kinds = [event.type for event in parsed(events)]
    assert "response.refusal.delta" in kinds
    assert (
        next(e for e in events if e["type"] == "response.refusal.done")["refusal"]
        == "I can't help with that."
    )
    response = Response.model_validate(translator.response())
    assert response.output[0].content[0].type == "refusal"
    assert response.output_text == ""


def test_a_failure_is_a_failed_response_keeping_what_was_said():
    request = responses_request({"model": "general", "input": "Hi"})
    translator = ResponsesTranslator(response_id="resp_test", model="general", request=request, created_at=7)
    events = [
        *translator.start(),
        *translator.feed(chunk(content="Hal")),
        *translator.fail(code="server_error", message="The language model could not produce this reply."),
    ]

    assert parsed(events)[-1].type == "response.failed"
    response = Response.model_validate(translator.response())
    assert (response.status, response.error.code, response.created_at) == ("failed", "server_error", 7)
    assert response.output[0].status == "incomplete"


def test_sse_event_names_the_event_and_writes_compact_json():
    event = {"type": "response.output_text.delta", "sequence_number": 4, "delta": "é"}

    assert (
        sse_event(event)
        == (
            'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            '"sequence_number":4,"delta":"é"}\n\n'
        ).encode()
    )


# --- the official client, end to end ----------------------------------------------------------------


def test_the_sdk_stream_accumulates_the_text():
    client, requests = served([chunk(role="assistant", content="Hel"), chunk(content="lo!")])

    with client.responses.stream(model="general", input="Say hello", instructions="Be brief.") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert deltas == ["Hel", "lo!"]
    assert final.output_text == "Hello!"
    assert final.id == "resp_test"
    assert requests[0].chat_body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_the_sdk_stream_parses_a_strict_function_calls_arguments():
    client, _ = served(
        [call_piece(0, '{"city":', call_id="call_a", name="get_weather"), call_piece(0, '"Paris"}')],
        finish_reason="tool_calls",
    )

    with client.responses.stream(model="general", input="Weather in Paris?", tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_response()

    (call,) = final.output
    assert (call.type, call.call_id, call.name) == ("function_call", "call_a", "get_weather")
    assert call.parsed_arguments == {"city": "Paris"}


def test_the_sdk_parses_structured_output_through_response_format():
    class City(pydantic.BaseModel):
        name: str
        population: int

    client, requests = served([chunk(content='{"name":"Paris",'), chunk(content='"population":2100000}')])

    with client.responses.stream(model="general", input="Biggest French city?", text_format=City) as stream:
        final = stream.get_final_response()

    assert final.output_parsed == City(name="Paris", population=2100000)
    assert requests[0].chat_body["response_format"]["json_schema"]["name"] == "City"


def test_the_sdk_reads_a_response_sent_without_stream():
    client, requests = served([chunk(content="Hello")])

    response = client.responses.create(model="general", input="Say hello", max_output_tokens=20)

    assert requests[0].stream is False
    assert response.output_text == "Hello"
    assert response.usage.total_tokens == 17


def test_the_sdk_raises_nothing_on_an_incomplete_stream_and_reports_it():
    client, _ = served([chunk(content="Cut")], finish_reason="length")

    with client.responses.stream(model="general", input="Say a lot") as stream:
        last = list(stream)[-1]

    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.output_text == "Cut"
