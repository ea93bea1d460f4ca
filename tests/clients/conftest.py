"""Clients nobody here wrote, against Parley served for real (uvicorn on loopback).

Every test that takes ``backend`` runs twice: against the offline ``echo`` provider, and against
the ``openai`` provider pointed at the fake upstream (``tests/fakes/openai_upstream.py``). Both
play along as a model would: they call a tool when ``tool_choice`` requires or names one or when
the last user message names an offered tool, answer after a tool result with that result in the
text, answer JSON that satisfies ``response_format``'s schema, honour ``n`` and ``logprobs``, and
serve embeddings.

Each test asserts what the client returned and then the wallet (:mod:`tests.clients.books`).
Clients whose pins clash with the project's run in a virtualenv of their own
(:mod:`tests.clients.venvs`).
"""

import openai
import pytest
from django.test import override_settings

# The fake upstream and the settings that point the ``openai`` provider at it (chats' fixtures).
from chats.conftest import fake_openai, fake_openai_server, openai_settings  # noqa: F401

BACKENDS = ["echo", "upstream"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Which model answers behind Parley: ``echo`` (offline) or ``upstream`` (the fake OpenAI)."""
    if request.param == "upstream":
        request.getfixturevalue("openai_settings")
        yield request.param
    else:
        with override_settings(LLM_PROVIDER="echo"):
            yield request.param


@pytest.fixture
def key(user):
    from accounts.services import api_key_create

    return api_key_create(user=user, name="client tests")


@pytest.fixture
def secret(key) -> str:
    return key[1]


@pytest.fixture
def base_url(live_asgi_url, backend, general_category) -> str:
    """Parley's ``/v1/`` root, the provider chosen, the ``general`` category its one model."""
    return f"{live_asgi_url}/v1"


@pytest.fixture
def sdk(base_url, secret):
    """The official synchronous ``openai`` client, no retries (a retry would be a second charge)."""
    with openai.OpenAI(base_url=base_url, api_key=secret, max_retries=0, timeout=30) as client:
        yield client


@pytest.fixture
def async_sdk_factory(base_url, secret):
    """Makes an ``openai.AsyncOpenAI`` inside the event loop that will use it."""

    def make() -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=base_url, api_key=secret, max_retries=0, timeout=30)

    return make
