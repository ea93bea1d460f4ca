"""Fixtures of the reply tests: a session (in the general category, unless a module's own
``category`` fixture says otherwise) and its owner's bearer header."""

from decimal import Decimal

import pytest
from model_bakery import baker
from rest_framework_simplejwt.tokens import RefreshToken

from chats.models import ChatSession
from tests.helpers.catalogue import category_make


@pytest.fixture
def cheap_category():
    """Prices with decimals and a system prompt: what the cost and prompt tests reason about."""
    return category_make(
        "cheap", system_prompt="Be terse.", prompt_price=Decimal("0.5"), completion_price=Decimal("1.5")
    )


@pytest.fixture
def category(general_category):
    return general_category


@pytest.fixture
def session(user, category):
    return baker.make(ChatSession, user=user, category=category)


@pytest.fixture
def headers(user):
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}
