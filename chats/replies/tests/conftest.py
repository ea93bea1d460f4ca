"""Fixtures of the reply tests: a priced category and a session in it."""

from decimal import Decimal

import pytest
from model_bakery import baker

from chats.models import Category, ChatSession


@pytest.fixture
def category():
    return baker.make(
        Category,
        slug="cheap",
        system_prompt="Be terse.",
        prompt_price=Decimal("0.5"),
        completion_price=Decimal("1.5"),
    )


@pytest.fixture
def session(user, category):
    return baker.make(ChatSession, user=user, category=category)
