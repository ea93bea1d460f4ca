"""The official ``openai`` SDK on ``/v1/chat/completions``: tools, parse, images, logprobs, ``n``."""

import asyncio
import json

import pytest

from tests.clients.books import assert_charged_once_each
from tests.clients.chat import (
    async_ask,
    from_chunks,
    from_completion,
    from_completion_choices,
    sync_ask,
    tool_round_trip,
)
from tests.clients.shared import ASK_CITY, CHAT_WEATHER_TOOL, MODEL, City, png_data_url, seen_chat

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def upstream(request, backend):
    """The fake upstream when it is the one answering (what Parley forwarded), else None."""
    return request.getfixturevalue("fake_openai") if backend == "upstream" else None


@pytest.mark.parametrize("flavour", ["sync", "sync-stream", "async", "async-stream"])
def test_a_tool_round_trip_with_tool_messages(
    flavour, sdk, async_sdk_factory, upstream, user, general_category
):
    stream = flavour.endswith("stream")
    if flavour.startswith("sync"):
        seen, sent = asyncio.run(tool_round_trip(sync_ask(sdk, stream=stream)))
    else:

        async def run():
            async with async_sdk_factory() as client:
                return await tool_round_trip(async_ask(client, stream=stream))

        seen, sent = asyncio.run(run())

    assert_charged_once_each(user, general_category, requests=2, seen=seen)
    if upstream is not None:  # the tool call and its result went upstream as the client sent them
        body = upstream.last_request.body
        assert body["messages"][-2:] == sent[-2:]
        assert body["tools"] == [CHAT_WEATHER_TOOL]


def test_a_required_tool_choice_is_a_tool_call(sdk, user, general_category):
    answer = sdk.chat.completions.create(
        model=MODEL, messages=QUESTION, tools=[CHAT_WEATHER_TOOL], tool_choice="required"
    )

    reply = from_completion(answer)
    assert reply.finish_reason == "tool_calls"
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather"
    assert isinstance(json.loads(call["arguments"])["city"], str)
    assert_charged_once_each(user, general_category, requests=1, seen=[reply.seen])


def test_parse_with_a_pydantic_response_format_returns_the_object(sdk, upstream, user, general_category):
    completion = sdk.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": ASK_CITY}], response_format=City
    )

    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop"
    assert isinstance(message.parsed, City)
    assert City.model_validate_json(message.content) == message.parsed
    assert message.refusal is None
    assert_charged_once_each(user, general_category, requests=1, seen=[seen_chat(completion.usage)])
    if upstream is not None:
        response_format = upstream.last_request.body["response_format"]
        assert response_format["type"] == "json_schema"
        assert response_format["json_schema"]["name"] == "City"


def test_an_image_url_part_is_accepted(sdk, upstream, user, general_category):
    content = [
        {"type": "text", "text": "What colour is this picture?"},
        {"type": "image_url", "image_url": {"url": png_data_url(), "detail": "low"}},
    ]

    answer = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])

    reply = from_completion(answer)
    assert reply.finish_reason == "stop"
    assert isinstance(reply.content, str) and reply.content
    assert_charged_once_each(user, general_category, requests=1, seen=[reply.seen])
    if upstream is not None:  # the picture went upstream, not just its text
        assert upstream.last_request.body["messages"][-1] == {"role": "user", "content": content}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_logprobs_true_returns_logprobs(stream, sdk, user, general_category):
    params = {"model": MODEL, "messages": QUESTION, "logprobs": True, "top_logprobs": 2}
    if stream:
        chunks = list(
            sdk.chat.completions.create(**params, stream=True, stream_options={"include_usage": True})
        )
        (reply,) = from_chunks(chunks).values()
    else:
        reply = from_completion(sdk.chat.completions.create(**params))

    assert reply.content
    assert reply.logprobs, "logprobs=True: the answer's tokens with their log probabilities"
    assert "".join(token.token for token in reply.logprobs) == reply.content
    for token in reply.logprobs:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == 2
        assert all(top.logprob <= 0 for top in token.top_logprobs)
    assert_charged_once_each(user, general_category, requests=1, seen=[reply.seen])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_n_2_returns_two_choices_billed_as_two(stream, sdk, user, general_category):
    one = from_completion(sdk.chat.completions.create(model=MODEL, messages=QUESTION))
    if stream:
        chunks = list(
            sdk.chat.completions.create(
                model=MODEL, messages=QUESTION, n=2, stream=True, stream_options={"include_usage": True}
            )
        )
        choices, usage = from_chunks(chunks), chunks[-1].usage
    else:
        choices, usage = from_completion_choices(
            sdk.chat.completions.create(model=MODEL, messages=QUESTION, n=2)
        )

    assert sorted(choices) == [0, 1]
    for choice in choices.values():
        assert choice.finish_reason == "stop"
        assert choice.content == one.content  # a deterministic model: the same answer, twice
    # The prompt is read once; two answers are written, and both are paid for.
    assert usage.prompt_tokens == one.seen.prompt_tokens
    assert usage.completion_tokens == 2 * one.seen.completion_tokens
    assert_charged_once_each(user, general_category, requests=2, seen=[one.seen, seen_chat(usage)])
