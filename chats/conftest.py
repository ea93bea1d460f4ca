"""Fixtures for every chats test package: a real fake of the OpenAI API on loopback."""

import pytest
from django.test import override_settings

from tests.fakes.openai_upstream import FakeOpenAI


@pytest.fixture(scope="session")
def fake_openai_server():
    """One fake server for the whole run (starting it takes about a millisecond, but why repeat)."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(fake_openai_server):
    """The fake server with the default scenario and no recorded requests."""
    fake_openai_server.reset()
    yield fake_openai_server
    fake_openai_server.reset()


@pytest.fixture
def openai_settings(fake_openai):
    """Settings that send the ``openai`` provider to the fake, without retries; yields the fake."""
    with override_settings(
        LLM_PROVIDER="openai",
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="test",
        LLM_MAX_RETRIES=0,
    ):
        yield fake_openai


@pytest.fixture(autouse=True)
def _no_cooldowns_carried_over():
    """Without Redis, deployments' failure counts and cooldowns live in the process: each test
    starts with none, whatever the tests before it made fail."""
    from chats.llm import cooldown

    with cooldown._lock:
        cooldown._failures.clear()
        cooldown._cool_until.clear()
