"""The key's own monthly cap."""

import pytest

from accounts.services import api_key_create
from chats.models import UsageRecord
from chats.v1.services import completion_begin
from chats.v1.wire import completion_request
from wallets.errors import SpendCapReached

pytestmark = pytest.mark.django_db

HI = {"role": "user", "content": "hi"}


def test_an_api_keys_monthly_cap_counts_only_that_key(user, general_category):
    key, _ = api_key_create(user=user, name="capped")
    other, _ = api_key_create(user=user, name="free")
    begin = {"user": user, "request": completion_request({"model": "general", "messages": [HI]})}
    first = completion_begin(api_key=key, **begin)
    type(key).objects.filter(pk=key.pk).update(monthly_cap=first.held)  # capped at what it holds now
    key.refresh_from_db()

    with pytest.raises(SpendCapReached) as refused:
        completion_begin(api_key=key, **begin)
    assert refused.value.details == {
        "cap": first.held,
        "period": "month",
        "spent": first.held,
        "required": first.held,
    }
    completion_begin(api_key=other, **begin)  # the other key is not capped
    assert UsageRecord.objects.count() == 2
