"""OpenAI's wire format on ``/v1/``, as a client meets it: the request read strictly (what Parley does
not support is a 400 naming the parameter), text parts joined, errors in OpenAI's shape.

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


def test_content_as_a_list_of_text_parts_is_joined(client, openai_settings):
    client.chat.completions.create(
        model="general",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}
        ],
    )
    assert openai_settings.last_request.body["messages"][-1] == {"role": "user", "content": "Hello"}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"temperature": 5}, "temperature"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
def test_an_unsupported_or_bad_parameter_is_a_400_naming_it(client, extra, param):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="general", messages=QUESTION, **extra)
    assert raised.value.param == param
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "tool", "content": "x", "tool_call_id": "1"}], "messages[0].tool_call_id"),
        ([{"role": "developer", "content": "x"}], "messages[0].role"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            "messages[0].content[0]",
        ),
        ([], "messages"),
    ],
)
def test_unsupported_messages_are_a_400_naming_them(client, messages, param):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="general", messages=messages)
    assert raised.value.param == param


# --- errors in OpenAI's shape --------------------------------------------------------------------


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
