"""Fixtures for the ``/v1/`` tests: a personal key, and the official ``openai`` client holding it.

``client`` is that ``openai.OpenAI`` client (against Parley under uvicorn, the fake upstream
behind it), not Django's test client.
"""

import openai
import pytest


@pytest.fixture
def key(user):
    from accounts.services import api_key_create

    api_key, secret = api_key_create(user=user, name="laptop script")
    return api_key, secret


@pytest.fixture
def client(live_asgi_url, key, openai_settings, general_category):
    with openai.OpenAI(base_url=f"{live_asgi_url}/v1", api_key=key[1], max_retries=0) as client:
        yield client
