"""An API key limited to some models: any other is 403 ``model_not_allowed``, in OpenAI's shape."""

import openai
import pytest

from accounts.services import api_key_create
from chats.models import UsageRecord
from tests.helpers.catalogue import category_make
from wallets.models import Wallet

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limited(live_asgi_url, user, openai_settings, general_category):
    """A key for the ``house`` model only, and the official client holding it."""
    category_make("house", prompt_price=1, completion_price=1, name="House")
    _, secret = api_key_create(user=user, name="house only", models=["house"])
    with openai.OpenAI(base_url=f"{live_asgi_url}/v1", api_key=secret, max_retries=0) as client:
        yield client


def test_a_key_limited_to_a_model_may_use_it(limited):
    reply = limited.chat.completions.create(model="house", messages=[{"role": "user", "content": "Hi"}])

    assert reply.choices[0].message.content


@pytest.mark.parametrize("call", ["chat", "embeddings"])
def test_another_model_is_403_model_not_allowed_and_nothing_is_reserved(limited, user, call):
    with pytest.raises(openai.PermissionDeniedError) as refused:
        if call == "chat":
            limited.chat.completions.create(model="general", messages=[{"role": "user", "content": "Hi"}])
        else:
            limited.embeddings.create(model="general", input="Hi")

    assert refused.value.status_code == 403
    error = refused.value.body
    assert (error["code"], error["type"]) == ("model_not_allowed", "invalid_request_error")
    assert "general" in error["message"]
    assert not UsageRecord.objects.exists()
    assert Wallet.objects.get(user=user).held == 0


def test_an_unlimited_key_may_use_every_model(client):
    reply = client.chat.completions.create(model="general", messages=[{"role": "user", "content": "Hi"}])

    assert reply.choices[0].message.content


def test_the_keys_api_takes_and_shows_the_models_a_key_may_use(auth_client):
    created = auth_client.post("/api/keys/", {"name": "bot", "models": ["house", "house"]}, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["models"] == ["house"]  # once each
    listed = auth_client.get("/api/keys/").json()
    assert (
        listed["results"][0]["models"] == ["house"]
        if "results" in listed
        else listed[0]["models"] == ["house"]
    )
    assert auth_client.post("/api/keys/", {"name": "x", "models": "house"}, format="json").status_code == 400
