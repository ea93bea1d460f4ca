"""The OpenAI Agents SDK: an ``Agent`` with a ``@function_tool``, its model named by a string and
served by the SDK's default provider (the Responses API); the runner runs the tool and its final
output reports what the tool said."""

import asyncio

import openai
import pytest
from agents import Agent, OpenAIProvider, RunConfig, Runner, function_tool, set_tracing_disabled

from tests.clients import shared
from tests.clients.books import assert_charged_once_each
from tests.clients.shared import ASK_WEATHER, MARKER, MODEL

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("streamed", [False, True], ids=["run_sync", "run_streamed"])
def test_an_agent_runs_a_function_tool_and_answers_with_its_result(
    streamed, base_url, secret, user, general_category
):
    set_tracing_disabled(True)  # traces would go to api.openai.com
    cities: list[str] = []
    paths: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        cities.append(city)
        return shared.get_weather(city)

    async def note_path(request) -> None:
        paths.append(request.url.path)

    client = openai.AsyncOpenAI(
        base_url=base_url,
        api_key=secret,
        max_retries=0,
        timeout=30,
        http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [note_path]}),
    )
    agent = Agent(
        name="Weather",
        instructions="Answer questions about the weather with the get_weather tool.",
        model=MODEL,
        tools=[get_weather],
    )
    config = RunConfig(model_provider=OpenAIProvider(openai_client=client))

    if streamed:

        async def run():
            result = Runner.run_streamed(agent, ASK_WEATHER, max_turns=4, run_config=config)
            events = [event.type async for event in result.stream_events()]
            assert "raw_response_event" in events
            return result

        result = asyncio.run(run())
    else:
        result = Runner.run_sync(agent, ASK_WEATHER, max_turns=4, run_config=config)

    assert paths == ["/v1/responses", "/v1/responses"]  # the tool call, then the answer
    assert len(cities) == 1 and isinstance(cities[0], str)
    assert isinstance(result.final_output, str) and MARKER in result.final_output
    usage = result.context_wrapper.usage
    assert usage.requests == 2
    records = assert_charged_once_each(user, general_category, requests=2)
    assert usage.input_tokens == sum(record.prompt_tokens for record in records)
    assert usage.output_tokens == sum(record.completion_tokens for record in records)
