"""``/v1/`` with the model catalogue: a request names a catalogue model by its id (or a category by
its slug), is priced by that model, sent under its first deployment's upstream name, and listed."""

from decimal import Decimal

import openai
import pytest

from chats.catalogue.models import CatalogueModel, Deployment
from chats.models import UsageRecord
from tests.helpers.catalogue import catalogue_model_make, category_make
from tests.helpers.money import assert_books_balance, expected_cost
from wallets.models import LedgerEntry, Wallet

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def house():
    """A model of its own, priced apart from any category, deployed twice (the first one serves)."""
    model = catalogue_model_make(
        "house-large",
        name="House large",
        prompt_price=Decimal("0.5"),
        completion_price=Decimal("10"),
        upstream_model="large-2024",
        drop_params=["seed"],
        max_output_tokens=64,
    )
    Deployment.objects.create(model=model, upstream_model="large-2025", priority=0)
    return model


def test_models_lists_the_categories_then_the_catalogues_models_with_their_prices(client, house):
    catalogue_model_make("retired", is_active=False)
    category_make("coding", model_id="coder", prompt_price="0.25", completion_price=3)

    listed = {model.id: model.pricing for model in client.models.list().data}

    assert list(listed) == ["coding", "general", "coder", "house-large"]  # "general" is listed once
    assert listed["coding"] == {"unit": "credits per 1,000 tokens", "prompt": "0.25", "completion": "3"}
    assert listed["house-large"] == {"unit": "credits per 1,000 tokens", "prompt": "0.5", "completion": "10"}
    assert client.models.retrieve("house-large").pricing["completion"] == "10"
    assert client.models.retrieve("coding").id == "coding"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("retired")


def test_a_catalogue_model_is_priced_by_itself_and_sent_to_its_first_deployment(
    client, key, user, openai_settings, house
):
    openai_settings.configure(reply="Hi", prompt_tokens=100, completion_tokens=20)

    answer = client.chat.completions.create(model="house-large", messages=QUESTION, seed=7, temperature=0.5)

    assert answer.model == "house-large"
    sent = openai_settings.last_request.body
    assert sent["model"] == "large-2025"  # priority 0 before 1
    assert sent["messages"] == QUESTION  # no category: no system prompt
    assert "seed" not in sent and sent["temperature"] == 0.5  # its drop_params are not forwarded
    assert sent["max_tokens"] == 64  # its max_output_tokens
    cost = expected_cost(100, 20, Decimal("0.5"), Decimal("10"))
    record = UsageRecord.objects.get()
    assert (record.model_id, record.category_id, record.cost) == (house.pk, None, cost)
    assert Wallet.objects.get(user=user).balance == 100 - cost
    charge = LedgerEntry.objects.get(kind="charge")
    assert (
        charge.description
        == f"API request {record.id} with key {key[0].prefix} (laptop script), model house-large"
    )
    assert_books_balance(user)


def test_a_category_is_priced_by_its_model_and_named_with_it(client, key, user, openai_settings):
    coding = category_make(
        "coding", model_id="coder", upstream_model="code-7b", system_prompt="Code.", completion_price=4
    )
    openai_settings.configure(reply="Hi", prompt_tokens=10, completion_tokens=500)

    client.chat.completions.create(model="coding", messages=QUESTION)

    sent = openai_settings.last_request.body
    assert (sent["model"], sent["messages"][0]) == ("code-7b", {"role": "system", "content": "Code."})
    record = UsageRecord.objects.get()
    assert (record.category_id, record.model_id, record.cost) == (coding.pk, coding.model_id, 3)
    assert LedgerEntry.objects.get(kind="charge").description.endswith(", model coder (category coding)")


def test_unknown_or_undeployed_models_are_refused_before_anything_is_reserved(client, user):
    CatalogueModel.objects.create(public_id="bare", name="Bare", prompt_price=1, completion_price=1)

    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nowhere", messages=QUESTION)
    with pytest.raises(openai.InternalServerError) as bare:
        client.chat.completions.create(model="bare", messages=QUESTION)

    assert missing.value.code == "model_not_found"
    assert (bare.value.status_code, bare.value.code) == (503, "upstream_error")  # llm_unavailable
    assert not UsageRecord.objects.exists()
    assert Wallet.objects.get(user=user).held == 0


def test_embeddings_of_a_catalogue_model_are_priced_by_it(client, user, openai_settings, house):
    answer = client.embeddings.create(model="house-large", input="x" * 2000)

    record = UsageRecord.objects.get()
    assert record.model_id == house.pk
    assert answer.usage.prompt_tokens == record.prompt_tokens
    assert record.cost == expected_cost(record.prompt_tokens, 0, Decimal("0.5"), 0)
    assert openai_settings.last_request.body["model"] == "large-2025"
