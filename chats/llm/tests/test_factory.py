"""The factory: ``LLM_PROVIDER`` picks the provider, read on every call."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from chats.llm import EchoProvider, LLMStream, OpenAIProvider, chunk_text, get_provider

PROMPT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello"},
]


async def collect(stream: LLMStream) -> list[str]:
    return [chunk_text(chunk) async for chunk in stream]


def test_factory_defaults_to_echo():
    assert isinstance(get_provider(), EchoProvider)


def test_factory_follows_the_setting_on_every_call():
    with override_settings(LLM_PROVIDER="openai", OPENAI_API_KEY="k"):
        assert isinstance(get_provider(), OpenAIProvider)
    assert isinstance(get_provider(), EchoProvider)


def test_factory_rejects_an_unknown_provider():
    with override_settings(LLM_PROVIDER="skynet"), pytest.raises(ImproperlyConfigured, match="skynet"):
        get_provider()


async def test_factory_openai_provider_streams_from_the_fake(openai_settings):
    openai_settings.configure(reply="via factory")

    stream = await get_provider().stream(messages=PROMPT, model="m", max_tokens=5)

    assert "".join(await collect(stream)) == "via factory"
