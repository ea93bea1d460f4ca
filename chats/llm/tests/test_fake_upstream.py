"""The fake OpenAI upstream itself (``tests/fakes/openai_upstream.py``), which the provider tests use.

What it answers beyond the scenario's reply (tool calls, structured output, ``n``, logprobs,
embeddings) is read back with the official ``openai`` client, so the shapes are the SDK's own.
"""

import enum
import json
import math
import socket
import subprocess
import sys

import httpx
import openai
import pytest
from pydantic import BaseModel, Field

from chats.llm.playalong import DEFAULT_DIMENSIONS
from tests.fakes.openai_upstream import FakeOpenAI


async def test_fake_answers_non_streaming_requests_with_a_completion(fake_openai):
    fake_openai.configure(reply="whole reply", prompt_tokens=7, completion_tokens=2)
    client = openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="k", max_retries=0)
    try:
        completion = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
        models = await client.models.list()
        with pytest.raises(openai.NotFoundError):
            await client.completions.create(model="m", prompt="x")
    finally:
        await client.close()

    assert completion.choices[0].message.content == "whole reply"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 2)
    assert [model.id for model in models.data] == ["fake-model"]


def test_fake_starts_and_stops_on_its_own_port():
    with FakeOpenAI() as fake:
        assert fake.base_url.startswith("http://127.0.0.1:")
        assert fake.base_url.endswith("/v1")
        with socket.create_connection(("127.0.0.1", fake.port)) as conn:
            conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}")
            assert conn.recv(100).startswith(b"HTTP/1.1 400")
        assert fake.wait_until_sync(lambda: len(fake.requests) == 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", fake.port), timeout=1).close()


def test_fake_is_configurable_over_http_from_its_own_process():
    """How a benchmark runs it: a separate process, scenario set through /fake/ endpoints."""
    command = [sys.executable, "-m", "tests.fakes.openai_upstream", "--port", "0", "--chunks", "3"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            base_url = process.stdout.readline().split()[-1]
            root = base_url.removesuffix("/v1")
            with httpx.Client(base_url=root, timeout=5) as http:
                assert http.get("/fake/stats").json()["requests"] == 0
                body = {"model": "m", "messages": [], "stream": True}
                streamed = http.post("/v1/chat/completions", json=body).text
                assert streamed.count('"content":" t') == 3
                assert streamed.endswith("data: [DONE]\n\n")

                scenario = http.post("/fake/scenario", json={"reply": "changed", "chunk_delay": 0.001})
                assert scenario.json()["reply"] == "changed"
                assert http.post("/fake/scenario", json={"nonsense": 1}).status_code == 400
                completion = http.post("/v1/chat/completions", json={**body, "stream": False}).json()
                assert completion["choices"][0]["message"]["content"] == "changed"
                assert http.get("/fake/stats").json()["completed"] == 2
                assert http.post("/fake/reset").json()["requests"] == 0
                assert http.get("/fake/nothing").status_code == 404
        finally:
            process.terminate()
            process.wait(timeout=10)


# --- beyond the scenario's reply: what playalong answers ----------------------------------------


class GetWeather(BaseModel):
    """The weather in a city."""

    city: str
    days: int = Field(ge=1, le=7)


class Unit(enum.Enum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"


class Reading(BaseModel):
    place: str
    unit: Unit
    degrees: float
    note: str | None


class Report(BaseModel):
    title: str
    readings: list[Reading] = Field(min_length=2)
    best: Reading


@pytest.fixture
def client(fake_openai):
    with openai.OpenAI(base_url=fake_openai.base_url, api_key="x", max_retries=0) as client:
        yield client


def test_a_streamed_tool_call_is_reassembled_by_the_sdk_then_its_result_answered(client, fake_openai):
    tools = [openai.pydantic_function_tool(GetWeather)]
    question = [{"role": "user", "content": "GetWeather in Paris for 3 days"}]

    with client.chat.completions.stream(
        model="m", messages=question, tools=tools, stream_options={"include_usage": True}
    ) as stream:
        events = [event.type for event in stream]
        called = stream.get_final_completion()

    assert events.count("tool_calls.function.arguments.delta") > 1  # the arguments came in pieces
    choice = called.choices[0]
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", None)
    (call,) = choice.message.tool_calls
    assert call.function.parsed_arguments == GetWeather(city="GetWeather", days=3)
    assert called.usage.completion_tokens > 0
    assert fake_openai.last_request.body["tools"][0]["function"]["name"] == "GetWeather"

    answer = client.chat.completions.create(
        model="m",
        messages=[
            *question,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24 degrees"},
        ],
        tools=tools,
    )

    assert answer.choices[0].message.content == "Echo: Sunny, 24 degrees"
    assert answer.choices[0].finish_reason == "stop"


def test_a_forced_tool_call_is_answered_whole_without_streaming(client):
    completion = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Hi"}],
        tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice={"type": "function", "function": {"name": "GetWeather"}},
    )

    message = completion.choices[0].message
    assert message.content is None
    assert GetWeather.model_validate_json(message.tool_calls[0].function.arguments) == GetWeather(
        city="Hi", days=1
    )


def test_tool_choice_none_answers_the_scenarios_reply_even_when_the_tool_is_named(client):
    completion = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "GetWeather please"}],
        tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice="none",
    )

    assert completion.choices[0].message.content == "Hello from the fake model."
    assert completion.choices[0].message.tool_calls is None


def test_parse_with_a_pydantic_model_returns_the_parsed_object(client, fake_openai):
    completion = client.chat.completions.parse(
        model="m",
        messages=[{"role": "user", "content": "Weather report for Oslo and Rome"}],
        response_format=Report,
    )

    report = completion.choices[0].message.parsed
    assert isinstance(report, Report)
    assert len(report.readings) == 2
    assert report.title == "Weather"
    sent = fake_openai.last_request.body["response_format"]
    assert (sent["type"], sent["json_schema"]["name"]) == ("json_schema", "Report")


def test_json_mode_answers_the_schema_written_in_the_prompt(client):
    """How instructor's JSON mode asks: the schema in the system message, ``json_object`` format."""
    system = f"Answer with JSON that matches this schema:\n{json.dumps(Report.model_json_schema(), indent=2)}"
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "Oslo"}]

    completion = client.chat.completions.create(
        model="m", messages=messages, response_format={"type": "json_object"}
    )
    plain = client.chat.completions.create(
        model="m", messages=messages[1:], response_format={"type": "json_object"}
    )

    assert Report.model_validate_json(completion.choices[0].message.content).title == "Oslo"
    assert json.loads(plain.choices[0].message.content) == {"echo": "Oslo"}


def test_n_choices_of_the_scenarios_reply_streamed_and_not(client):
    question = [{"role": "user", "content": "Say two"}]

    one = client.chat.completions.create(model="m", messages=question)
    whole = client.chat.completions.create(model="m", messages=question, n=2)
    with client.chat.completions.stream(
        model="m", messages=question, n=2, stream_options={"include_usage": True}
    ) as stream:
        streamed = stream.get_final_completion()

    for completion in (whole, streamed):
        assert [choice.index for choice in completion.choices] == [0, 1]
        assert {choice.message.content for choice in completion.choices} == {"Hello from the fake model."}
        assert completion.usage.prompt_tokens == one.usage.prompt_tokens
        assert completion.usage.completion_tokens == 2 * one.usage.completion_tokens


def test_logprobs_streamed_and_not(client, fake_openai):
    fake_openai.configure(chunks=["Three", " small", " words"])
    question = [{"role": "user", "content": "Hi"}]

    whole = client.chat.completions.create(model="m", messages=question, logprobs=True, top_logprobs=2)
    with client.chat.completions.stream(model="m", messages=question, logprobs=True) as stream:
        streamed = stream.get_final_completion()

    tokens = whole.choices[0].logprobs.content
    assert [token.token for token in tokens] == ["Three", " small", " words"]
    assert all(len(token.top_logprobs) == 2 and token.logprob <= 0 for token in tokens)
    assert tokens[0].top_logprobs[0].token == tokens[0].token
    assert [token.logprob for token in streamed.choices[0].logprobs.content] == [t.logprob for t in tokens]
    assert all(token.top_logprobs == [] for token in streamed.choices[0].logprobs.content)


def test_a_tool_call_or_json_is_capped_at_max_tokens_by_the_estimate_rule(client):
    tools = [openai.pydantic_function_tool(GetWeather)]
    question = [{"role": "user", "content": "Lima"}]

    called = client.chat.completions.create(
        model="m", messages=question, tools=tools, tool_choice="required", max_tokens=4
    )
    answered = client.chat.completions.create(
        model="m", messages=question, response_format={"type": "json_object"}, max_tokens=2, n=2
    )

    call = called.choices[0].message.tool_calls[0].function
    assert call.name + call.arguments == 'GetWeather{"city'  # 16 bytes: 4 tokens
    assert called.choices[0].finish_reason == "length"
    assert called.usage.completion_tokens == 4
    assert [choice.message.content for choice in answered.choices] == ['{"echo":'] * 2  # 2 tokens each
    assert answered.usage.completion_tokens == 4


def test_the_scenarios_failures_apply_to_a_playalong_reply(fake_openai):
    fake_openai.configure(fail_after_chunks=2)
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "tools": [openai.pydantic_function_tool(GetWeather)],
        "tool_choice": "required",
    }

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{fake_openai.base_url}/chat/completions", json=body).read()

    assert fake_openai.last_request.chunks_sent == 2  # the call's name, then one piece of arguments
    assert not fake_openai.last_request.completed


# --- max_tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
def test_the_reply_stops_at_max_tokens_one_chunk_a_token(client, fake_openai, limit):
    fake_openai.configure(chunks=["a", "b", "c", "d"])

    completion = client.chat.completions.create(model="m", messages=[], **{limit: 3})
    # (not .stream(): its accumulator refuses a reply cut by the length limit)
    chunks = list(
        client.chat.completions.create(
            model="m", messages=[], stream=True, stream_options={"include_usage": True}, **{limit: 3}
        )
    )

    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == ("abc", "length")
    assert completion.usage.completion_tokens == 3
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == "abc"
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 3
    assert fake_openai.last_request.chunks_sent == 3


def test_an_upstream_that_ignores_max_tokens_sends_it_all(client, fake_openai):
    fake_openai.configure(chunks=["a", "b", "c", "d"], ignore_max_tokens=True)

    with client.chat.completions.stream(model="m", messages=[], max_tokens=2) as stream:
        completion = stream.get_final_completion()

    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == ("abcd", "stop")


# --- errors -------------------------------------------------------------------------------------


def test_a_4xx_names_the_parameter_at_fault_in_openais_shape(client, fake_openai):
    fake_openai.configure(
        fail_status=400, fail_message="'tools' is not supported.", fail_param="tools", fail_code="unsupported"
    )

    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])

    assert raised.value.body == {
        "message": "'tools' is not supported.",
        "type": "invalid_request_error",
        "param": "tools",
        "code": "unsupported",
    }


def test_a_request_beyond_openais_limits_is_refused_naming_the_parameter(client):
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(model="m", messages=[], n=1000, stream=stream)

        assert (raised.value.body["param"], raised.value.body["type"]) == ("n", "invalid_request_error")


def test_a_5xx_is_a_server_error(client, fake_openai):
    fake_openai.configure(fail_status=500)

    with pytest.raises(openai.InternalServerError) as raised:
        client.embeddings.create(model="e", input="x")

    assert raised.value.body["type"] == "server_error"


def test_fail_ratio_fails_that_share_of_requests_repeatably_for_a_seed(client, fake_openai):
    def statuses() -> list[int]:
        answered = []
        for _ in range(200):
            try:
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
                answered.append(200)
            except openai.APIStatusError as failed:
                answered.append(failed.status_code)
        return answered

    fake_openai.configure(fail_status=503, fail_ratio=0.3, fail_seed=7)
    first = statuses()
    fake_openai.configure(fail_status=503, fail_ratio=0.3, fail_seed=7)  # the same draws again

    assert statuses() == first
    assert set(first) == {200, 503}
    assert 40 <= first.count(503) <= 80  # 60 expected
    fake_openai.configure(fail_status=500, fail_ratio=0.0)
    assert statuses()[:20] == [200] * 20


# --- embeddings ---------------------------------------------------------------------------------


def test_embeddings_in_the_sdks_default_base64_decode_to_unit_float_vectors(client, fake_openai):
    answer = client.embeddings.create(model="e", input=["cat", "dog"])

    assert fake_openai.last_request.body["encoding_format"] == "base64"  # what the SDK asks for
    vectors = [item.embedding for item in answer.data]
    assert [len(vector) for vector in vectors] == [DEFAULT_DIMENSIONS] * 2
    assert all(isinstance(x, float) for x in vectors[0])
    assert all(math.isclose(sum(x * x for x in vector), 1, rel_tol=1e-5) for vector in vectors)
    assert vectors[0] != vectors[1]
    assert (answer.model, answer.usage.prompt_tokens, answer.usage.total_tokens) == ("e", 2, 2)

    floats = client.embeddings.create(model="e", input=["cat"], encoding_format="float")
    assert floats.data[0].embedding == vectors[0]


def test_embeddings_of_token_ids_in_the_dimensions_asked(client):
    answer = client.embeddings.create(model="e", input=[[1, 2, 3], [4]], dimensions=3)

    assert [len(item.embedding) for item in answer.data] == [3, 3]
    assert answer.usage.prompt_tokens == 4


def test_embeddings_refuse_an_empty_input_naming_it(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model="e", input="")

    assert raised.value.body["param"] == "input"
