"""What a reply costs: whole credits, rounded up once, at its catalogue model's prices."""

import pytest

from chats.models import Category
from chats.replies.pricing import reply_cost

pytestmark = pytest.mark.django_db


@pytest.fixture
def category(cheap_category):
    return cheap_category


@pytest.mark.parametrize(
    ("prompt_tokens", "completion_tokens", "expected"),
    [(0, 0, 0), (1, 0, 1), (2000, 0, 1), (2001, 0, 2), (0, 2000, 3), (1000, 1000, 2), (1001, 1000, 3)],
)
def test_reply_cost_rounds_up_to_whole_credits(category, prompt_tokens, completion_tokens, expected):
    # 0.5 and 1.5 credits per 1,000 tokens: exact decimals, rounded up once at the end.
    assert (
        reply_cost(model=category.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        == expected
    )


def test_reply_cost_of_general_matches_the_spec_formula():
    general = Category.objects.get(slug="general")
    # ceil((12 * 1 + 30 * 2) / 1000) = 1, at the prices of the general category's model
    assert reply_cost(model=general.model, prompt_tokens=12, completion_tokens=30) == 1
