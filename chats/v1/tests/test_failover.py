"""A model on two providers, each a real fake upstream on loopback, through Parley under uvicorn.

The official ``openai`` client asks for the model; the first deployment fails before its first
token and the second serves it: the client sees no error, is charged once at the model's price,
and the usage record, the chat reply and the metrics name the deployment that served.
"""

import openai
import pytest
from prometheus_client import REGISTRY

from chats.catalogue.models import CatalogueModel, Deployment, Provider
from chats.models import Message, UsageRecord
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers.catalogue import category_make
from tests.helpers.money import assert_books_balance
from tests.helpers.streams import start_reply
from wallets.models import Hold, Wallet

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def upstreams():
    with FakeOpenAI() as main, FakeOpenAI() as spare:
        yield main, spare


@pytest.fixture
def house(upstreams, monkeypatch):
    """``house``: prices 1 and 2 credits per 1,000 tokens, on ``main`` (priority 1) then ``spare``."""
    main, spare = upstreams
    monkeypatch.setenv("MAIN_KEY", "main-secret")
    providers = [
        Provider.objects.create(name=name, base_url=fake.base_url, api_key_env=env, retries=0, timeout=5)
        for name, fake, env in (("main", main, "MAIN_KEY"), ("spare", spare, ""))
    ]
    model = CatalogueModel.objects.create(
        public_id="house", name="House", prompt_price=1000, completion_price=2000
    )
    for priority, provider in enumerate(providers, start=1):
        Deployment.objects.create(
            model=model, provider=provider, upstream_model=f"{provider.name}-llm", priority=priority
        )
    return model


@pytest.fixture
def headers(user):
    from rest_framework_simplejwt.tokens import RefreshToken

    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_deployment_failing_before_the_first_token_is_replaced_by_the_next_and_charged_once(
    client, house, upstreams, user
):
    main, spare = upstreams
    main.configure(fail_status=503)
    spare.configure(reply="served by the spare")
    failovers = counted("parley_failovers_total", deployment="main/main-llm")
    served = counted("parley_replies_total", model="house", deployment="spare/spare-llm", outcome="complete")

    stream = client.chat.completions.create(
        model="house",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "served by the spare"
    assert main.last_request.headers["authorization"] == "Bearer main-secret"  # the key named by its env var
    assert main.last_request.body["model"] == "main-llm" and spare.last_request.body["model"] == "spare-llm"
    record = UsageRecord.objects.get()
    assert (record.status, record.deployment, record.model_id) == ("complete", "spare/spare-llm", house.pk)
    usage = chunks[-1].usage
    assert (
        record.cost == usage.prompt_tokens * 1 + usage.completion_tokens * 2 == usage.cost
    )  # the model's price
    assert Wallet.objects.get(user=user).balance == 100 - record.cost  # charged once
    assert not Hold.objects.filter(status=Hold.Status.OPEN).exists()
    assert counted("parley_failovers_total", deployment="main/main-llm") == failovers + 1
    assert (
        counted("parley_replies_total", model="house", deployment="spare/spare-llm", outcome="complete")
        == served + 1
    )
    assert_books_balance(user)


def test_a_model_that_fails_on_every_deployment_is_free(client, house, upstreams, user):
    main, spare = upstreams
    main.configure(fail_status=500)
    spare.configure(fail_status=502)

    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="house", messages=[{"role": "user", "content": "Hi"}])

    assert failed.value.status_code == 502
    assert len(main.requests) == len(spare.requests) == 1
    record = UsageRecord.objects.get()
    assert (record.status, record.cost, record.deployment) == ("failed", 0, "")
    assert Wallet.objects.get(user=user).balance == 100
    assert not Hold.objects.filter(status=Hold.Status.OPEN).exists()
    assert_books_balance(user)


def test_every_deployment_rate_limited_is_429_with_the_shortest_retry_after(client, house, upstreams):
    main, spare = upstreams
    main.configure(fail_status=429, retry_after_ms=9000)
    spare.configure(fail_status=429, retry_after_ms=3000)

    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="house", messages=[{"role": "user", "content": "Hi"}])

    assert limited.value.response.headers["retry-after"] == "3"
    assert limited.value.body["code"] == "rate_limit_exceeded"


def test_a_chat_reply_in_a_category_of_the_model_fails_over_and_names_its_deployment(
    live_asgi_url, openai_settings, house, upstreams, user, headers
):
    from model_bakery import baker

    from chats.models import ChatSession

    main, spare = upstreams
    main.configure(fail_status=500)
    spare.configure(reply="spare reply")
    category = category_make("househelp")
    category.model = house
    category.save()
    session = baker.make(ChatSession, user=user, category=category)

    events = start_reply(live_asgi_url, session, headers, deltas=99)

    assert events[-1]["event"] == "done", events[-1]
    reply = Message.objects.get(session=session, role="assistant")
    assert (reply.status, reply.content, reply.deployment) == ("complete", "spare reply", "spare/spare-llm")
    assert UsageRecord.objects.get(pk=reply.pk).deployment == "spare/spare-llm"
    assert_books_balance(user)


def test_a_deployment_cut_after_its_first_token_is_not_failed_over_and_is_charged_what_it_produced(
    client, house, upstreams, user
):
    main, spare = upstreams
    main.configure(reply="one two three four five six", fail_after_chunks=3)

    stream = client.chat.completions.create(
        model="house",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.extend(choice.delta.content or "" for choice in chunk.choices)

    assert "".join(received) == "one two three"
    assert spare.requests == []  # after the first token there is no failover
    record = UsageRecord.objects.get()
    assert (record.status, record.deployment) == ("incomplete", "main/main-llm")
    assert record.completion_tokens > 0
    assert record.cost == record.prompt_tokens * 1 + record.completion_tokens * 2  # what it produced
    assert Wallet.objects.get(user=user).balance == 100 - record.cost
    assert not Hold.objects.filter(status=Hold.Status.OPEN).exists()
    assert_books_balance(user)
