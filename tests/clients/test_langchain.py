"""LangChain's ``ChatOpenAI``: ``with_structured_output`` (its default, a json_schema
response_format) and ``bind_tools`` with a tool round trip."""

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.clients import shared
from tests.clients.books import Seen, assert_charged_once_each
from tests.clients.shared import ASK_CITY, ASK_WEATHER, MARKER, MODEL, City

pytestmark = pytest.mark.django_db(transaction=True)


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return shared.get_weather(city)


@pytest.fixture
def chat(base_url, secret):
    return ChatOpenAI(
        base_url=base_url, api_key=secret, model=MODEL, max_retries=0, timeout=30, stream_usage=True
    )


def seen(message) -> Seen:
    usage = message.usage_metadata
    assert usage is not None
    return Seen(usage["input_tokens"], usage["output_tokens"])


def test_with_structured_output_returns_the_model(chat, user, general_category):
    result = chat.with_structured_output(City, include_raw=True).invoke(ASK_CITY)

    assert result["parsing_error"] is None
    assert isinstance(result["parsed"], City)
    assert_charged_once_each(user, general_category, requests=1, seen=[seen(result["raw"])])


def streamed(runnable, conversation):
    """The chunks of ``runnable.stream`` added up into one message, as LangChain does."""
    message = None
    for chunk in runnable.stream(conversation):
        message = chunk if message is None else message + chunk
    assert message is not None
    return message


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_bind_tools_then_the_tool_result(stream, chat, user, general_category):
    with_tools = chat.bind_tools([get_weather])
    ask = (lambda conversation: streamed(with_tools, conversation)) if stream else with_tools.invoke
    conversation = [HumanMessage(ASK_WEATHER)]

    first = ask(conversation)
    (call,) = first.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
    conversation += [first, get_weather.invoke(call)]  # a ToolMessage with the call's id
    second = ask(conversation)

    assert not second.tool_calls
    assert MARKER in second.content
    assert_charged_once_each(user, general_category, requests=2, seen=[seen(first), seen(second)])
