"""Reads for /v1/: the category or catalogue model a request names, as the ORM would read it."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from chats.catalogue.errors import ModelNotDeployed
from chats.catalogue.models import CatalogueModel, Deployment
from chats.models import Category
from chats.v1.selectors import model_requested
from tests.helpers.catalogue import catalogue_model_make, category_make
from tests.helpers.orm import fields_of

pytestmark = pytest.mark.django_db


@override_settings(LLM_MODEL="house-model")
def test_a_category_by_slug_is_the_orms_active_category_with_its_model(general_category):
    category_make("retired", is_active=False)
    CatalogueModel.objects.filter(public_id="retired").update(is_active=False)

    with CaptureQueriesContext(connection) as captured:
        found = model_requested(name="general")
    assert fields_of(found.category) == fields_of(Category.objects.get(slug="general"))
    assert fields_of(found.served.model) == fields_of(CatalogueModel.objects.get(public_id="general"))
    assert found.served.routes[0].upstream_model == "house-model"  # a blank upstream name: LLM_MODEL
    assert len(captured.captured_queries) == 1
    assert model_requested(name="retired") is None
    assert model_requested(name="nowhere") is None
    assert model_requested(name="nul\x00") is None


def test_a_catalogue_model_by_id_is_served_by_its_deployments_in_order():
    model = catalogue_model_make("house-large", prompt_price=Decimal("0.0123"), upstream_model="second")
    Deployment.objects.create(model=model, upstream_model="first", priority=0)
    catalogue_model_make("retired-model", is_active=False)

    with CaptureQueriesContext(connection) as captured:
        found = model_requested(name="house-large")
    assert found.category is None
    assert fields_of(found.served.model) == fields_of(model)
    assert found.served.model.prompt_price == Decimal("0.0123")
    assert found.served.routes[0].upstream_model == "first"
    assert [route.upstream_model for route in found.served.routes] == ["first", "second"]
    assert len(captured.captured_queries) == 2  # the model, then its two deployments
    assert model_requested(name="retired-model") is None


def test_a_category_comes_before_a_model_of_the_same_name(general_category):
    catalogue_model_make("elsewhere")
    category_make("elsewhere-category", model_id="other", system_prompt="Category!")
    Category.objects.filter(slug="elsewhere-category").update(slug="elsewhere")

    found = model_requested(name="elsewhere")
    assert found.category.slug == "elsewhere"
    assert found.served.model.public_id == "other"


def test_a_model_with_no_deployment_cannot_be_served():
    CatalogueModel.objects.create(public_id="bare", name="Bare", prompt_price=1, completion_price=1)

    with pytest.raises(ModelNotDeployed):
        model_requested(name="bare")
