"""The catalogue's reads, and a chat reply priced by its category's model."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from model_bakery import baker

from chats.catalogue.errors import ModelNotDeployed
from chats.catalogue.models import CatalogueModel, Deployment, Provider
from chats.catalogue.selectors import catalogue_read, deployments_all, model_served, models_active
from chats.llm import Usage
from chats.models import ChatSession, Message, UsageRecord
from chats.replies.services import reply_begin, reply_finish
from tests.helpers.catalogue import catalogue_model_make, category_make
from tests.helpers.orm import fields_of
from wallets.models import LedgerEntry

pytestmark = pytest.mark.django_db


@override_settings(LLM_MODEL="house-default")
def test_a_model_on_one_default_deployment_is_served_in_one_statement():
    model = catalogue_model_make("m", upstream_model="")

    with CaptureQueriesContext(connection) as captured:
        served = model_served(model_id=model.pk)

    assert fields_of(served.model) == fields_of(CatalogueModel.objects.get(pk=model.pk))
    assert served.routes[0].upstream_model == "house-default"  # blank: LLM_MODEL
    assert [(r.deployment, r.provider) for r in served.routes] == [("default/house-default", None)]
    assert len(captured.captured_queries) == 1
    with pytest.raises(ModelNotDeployed):
        model_served(model_id=model.pk + 1000)


def test_a_model_with_several_deployments_reads_them_in_a_second_statement_in_the_order_to_try():
    model = catalogue_model_make("m", upstream_model="first")
    spare = Provider.objects.create(name="spare", base_url="http://spare:8000/v1", api_key_env="SPARE_KEY")
    off = Provider.objects.create(name="off", base_url="http://off:8000/v1", is_active=False)
    Deployment.objects.create(model=model, provider=spare, upstream_model="later", priority=5)
    Deployment.objects.create(model=model, provider=off, upstream_model="never", priority=2)

    with CaptureQueriesContext(connection) as captured:
        served = model_served(model_id=model.pk)

    assert len(captured.captured_queries) == 2
    assert [r.deployment for r in served.routes] == ["default/first", "spare/later"]  # "off" is off
    assert served.routes[1].provider.base_url == "http://spare:8000/v1"
    assert served.routes[1].provider.api_key_env == "SPARE_KEY"


def test_listings_read_a_fixed_number_of_queries(django_assert_max_num_queries):
    spare = Provider.objects.create(name="spare", base_url="http://spare:8000/v1")
    for n in range(6):
        model = catalogue_model_make(f"m{n}", is_active=n % 2 == 0)
        Deployment.objects.create(model=model, provider=spare, upstream_model=f"u{n}", priority=2)

    with django_assert_max_num_queries(3):
        providers, models = catalogue_read()
        deployments = [
            (d.model.public_id, d.provider and d.provider.name) for m in models for d in m.deployments.all()
        ]
    with django_assert_max_num_queries(1):
        everywhere = [(d.model.public_id, d.provider and d.provider.name) for d in deployments_all()]

    assert [p.name for p in providers] == ["spare"]
    assert sorted(deployments, key=str) == sorted(everywhere, key=str)
    assert [m.public_id for m in models_active()] == ["general", "m0", "m2", "m4"]
    assert str(CatalogueModel.objects.get(public_id="general")) == "general (General)"
    assert str(CatalogueModel.objects.get(public_id="m0")) == "m0"
    assert str(spare) == "spare"


def test_a_provider_reads_its_key_from_the_environment_only(monkeypatch):
    provider = Provider(name="p", api_key_env="P_KEY")
    assert (provider.api_key(), provider.api_key_is_set) == ("", False)
    monkeypatch.setenv("P_KEY", "secret")
    assert (provider.api_key(), provider.api_key_is_set) == ("secret", True)
    assert Provider(name="q").api_key() == ""


@override_settings(MEDIA_PART_TOKENS=1234)
def test_a_models_media_bound_defaults_to_the_setting():
    assert CatalogueModel(media_part_tokens=None).media_part_bound == 1234
    assert CatalogueModel(media_part_tokens=7).media_part_bound == 7


def test_a_chat_reply_is_priced_by_its_categorys_model_and_names_it(user):
    category = category_make(
        "coding", model_id="coder", upstream_model="code-7b", prompt_price="0.5", completion_price=10
    )
    CatalogueModel.objects.filter(pk=category.model_id).update(max_output_tokens=100)
    session = baker.make(ChatSession, user=user, category=category, title="Loops")

    plan = reply_begin(user=user, session_id=session.id, content="A loop?")
    result = reply_finish(
        plan=plan, content="for", usage=Usage(prompt_tokens=1000, completion_tokens=100), status="complete"
    )

    assert (plan.routes[0].upstream_model, plan.max_tokens, plan.catalogue_model.public_id) == (
        "code-7b",
        100,
        "coder",
    )
    assert result.cost == 2  # ceil((1000 * 0.5 + 100 * 10) / 1000)
    record = UsageRecord.objects.get()
    assert (record.model_id, record.category_id, record.cost) == (category.model_id, category.pk, 2)
    charge = LedgerEntry.objects.get(kind="charge")
    assert charge.description == f'Reply {plan.assistant_message_id} in "Loops" (Coding, model coder)'


def test_a_category_whose_model_has_no_deployment_refuses_the_reply_and_stores_nothing(user):
    category = category_make("coding")
    Deployment.objects.filter(model_id=category.model_id).delete()
    session = baker.make(ChatSession, user=user, category=category)

    with pytest.raises(ModelNotDeployed) as refused:
        reply_begin(user=user, session_id=session.id, content="hi")

    assert (refused.value.status_code, refused.value.details) == (503, {"model": "coding"})
    assert not Message.objects.exists()


def test_the_stale_sweep_records_the_categorys_model(user, general_category):
    from datetime import timedelta

    from django.utils import timezone

    from chats.replies.services import replies_close_stale

    session = baker.make(ChatSession, user=user, category=general_category)
    plan = reply_begin(user=user, session_id=session.id, content="hi")
    Message.objects.filter(pk=plan.assistant_message_id).update(
        lease_expires_at=timezone.now() - timedelta(1)
    )

    assert replies_close_stale() == 1
    assert UsageRecord.objects.get().model_id == general_category.model_id
    assert CatalogueModel.objects.get(pk=general_category.model_id).prompt_price == Decimal("1")
