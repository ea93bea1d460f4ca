"""The fake model's decisions (``chats/llm/playalong.py``): the values it makes up for a JSON schema,
when it calls a tool, what it answers, and how it renders that as OpenAI does.

Generated values are checked twice, by ``jsonschema`` against the schema and by pydantic against
the model the schema came from, since what matters is that a client's own parsing accepts them.
"""

import base64
import datetime
import enum
import json
import math
import struct
import uuid
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field, HttpUrl

from chats.llm import playalong
from chats.llm.base import chunk_generated, estimate_prompt_tokens, estimate_tokens


def valid(schema: dict, value: object) -> bool:
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return not list(validator.iter_errors(value))


def function(name: str, parameters: dict | None = None) -> dict:
    tool = {"type": "function", "function": {"name": name}}
    if parameters is not None:
        tool["function"]["parameters"] = parameters
    return tool


def user(text: str) -> dict:
    return {"role": "user", "content": text}


CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = [function("get_weather", CITY), function("get_time", CITY)]


# --- values for a schema ------------------------------------------------------------------------


class Colour(enum.Enum):
    red = "red"
    green = "green"


class Address(BaseModel):
    street: str
    postcode: str = Field(min_length=5, max_length=5)


class Person(BaseModel):
    """Nested models ($defs), arrays, enums, Optional fields, formats and bounds, as pydantic
    writes them."""

    name: str
    age: int = Field(ge=18, le=120)
    score: float = Field(gt=0, lt=1)
    step: int = Field(gt=7, multiple_of=5)
    colour: Colour
    kind: Literal["a", "b"]
    home: Address
    previous: list[Address] = Field(min_length=2, max_length=3)
    nickname: str | None = None
    partner: "Person | None" = None
    born: datetime.date
    seen: datetime.datetime
    id: uuid.UUID
    site: HttpUrl
    pair: tuple[int, str]
    counts: dict[str, int]
    tags: set[str] = set()


def test_a_pydantic_schema_with_defs_nested_models_and_optionals_gets_a_valid_value():
    schema = Person.model_json_schema()
    assert "$defs" in schema

    value = playalong.value_for(schema, text="Ada is 36, living in London")

    assert valid(schema, value)
    person = Person.model_validate(value)
    assert (person.name, person.age, person.colour, person.kind) == ("Ada", 36, Colour.red, "a")
    assert len(person.previous) == 2
    assert person.nickname is not None  # optional fields are filled in too
    assert person.partner is not None and person.partner.partner is None  # recursion stops


def test_the_schema_openai_sends_for_a_strict_response_format_gets_a_valid_value():
    from openai.lib._pydantic import to_strict_json_schema

    schema = to_strict_json_schema(Address)

    assert Address.model_validate(playalong.value_for(schema, text="Main street"))


def test_a_recursive_schema_stays_small():
    class Node(BaseModel):
        value: int
        children: list["Node"]
        parent: "Node | None"

    value = playalong.value_for(Node.model_json_schema())

    assert Node.model_validate(value)
    assert len(json.dumps(value)) < 200


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": ["string", "null"]}, "word"),
        ({"type": ["null", "integer"]}, 7),
        ({"const": 3}, 3),
        ({"enum": ["x", "y"]}, "x"),
        ({"oneOf": [{"type": "boolean"}, {"type": "string"}]}, True),
        ({"type": "null"}, None),
        ({"type": "integer", "minimum": 10, "maximum": 20}, 15),
        ({"type": "integer", "exclusiveMinimum": 100}, 101),
        ({"type": "integer", "exclusiveMaximum": 0}, -1),
        ({"type": "number", "minimum": 0.5, "maximum": 0.75}, 0.625),
        ({"type": "integer", "minimum": 1, "multipleOf": 4}, 8),
        ({"type": "string", "format": "date"}, "2024-01-01"),
        ({"type": "string", "minLength": 7}, "wordword"),
        ({"type": "string", "maxLength": 2}, "wo"),
        ({"type": "array", "items": {"type": "integer"}}, [7]),
        ({"type": "array", "items": {"type": "boolean"}, "minItems": 3}, [True] * 3),
        ({"type": "array", "maxItems": 0}, []),
        (
            {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
            [7, "word"],
        ),
        (
            {"allOf": [{"properties": {"a": {"const": 1}}}, {"properties": {"b": {"const": 2}}}]},
            {"a": 1, "b": 2},
        ),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, {}),
        ({"type": "object", "required": ["x"]}, {"x": "word"}),
        ({"$ref": "#/definitions/A", "definitions": {"A": {"type": "boolean"}}}, True),
        ({}, "word"),
    ],
)
def test_values_for_schema_keywords(schema, expected):
    value = playalong.value_for(schema, text="word 7")

    assert value == expected
    assert valid(schema, value)


def test_strings_and_integers_come_from_the_text_in_turn_else_from_the_property_name():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "n": {"type": "integer"}},
    }

    assert playalong.value_for(schema, text="Hello there, 42 times") == {"a": "Hello", "b": "there", "n": 42}
    assert playalong.value_for(schema) == {"a": "a", "b": "b", "n": 1}


def test_a_reference_that_cannot_be_resolved_stands_for_any_value():
    assert playalong.value_for({"$ref": "https://example.com/elsewhere"}, text="word") == "word"
    assert playalong.value_for({"$ref": "#/$defs/Missing"}, text="word") == "word"


# --- which tool, if any ------------------------------------------------------------------------


def called(messages: list[dict], **options) -> str | None:
    reply = playalong.reply(messages, options)
    return reply.tool_call.name if reply.tool_call else None


def test_a_tool_named_in_the_last_user_message_is_called_when_the_choice_is_auto():
    assert called([user("what does get_time say?")], tools=TOOLS) == "get_time"
    assert called([user("please GET WEATHER here")], tools=TOOLS, tool_choice="auto") == "get_weather"
    assert called([user("get_time"), {"role": "assistant", "content": "?"}, user("hi")], tools=TOOLS) is None
    assert called([user("nothing to call")], tools=TOOLS) is None
    assert called([user("forget_weather")], tools=TOOLS) is None


def test_required_calls_the_named_tool_else_the_first():
    assert called([user("get_time in Oslo")], tools=TOOLS, tool_choice="required") == "get_time"
    assert called([user("anything")], tools=TOOLS, tool_choice="required") == "get_weather"


def test_a_function_named_by_tool_choice_is_called_even_unmentioned():
    forced = {"type": "function", "function": {"name": "get_time"}}

    assert called([user("get_weather")], tools=TOOLS, tool_choice=forced) == "get_time"
    # one not offered still gets a call (with arguments for no schema)
    reply = playalong.reply([user("x")], {"tool_choice": {"type": "function", "function": {"name": "other"}}})
    assert (reply.tool_call.name, reply.tool_call.arguments) == ("other", "{}")


def test_none_never_calls_a_tool():
    assert called([user("get_weather")], tools=TOOLS, tool_choice="none") is None


def after_results(*names: str) -> list[dict]:
    """A conversation that ends with the results of calls to ``names``."""
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": "{}"}}
        for i, name in enumerate(names)
    ]
    results = [
        {"role": "tool", "tool_call_id": "c0", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "Noon"}]},
    ]
    return [
        user("get_weather and get_time"),
        {"role": "assistant", "content": None, "tool_calls": calls},
        *results,
    ]


def test_a_tool_result_is_answered_in_text_carrying_it():
    for tool_choice in ("auto", "none", None):
        reply = playalong.reply(
            after_results("get_weather", "get_time"), {"tools": TOOLS, "tool_choice": tool_choice}
        )

        assert (reply.content, reply.tool_call, reply.finish_reason) == ("Echo: Sunny\nNoon", None, "stop")


def test_after_a_tool_result_a_demanded_call_goes_to_a_tool_not_called_yet_else_text():
    """pydantic-ai's structured output: ``required``, its function tools, then its output tool."""
    output_tool = function("final_result", {"type": "object", "properties": {"summary": {"type": "string"}}})
    options = {"tools": [*TOOLS, output_tool], "tool_choice": "required"}

    next_call = playalong.reply(after_results("get_weather", "get_time"), options).tool_call
    done = playalong.reply(after_results("get_weather", "final_result"), {**options, "tools": TOOLS[:1]})
    forced = {"type": "function", "function": {"name": "get_time"}}
    forced_again = playalong.reply(
        after_results("get_time", "get_time"), {"tools": TOOLS, "tool_choice": forced}
    )

    assert (next_call.name, json.loads(next_call.arguments)) == ("final_result", {"summary": "Sunny"})
    assert done.content == forced_again.content == "Echo: Sunny\nNoon"


def test_tool_arguments_follow_the_tools_schema_and_the_question():
    reply = playalong.reply([user("get_weather for Lima")], {"tools": TOOLS})

    assert json.loads(reply.tool_call.arguments) == {"city": "get"}
    assert reply.tool_call.id.startswith("call_")
    assert reply.finish_reason == "tool_calls"
    assert reply.content is None


# --- text answers -------------------------------------------------------------------------------


def test_plain_text_echoes_the_last_user_message():
    messages = [
        {"role": "system", "content": "Be brief."},
        user("Hi"),
        {"role": "assistant", "content": "Yo"},
    ]

    assert playalong.reply([*messages, user("again")], {}).content == "Echo: again"
    assert playalong.reply(messages[:1], {}).content == "Echo."


def test_a_json_schema_response_format_gets_compact_json_for_it():
    schema = Address.model_json_schema()
    response_format = {"type": "json_schema", "json_schema": {"name": "Address", "schema": schema}}

    reply = playalong.reply([user("High street 12345")], {"response_format": response_format})

    assert reply.content == '{"street":"High","postcode":"stree"}'  # the next word, cut to maxLength
    assert Address.model_validate_json(reply.content)


def test_json_object_answers_a_schema_in_the_prompt_else_echoes_in_json():
    instructions = f"Reply with JSON for this schema: {json.dumps(Address.model_json_schema())}."
    messages = [{"role": "system", "content": instructions}, user("Elm")]
    options = {"response_format": {"type": "json_object"}}

    assert Address.model_validate_json(playalong.reply(messages, options).content).street == "Elm"
    assert json.loads(playalong.reply(messages[1:], options).content) == {"echo": "Elm"}


def test_the_largest_schema_in_the_messages_is_found():
    small = {"type": "object", "properties": {"a": {"type": "string"}}}
    large = Person.model_json_schema()
    messages = [
        {
            "role": "system",
            "content": f"Not this {{one}}, nor {json.dumps({'data': [1, 2]})}: {json.dumps(small)}",
        },
        user(f"But this: {json.dumps({'name': 'Person', 'schema': large}, indent=2)} please"),
    ]

    assert playalong.schema_in_messages(messages) == large
    assert playalong.schema_in_messages(messages[:1]) == small
    assert playalong.schema_in_messages([user("{}"), user('{"type": "weird"}')]) is None


# --- max_tokens, n, logprobs, rendering --------------------------------------------------------


def test_max_tokens_cuts_each_choice_and_finishes_with_length():
    text = playalong.reply([user("a rather long question")], {}, max_tokens=3)
    call = playalong.reply([user("x")], {"tools": TOOLS, "tool_choice": "required"}, max_tokens=5)
    enough = playalong.reply([user("short")], {}, max_tokens=100)

    assert (text.content, text.finish_reason) == ("Echo: a rath", "length")
    assert call.tool_call.name + call.tool_call.arguments == 'get_weather{"city":"'  # 20 bytes
    assert call.finish_reason == "length"
    assert (enough.content, enough.finish_reason) == ("Echo: short", "stop")


def test_truncate_to_tokens_keeps_whole_characters():
    assert playalong.truncate_to_tokens("日本語です", 2) == "日本"  # 8 bytes fit two 3-byte characters
    assert playalong.truncate_to_tokens("short", 2) == "short"
    assert playalong.truncate_to_tokens("abc", 0) == ""


def test_stream_chunks_of_n_choices_take_turns_between_role_and_finish():
    reply = playalong.reply([user("two words")], {"n": 2})

    chunks = reply.stream_chunks(completion_id="chatcmpl-1", created=5, model="m")

    choices = [chunk["choices"] for chunk in chunks]
    assert all(len(c) == 1 for c in choices)
    assert [c[0]["index"] for c in choices] == [0, 1] * 5
    assert [c[0]["delta"].get("content") for c in choices[::2]] == ["", "Echo:", " two", " words", None]
    assert choices[0][0]["delta"]["role"] == "assistant"
    assert [c[0]["finish_reason"] for c in choices[-2:]] == ["stop", "stop"]
    assert {(chunk["id"], chunk["object"], chunk["created"], chunk["model"]) for chunk in chunks} == {
        ("chatcmpl-1", "chat.completion.chunk", 5, "m")
    }
    assert reply.completion_tokens == 2 * estimate_tokens("Echo: two words")


def test_a_streamed_tool_call_opens_with_its_name_then_sends_its_arguments_in_pieces():
    reply = playalong.reply([user("get_time in Reykjavik")], {"tools": TOOLS})

    chunks = reply.stream_chunks(completion_id="c", created=0, model="m")

    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas[0] == {"role": "assistant", "content": None, "refusal": None}
    assert deltas[1]["tool_calls"] == [
        {
            "index": 0,
            "id": reply.tool_call.id,
            "type": "function",
            "function": {"name": "get_time", "arguments": ""},
        }
    ]
    pieces = [delta["tool_calls"][0]["function"]["arguments"] for delta in deltas[2:-1]]
    assert len(pieces) > 1
    assert "".join(pieces) == reply.tool_call.arguments
    assert "".join(map(chunk_generated, chunks)) == reply.generated
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_logprobs_are_deterministic_and_list_the_top_alternatives():
    options = {"logprobs": True, "top_logprobs": 3}
    reply = playalong.reply([user("hi")], options)

    streamed = [
        chunk["choices"][0]["logprobs"]
        for chunk in reply.stream_chunks(completion_id="c", created=0, model="m")
    ]
    whole = reply.completion_choices()[0]["logprobs"]

    assert streamed[0] is None and streamed[-1] is None  # role and finish chunks carry none
    entries = [entry for logprobs in streamed[1:-1] for entry in logprobs["content"]]
    assert entries == whole["content"]
    assert [entry["token"] for entry in entries] == ["Echo:", " hi"]
    first = entries[0]
    assert first["bytes"] == list(b"Echo:")
    assert -0.1 <= first["logprob"] <= 0
    assert [alternative["token"] for alternative in first["top_logprobs"]] == ["Echo:", "alt1", "alt2"]
    assert first["top_logprobs"][0]["logprob"] == first["logprob"] > first["top_logprobs"][1]["logprob"]
    assert playalong.reply([user("hi")], options) == reply
    assert (
        playalong.reply([user("hi")], {"logprobs": True}).completion_choices()[0]["logprobs"]["content"][0][
            "top_logprobs"
        ]
        == []
    )


def test_completion_choices_of_a_tool_call_carry_it_with_no_content():
    reply = playalong.reply([user("x")], {"tools": TOOLS, "tool_choice": "required", "n": 2})

    choices = reply.completion_choices()

    assert [choice["index"] for choice in choices] == [0, 1]
    message = choices[0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {
            "id": reply.tool_call.id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": reply.tool_call.arguments},
        }
    ]
    assert choices[1]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"n": 0}, "n"),
        ({"n": playalong.MAX_CHOICES + 1}, "n"),
        ({"n": "2"}, "n"),
        ({"logprobs": True, "top_logprobs": playalong.MAX_TOP_LOGPROBS + 1}, "top_logprobs"),
    ],
)
def test_choices_and_logprobs_beyond_openais_limits_are_refused(options, param):
    with pytest.raises(playalong.InvalidRequest) as refused:
        playalong.reply([user("hi")], options)

    assert refused.value.error["param"] == param


def test_prompt_tokens_count_the_offered_tools():
    messages = [user("hello")]

    assert playalong.prompt_tokens(messages, {}) == estimate_prompt_tokens(messages)
    assert playalong.prompt_tokens(messages, {"tools": TOOLS}) == estimate_prompt_tokens(
        messages
    ) + estimate_tokens(json.dumps(TOOLS))


# --- embeddings ---------------------------------------------------------------------------------


def test_embeddings_are_deterministic_unit_vectors_per_input():
    first = playalong.embeddings("e", {"input": ["cat", "dog", "cat"]})
    again = playalong.embeddings("e", {"input": "cat"})

    vectors = [item["embedding"] for item in first["data"]]
    assert [item["index"] for item in first["data"]] == [0, 1, 2]
    assert len(vectors[0]) == playalong.DEFAULT_DIMENSIONS
    assert vectors[0] == vectors[2] == again["data"][0]["embedding"] != vectors[1]
    assert all(math.isclose(sum(x * x for x in vector), 1, rel_tol=1e-6) for vector in vectors)
    assert first["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert (first["object"], first["model"]) == ("list", "e")


def test_base64_embeddings_are_the_same_numbers_as_little_endian_float32():
    floats = playalong.embeddings("e", {"input": "cat", "dimensions": 5, "encoding_format": "float"})
    packed = playalong.embeddings("e", {"input": "cat", "dimensions": 5, "encoding_format": "base64"})

    raw = base64.b64decode(packed["data"][0]["embedding"], validate=True)
    assert list(struct.unpack("<5f", raw)) == floats["data"][0]["embedding"]


def test_token_id_inputs_count_their_length():
    single = playalong.embeddings("e", {"input": [5, 6, 7]})
    several = playalong.embeddings("e", {"input": [[5, 6, 7], [8]]})

    assert len(single["data"]) == 1
    assert single["data"][0]["embedding"] == several["data"][0]["embedding"]
    assert several["usage"]["prompt_tokens"] == 4


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({}, "input"),
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": [[]]}, "input"),
        ({"input": ["a"] * (playalong.MAX_EMBEDDING_INPUTS + 1)}, "input"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({"input": "a", "dimensions": True}, "dimensions"),
        ({"input": "a", "dimensions": playalong.MAX_DIMENSIONS + 1}, "dimensions"),
        ({"input": "a", "encoding_format": "hex"}, "encoding_format"),
    ],
)
def test_embeddings_refuse_what_openai_refuses(options, param):
    with pytest.raises(playalong.InvalidRequest) as refused:
        playalong.embeddings("e", options)

    assert refused.value.error["param"] == param
    assert refused.value.error["type"] == "invalid_request_error"
