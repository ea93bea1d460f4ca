"""release_stale_holds on /v1/ requests: those whose lease ran out are closed, live ones left alone."""

from datetime import timedelta
from functools import partial

import pytest
from django.utils import timezone

from chats.v1.services import completion_begin
from tests.helpers.money import age_hold
from tests.helpers.money import release_stale_holds as run
from wallets.models import Hold

pytestmark = pytest.mark.django_db


def test_a_v1_request_whose_lease_ran_out_is_closed_and_a_live_one_left_alone(user, general_category):
    from accounts.services import api_key_create
    from chats.models import UsageRecord
    from chats.v1.wire import completion_request

    api_key, _ = api_key_create(user=user, name="script")
    begin = partial(
        completion_begin,
        user=user,
        api_key=api_key,
        request=completion_request({"model": "general", "messages": [{"role": "user", "content": "hi"}]}),
    )
    dead, live = begin(), begin()
    UsageRecord.objects.filter(pk=dead.record_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    age_hold(Hold.objects.get(pk=live.hold_id), minutes=120)

    out = run("--minutes", "0")

    assert "Closed 1 stale reply as failed." in out
    assert "Released 0 stale hold(s)." in out
    assert UsageRecord.objects.get(pk=dead.record_id).status == UsageRecord.Status.FAILED
    assert Hold.objects.get(pk=dead.hold_id).status == Hold.Status.RELEASED
    assert UsageRecord.objects.get(pk=live.record_id).status == UsageRecord.Status.PENDING
    assert Hold.objects.get(pk=live.hold_id).status == Hold.Status.OPEN
