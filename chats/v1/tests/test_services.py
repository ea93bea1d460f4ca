"""A /v1/ request's reservation and settlement: a fixed handful of statements, the key's cap."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chats.v1.services import completion_begin
from chats.v1.wire import completion_request

pytestmark = pytest.mark.django_db


def test_a_v1_request_is_reserved_in_a_fixed_handful_of_statements(
    user, general_category, django_assert_num_queries
):
    """Before the request leaves for the upstream: the model, then one transaction (the usage
    record, the wallet's conditional UPDATE, the hold). Savepoints are not statements we send."""
    from accounts.services import api_key_create
    from chats.models import UsageRecord

    api_key, _ = api_key_create(user=user, name="script")
    for message in range(2):  # the history's length changes nothing
        messages = [{"role": "user", "content": f"question {n}"} for n in range(message * 20 + 1)]
        with CaptureQueriesContext(connection) as captured:
            completion_begin(
                user=user,
                api_key=api_key,
                request=completion_request({"model": "general", "messages": messages}),
            )
        statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
        assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == [
            *(["SELECT"] if message == 0 else []),  # the model: then from the process's cache
            "INSERT",
            "UPDATE",
            "INSERT",
        ]
    assert UsageRecord.objects.filter(status="pending").count() == 2


def test_a_v1_charge_names_the_request_the_key_and_the_model(user, general_category):
    from accounts.services import api_key_create
    from chats.llm import Usage
    from chats.v1.services import completion_finish
    from wallets.models import LedgerEntry

    api_key, _ = api_key_create(user=user, name="nightly report")
    request = completion_request({"model": "general", "messages": [{"role": "user", "content": "hi"}]})
    plan = completion_begin(user=user, api_key=api_key, request=request)
    completion_finish(
        plan=plan, content="ok", usage=Usage(prompt_tokens=9, completion_tokens=3), status="complete"
    )

    charge = LedgerEntry.objects.get(wallet__user=user, kind=LedgerEntry.Kind.CHARGE)
    assert charge.description == (
        f"API request {plan.record_id} with key {api_key.prefix} (nightly report), model general"
    )
