"""pydantic-ai: an ``Agent`` on ``OpenAIChatModel`` with a Pydantic ``output_type`` (its default mode:
a ``final_result`` tool the model must call) gets a model instance back."""

import openai
import pytest
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.clients.books import assert_charged_once_each
from tests.clients.shared import ASK_CITY, MODEL, City

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_agent_with_a_pydantic_output_type(base_url, secret, user, general_category):
    client = openai.AsyncOpenAI(base_url=base_url, api_key=secret, max_retries=0, timeout=30)
    agent = Agent(OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=client)), output_type=City)

    result = agent.run_sync(ASK_CITY)

    assert isinstance(result.output, City)
    usage = result.usage
    assert usage.requests == 1  # the model called the output tool right away: no retry needed
    records = assert_charged_once_each(user, general_category, requests=1)
    assert (usage.input_tokens, usage.output_tokens) == (
        records[0].prompt_tokens,
        records[0].completion_tokens,
    )
