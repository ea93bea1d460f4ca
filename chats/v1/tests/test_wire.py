"""OpenAI's wire format on ``/v1/``, as a client meets it: what Parley does not own forwarded as sent,
OpenAI's documented parameters checked as OpenAI documents them (a 400 naming the parameter),
errors in OpenAI's shape.

Parley runs under uvicorn on loopback, the fake upstream behind it, the official ``openai`` SDK in front.
"""

import json

import httpx
import openai
import pytest

from chats.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


QUESTION = [{"role": "user", "content": "Say hello"}]


# --- the request ---------------------------------------------------------------------------------

EVERYDAY_OFF = {
    "logit_bias": {},
    "logprobs": False,
    "tools": [],
    "response_format": {"type": "text"},
    "store": False,
    "metadata": {"app": "test"},
    "parallel_tool_calls": True,
    "reasoning_effort": "low",
    "service_tier": "auto",
    "seed": 7,
    "stop": ["\n\n"],
    "temperature": 0.2,
}


def test_the_sdks_everyday_parameters_are_forwarded_as_sent(client, openai_settings):
    client.chat.completions.create(model="general", messages=QUESTION, user="u-1", **EVERYDAY_OFF)
    body = openai_settings.last_request.body
    assert {name: body[name] for name in EVERYDAY_OFF} == EVERYDAY_OFF
    assert body["user"] == "u-1"


def test_keys_openai_does_not_know_reach_the_upstream(client, openai_settings):
    client.chat.completions.create(model="general", messages=QUESTION, extra_body={"top_k": 5, "min_p": 0.1})
    assert openai_settings.last_request.body["top_k"] == 5
    assert openai_settings.last_request.body["min_p"] == 0.1


def test_every_role_and_field_and_part_is_forwarded_as_sent(client, openai_settings):
    messages = [
        {"role": "developer", "content": "Answer in English."},
        {
            "role": "user",
            "name": "ada",
            "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
        },
    ]
    client.chat.completions.create(model="general", messages=messages)
    forwarded = openai_settings.last_request.body["messages"]
    assert forwarded[0] == {"role": "system", "content": "Be brief."}  # the category's system prompt
    assert forwarded[1:] == messages


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"parameters": {}}}]}, "tools[0].function.name"),
        ({"tools": {"f": 1}}, "tools"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"n": 0}, "n"),
        ({"n": 5}, "n"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"logit_bias": {"50256": 500}}, "logit_bias"),
        ({"temperature": 5}, "temperature"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ],
)
def test_a_documented_parameter_of_the_wrong_shape_is_a_400_naming_it(client, openai_settings, extra, param):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="general", messages=QUESTION, **extra)
    assert raised.value.param == param
    assert not UsageRecord.objects.exists()
    assert openai_settings.requests == []


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "tool", "content": "x"}], "messages[0].tool_call_id"),
        ([{"role": "function", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": None}], "messages[0].content"),
        ([{"role": "user", "content": [{"text": "no type"}]}], "messages[0].content[0]"),
        ([], "messages"),
    ],
)
def test_malformed_messages_are_a_400_naming_them(client, messages, param):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="general", messages=messages)
    assert raised.value.param == param


@pytest.mark.parametrize(
    "where",
    ["content", "part", "model", "stop", "user"],
)
def test_a_lone_surrogate_anywhere_is_a_400_not_a_500(live_asgi_url, key, where):
    body = {"model": "general", "messages": [{"role": "user", "content": "hi"}]}
    match where:
        case "content":
            body["messages"][0]["content"] = "\ud800"
        case "part":
            body["messages"][0]["content"] = [{"type": "text", "text": "a\udfff"}]
        case "model":
            body["model"] = "gen\ud800"
        case "stop":
            body["stop"] = "\ud800"
        case "user":
            body["user"] = "\ud800"
    raw = json.dumps(body).encode()  # json escapes the surrogate: valid JSON, not valid text
    response = httpx.post(
        f"{live_asgi_url}/v1/chat/completions",
        content=raw,
        headers={"Authorization": f"Bearer {key[1]}", "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert not UsageRecord.objects.exists()


def test_an_upstream_refusal_is_its_own_4xx_in_openais_shape_and_free(client, user, openai_settings):
    openai_settings.configure(fail_status=400, fail_message="'tools' is not supported by this model.")
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="general", messages=QUESTION)
    assert raised.value.status_code == 400
    assert raised.value.message.endswith("'tools' is not supported by this model.")
    record = UsageRecord.objects.get()
    assert (record.status, record.cost) == ("failed", 0)


def test_a_stream_that_fails_before_its_first_chunk_is_an_http_error(client, openai_settings):
    openai_settings.configure(fail_status=503)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="general", messages=QUESTION, stream=True)
    assert raised.value.status_code == 503
    assert raised.value.response.headers["content-type"].startswith("application/json")


# --- errors in OpenAI's shape --------------------------------------------------------------------


def test_a_refused_request_is_logged_with_its_parameter_and_reason(client, caplog):
    with caplog.at_level("INFO", logger="chats.v1.views"), pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="general", messages=QUESTION, temperature=9)
    line = next(r.getMessage() for r in caplog.records if r.name == "chats.v1.views")
    assert "param=temperature" in line
    assert "'temperature' must be a number from 0.0 to 2.0" in line


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/chat/completions", 405),
        ("GET", "/v1/responses", 405),
        ("GET", "/v1/embeddings", 405),
        ("POST", "/v1/completions", 404),
        ("GET", "/v1/nowhere/at/all", 404),
    ],
)
def test_every_v1_error_is_in_openais_shape(live_asgi_url, key, method, path, status):
    response = httpx.request(method, f"{live_asgi_url}{path}", headers={"Authorization": f"Bearer {key[1]}"})
    assert response.status_code == status
    assert {"message", "type", "param", "code"} <= set(response.json()["error"])


def test_a_body_over_the_limit_is_a_413_in_openais_shape(live_asgi_url, key, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    body = {"model": "general", "messages": [{"role": "user", "content": "x" * 4096}]}
    response = httpx.post(
        f"{live_asgi_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key[1]}"}
    )
    assert response.status_code == 413
    assert {"message", "type", "param", "code"} <= set(response.json()["error"])
    assert not UsageRecord.objects.exists()


def test_a_body_that_is_not_json_is_a_400_in_openais_shape(live_asgi_url, key):
    response = httpx.post(
        f"{live_asgi_url}/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {key[1]}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert {"message", "type", "param", "code", "details"} <= set(error)


def test_json_dumps_of_a_failure_never_leaks_internals(client, openai_settings):
    openai_settings.configure(fail_status=500, fail_message="secret upstream detail")
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="general", messages=QUESTION)
    assert "secret upstream detail" not in json.dumps(raised.value.body)
