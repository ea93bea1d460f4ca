"""Concurrent streams on one wallet while the first deployment fails about half of them (PostgreSQL).

A model on two providers, each a real fake upstream on loopback: ``flaky`` (priority 1) answers
503 before the first token to a seeded half of its requests, ``steady`` (priority 2) serves the
rest. Twenty streams at once through Parley under uvicorn, with the official ``openai`` client and
one API key: every one succeeds, the failed ones having gone over to ``steady``; each usage record
names the deployment that served it and costs its tokens at the model's price; the wallet is
charged exactly the records' costs, no hold is left open and ``audit_wallets`` is clean.
"""

import random
from uuid import uuid4

import openai
import pytest
from prometheus_client import REGISTRY

from chats.catalogue.models import CatalogueModel, Deployment, Provider
from chats.models import UsageRecord
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers.concurrency import in_parallel, requires_postgres
from tests.helpers.money import assert_books_balance, expected_cost
from wallets.models import Hold, LedgerEntry, Wallet
from wallets.services import wallet_adjust

pytestmark = [pytest.mark.django_db(transaction=True), requires_postgres]

STREAMS = 20
SEED = 21
#: Credits per 1,000 tokens: high enough that the two deployments' replies cost differently.
PROMPT_PRICE, COMPLETION_PRICE = 30, 250
FLAKY_REPLY = " ".join(f"f{i}" for i in range(8))  # 8 completion tokens
STEADY_REPLY = " ".join(f"s{i}" for i in range(14))  # 14 completion tokens
QUESTION = [{"role": "user", "content": "Say something"}]


@pytest.fixture
def upstreams():
    with FakeOpenAI() as flaky, FakeOpenAI() as steady:
        flaky.configure(reply=FLAKY_REPLY, chunk_delay=0.02, fail_status=503, fail_ratio=0.5, fail_seed=SEED)
        steady.configure(reply=STEADY_REPLY, chunk_delay=0.02)
        yield flaky, steady


@pytest.fixture
def house(upstreams, settings):
    """``house`` on ``flaky`` (priority 1) then ``steady``, under names no other test's cooldown knows."""
    settings.MAX_CONCURRENT_REPLIES = STREAMS  # the failover, not the concurrency limit, is under test
    settings.COOLDOWN_FAILURES = 10 * STREAMS  # every request tries ``flaky`` first: no cooldown here
    suffix = uuid4().hex[:8]
    model = CatalogueModel.objects.create(
        public_id="house",
        name="House",
        prompt_price=PROMPT_PRICE,
        completion_price=COMPLETION_PRICE,
        max_output_tokens=64,
    )
    for priority, (name, fake) in enumerate(zip(("flaky", "steady"), upstreams, strict=True), start=1):
        provider = Provider.objects.create(name=name, base_url=fake.base_url, retries=0, timeout=10)
        Deployment.objects.create(
            model=model, provider=provider, upstream_model=f"{name}-{suffix}", priority=priority
        )
    return model


def failovers(deployment: str) -> float:
    return REGISTRY.get_sample_value("parley_failovers_total", {"deployment": deployment}) or 0.0


def test_twenty_concurrent_streams_fail_over_and_are_each_charged_once_at_the_models_price(
    live_asgi_url, key, user, house, upstreams
):
    flaky, steady = upstreams
    flaky_name, steady_name = (f"{d.provider.name}/{d.upstream_model}" for d in house.deployments.all())
    wallet_adjust(user=user, amount=10_000, reason="room for every stream", actor=user)
    before = Wallet.objects.get(user=user).balance
    counted_before = failovers(flaky_name)
    draws = random.Random(SEED)
    expected_failures = sum(draws.random() < 0.5 for _ in range(STREAMS))  # the fake's seeded draws
    assert 0 < expected_failures < STREAMS

    def stream(_: int) -> tuple[str, openai.types.CompletionUsage]:
        with openai.OpenAI(base_url=f"{live_asgi_url}/v1", api_key=key[1], max_retries=0) as client:
            chunks = list(
                client.chat.completions.create(
                    model="house",
                    messages=QUESTION,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return text, chunks[-1].usage

    outcomes = in_parallel(stream, callers=STREAMS)

    failed = [o for o in outcomes if not isinstance(o, tuple)]
    assert not failed, failed  # every request succeeds: a failure before the first token goes over
    texts = [text for text, _ in outcomes]
    assert texts.count(STEADY_REPLY) == expected_failures
    assert texts.count(FLAKY_REPLY) == STREAMS - expected_failures
    assert len(flaky.requests) == STREAMS  # priority 1: each request tried it first
    assert sum(r.status == 503 for r in flaky.requests) == expected_failures
    assert len(steady.requests) == expected_failures  # and only the failed ones went on
    assert failovers(flaky_name) - counted_before == expected_failures
    assert failovers(steady_name) == 0

    records = list(UsageRecord.objects.filter(user=user))
    assert len(records) == STREAMS
    served_by = {FLAKY_REPLY: flaky_name, STEADY_REPLY: steady_name}
    by_usage = sorted(
        (served_by[text], usage.prompt_tokens, usage.completion_tokens, usage.cost)
        for text, usage in outcomes
    )
    assert by_usage == sorted(
        (r.deployment, r.prompt_tokens, r.completion_tokens, r.cost) for r in records
    )  # each record names the deployment whose reply its client read, with its usage and cost
    for record in records:
        assert (record.status, record.model_id, record.api_key_id) == ("complete", house.pk, key[0].pk)
        tokens = {flaky_name: 8, steady_name: 14}[record.deployment]
        assert record.completion_tokens == tokens
        assert record.cost == expected_cost(
            record.prompt_tokens, record.completion_tokens, PROMPT_PRICE, COMPLETION_PRICE
        )
    costs = sum(record.cost for record in records)
    assert len({r.cost for r in records}) == 2  # the two deployments' replies cost differently
    charges = LedgerEntry.objects.filter(wallet__user=user, kind="charge")
    assert charges.count() == STREAMS
    assert -sum(entry.amount for entry in charges) == costs
    assert all("model house" in entry.description for entry in charges)
    assert Wallet.objects.get(user=user).balance == before - costs  # charged exactly once each
    assert Wallet.objects.get(user=user).held == 0
    assert not Hold.objects.filter(wallet__user=user, status=Hold.Status.OPEN).exists()
    assert_books_balance(user)
