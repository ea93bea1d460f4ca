"""The official ``openai`` SDK on ``/v1/responses``: text and a function tool, streamed and not."""

import json

import pytest

from tests.clients.books import assert_charged_once_each
from tests.clients.shared import (
    ASK_WEATHER,
    MARKER,
    MODEL,
    RESPONSES_WEATHER_TOOL,
    get_weather,
    seen_responses,
)

pytestmark = pytest.mark.django_db(transaction=True)


def completed(sdk, *, stream: bool, **params):
    """The finished ``Response``; for a stream, checked against the events that built it."""
    if not stream:
        response = sdk.responses.create(model=MODEL, **params)
        assert response.object == "response"
        return response
    events = list(sdk.responses.create(model=MODEL, stream=True, **params))
    types = [event.type for event in events]
    assert types[0] == "response.created", types
    assert types[-1] == "response.completed", types
    numbers = [event.sequence_number for event in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), numbers
    response = events[-1].response
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == response.output_text
    arguments = "".join(
        event.delta for event in events if event.type == "response.function_call_arguments.delta"
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert arguments == "".join(call.arguments for call in calls)
    done = [event.item for event in events if event.type == "response.output_item.done"]
    assert [item.type for item in done] == [item.type for item in response.output]
    return response


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_text_response(stream, sdk, user, general_category):
    response = completed(sdk, stream=stream, input="Say hello")

    assert response.status == "completed"
    assert response.model == MODEL
    assert response.output_text
    assert [item.type for item in response.output] == ["message"]
    assert response.output[0].role == "assistant"
    assert_charged_once_each(user, general_category, requests=1, seen=[seen_responses(response.usage)])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_function_tool_round_trip(stream, sdk, user, general_category):
    conversation = [{"role": "user", "content": ASK_WEATHER}]
    first = completed(sdk, stream=stream, input=conversation, tools=[RESPONSES_WEATHER_TOOL])

    assert first.status == "completed"
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id
    arguments = json.loads(call.arguments)
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)
    conversation += [item.model_dump(exclude_none=True) for item in first.output]
    conversation.append(
        {"type": "function_call_output", "call_id": call.call_id, "output": get_weather(**arguments)}
    )

    second = completed(sdk, stream=stream, input=conversation, tools=[RESPONSES_WEATHER_TOOL])

    assert second.status == "completed"
    assert not [item for item in second.output if item.type == "function_call"]
    assert MARKER in second.output_text
    assert_charged_once_each(
        user,
        general_category,
        requests=2,
        seen=[seen_responses(first.usage), seen_responses(second.usage)],
    )
