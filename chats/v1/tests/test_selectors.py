"""Reads for /v1/: the category a model names, as the ORM would read it."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from chats.models import Category
from chats.v1.selectors import model_category
from tests.helpers.orm import fields_of


def test_category_active_is_the_orms_active_category_by_slug(general_category):
    Category.objects.create(
        slug="retired", name="Retired", prompt_price=1, completion_price=1, is_active=False
    )

    with CaptureQueriesContext(connection) as captured:
        found = model_category(slug="general")
    assert fields_of(found) == fields_of(Category.objects.get(slug="general"))
    assert len(captured.captured_queries) == 1
    assert model_category(slug="retired") is None
    assert model_category(slug="nowhere") is None
