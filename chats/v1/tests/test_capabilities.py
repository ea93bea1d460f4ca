"""What the catalogue says a model cannot do is refused before anything is reserved: 400
``unsupported_parameter`` naming the parameter, in OpenAI's shape, and no upstream is asked."""

import openai
import pytest

from chats.models import UsageRecord
from tests.helpers.catalogue import catalogue_model_make
from wallets.models import Wallet

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}


@pytest.fixture
def plain(db):
    """A model that does none of it: no tools, no images, no JSON schema."""
    return catalogue_model_make(
        "plain", supports_tools=False, supports_images=False, supports_json_schema=False
    )


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [WEATHER]}, "tools"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}, IMAGE]}]}, "messages"),
        ({"response_format": SCHEMA}, "response_format"),
    ],
)
def test_what_the_model_cannot_do_is_400_naming_the_parameter(
    client, plain, openai_settings, user, extra, param
):
    body = {"model": "plain", "messages": [{"role": "user", "content": "Hi"}], **extra}

    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**body)

    error = refused.value.body
    assert (error["code"], error["param"]) == ("unsupported_parameter", param)
    assert openai_settings.requests == []  # no upstream was asked
    assert not UsageRecord.objects.exists()
    assert Wallet.objects.get(user=user).held == 0


def test_a_model_that_can_is_asked_as_usual(client, openai_settings):
    catalogue_model_make("able")

    reply = client.chat.completions.create(
        model="able", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER]
    )

    assert reply.choices[0].finish_reason in {"tool_calls", "stop"}
    assert openai_settings.last_request.body["tools"] == [WEATHER]
