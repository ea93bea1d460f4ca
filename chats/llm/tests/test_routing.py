"""Routing over deployments: two (or three) real fake upstreams on loopback, the real ``openai`` client.

Each deployment is a ``Route`` at its own fake server; a failure before the
first chunk moves the request on, a refusal of the request itself does not,
and a deployment failing repeatedly cools down, in the process or in Redis.
"""

import asyncio
import socket
from collections import Counter
from uuid import uuid4

import pytest
from django.test import override_settings

from chats.llm import LLMUnavailable, UpstreamRefused, chunk_text
from chats.llm.openai_provider import aclose_clients
from chats.llm.routing import Attempt, ProviderSpec, Route, open_stream, order_by_priority_and_weight
from tests.fakes.openai_upstream import FakeOpenAI

PROMPT = [{"role": "user", "content": "Say hello"}]
REDIS_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def fakes():
    """Three fake upstreams, each its own server."""
    with FakeOpenAI() as first, FakeOpenAI() as second, FakeOpenAI() as third:
        yield first, second, third


@pytest.fixture(autouse=True)
async def _closed_clients():
    yield
    await aclose_clients()


def route(fake: FakeOpenAI | None, *, name: str = "", timeout: float = 5.0, **kwargs) -> Route:
    """A deployment at ``fake`` (``None``: a port where nothing listens), under a unique name so
    that no cooldown of another test applies."""
    base_url = fake.base_url if fake is not None else f"http://127.0.0.1:{_closed_port()}/v1"
    spec = ProviderSpec(kind="openai", base_url=base_url, api_key_env="", timeout=timeout)
    return Route(deployment=f"{name or 'd'}-{uuid4().hex[:8]}", upstream_model="m", provider=spec, **kwargs)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def text_of(routes, attempts=None) -> tuple[str, Route]:
    stream, served = await open_stream(routes, messages=PROMPT, max_tokens=50, attempts=attempts)
    async with stream:
        return "".join([chunk_text(chunk) async for chunk in stream]), served


# --- failover before the first token --------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        {"fail_status": 500},
        {"fail_status": 503},
        {"fail_status": 429, "retry_after_ms": 100},
        {"fail_status": 401},  # Parley's own key refused: the deployment is at fault
        {"headers_delay": 2.0},  # slower than the deployment's timeout
    ],
)
async def test_a_failure_before_the_first_token_is_served_by_the_next_deployment(fakes, failure):
    broken, spare, _ = fakes
    broken.configure(**failure)
    spare.configure(reply="from the spare")
    attempts: list[Attempt] = []
    routes = [route(broken, name="main", timeout=0.5), route(spare, name="spare")]

    text, served = await text_of(routes, attempts)

    assert text == "from the spare"
    assert served is routes[1]
    assert [a.route for a in attempts] == routes
    assert isinstance(attempts[0].error, LLMUnavailable) and attempts[1].error is None
    assert len(broken.requests) == 1 and len(spare.requests) == 1


async def test_a_deployment_that_refuses_connections_is_passed_over(fakes):
    _, spare, _ = fakes
    spare.configure(reply="served")

    text, served = await text_of([route(None, name="down"), route(spare)])

    assert (text, served.provider.base_url) == ("served", spare.base_url)


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_a_refusal_of_the_request_itself_comes_back_at_once_without_failover(fakes, status):
    refusing, spare, _ = fakes
    refusing.configure(fail_status=status, fail_param="tools", fail_message="tools[0] is malformed")

    with pytest.raises(UpstreamRefused) as refused:
        await text_of([route(refusing), route(spare)])

    assert refused.value.upstream_status == status
    assert refused.value.error["param"] == "tools"
    assert spare.requests == []  # no deployment would serve it: none is asked


async def test_when_every_deployment_answers_429_the_client_gets_429_with_the_shortest_wait(fakes):
    first, second, _ = fakes
    first.configure(fail_status=429, retry_after_ms=4000)
    second.configure(fail_status=429, retry_after_ms=1500)

    with pytest.raises(UpstreamRefused) as refused:
        await text_of([route(first), route(second)])

    assert refused.value.upstream_status == 429
    assert refused.value.error["code"] == "rate_limit_exceeded"
    assert refused.value.retry_after == 1.5


async def test_when_every_deployment_fails_the_last_failure_is_raised(fakes):
    first, second, _ = fakes
    first.configure(fail_status=500)
    second.configure(fail_status=503)

    with pytest.raises(LLMUnavailable) as failed:
        await text_of([route(first), route(second)])

    assert failed.value.upstream_status == 503
    assert not isinstance(failed.value, UpstreamRefused)


async def test_after_the_first_token_there_is_no_failover(fakes):
    cut, spare, _ = fakes
    cut.configure(reply="one two three four five", fail_after_chunks=2)

    stream, served = await open_stream([route(cut), route(spare)], messages=PROMPT, max_tokens=50)
    received = []
    with pytest.raises(LLMUnavailable):
        async for chunk in stream:
            received.append(chunk_text(chunk))

    assert "".join(received) == "one two"
    assert served.provider.base_url == cut.base_url
    assert spare.requests == []


async def test_parameters_a_model_drops_are_not_sent_to_its_deployment(fakes):
    first, _, _ = fakes
    spec = ProviderSpec(kind="openai", base_url=first.base_url)
    dropping = Route(deployment="drop", upstream_model="m", provider=spec, drop_params=frozenset({"seed"}))

    stream, _ = await open_stream(
        [dropping], messages=PROMPT, max_tokens=50, options={"seed": 7, "temperature": 0.5}
    )
    await stream.aclose()

    assert "seed" not in first.last_request.body
    assert first.last_request.body["temperature"] == 0.5


# --- cooldown ---------------------------------------------------------------------------------


@pytest.fixture(params=["process", "redis"])
def cooldown_store(request):
    """Cooldowns in this process, or in a Redis database of this file's own (flushed)."""
    if request.param == "process":
        with override_settings(REDIS_URL="", COOLDOWN_FAILURES=2, COOLDOWN_SECONDS=0.6):
            yield None
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("needs Redis at 127.0.0.1:6379")
    client.flushdb()
    with override_settings(REDIS_URL=REDIS_URL, COOLDOWN_FAILURES=2, COOLDOWN_SECONDS=0.6):
        yield client
    client.flushdb()


async def test_a_deployment_failing_repeatedly_is_skipped_until_its_cooldown_ends(fakes, cooldown_store):
    broken, spare, _ = fakes
    broken.configure(fail_status=500)
    spare.configure(reply="spare")
    routes = [route(broken, name="main"), route(spare, name="spare")]

    for _ in range(2):  # COOLDOWN_FAILURES
        assert (await text_of(routes))[0] == "spare"
    assert len(broken.requests) == 2

    attempts: list[Attempt] = []
    assert (await text_of(routes, attempts))[0] == "spare"
    assert len(broken.requests) == 2  # skipped: cooling down
    assert attempts[0].skipped
    if cooldown_store is not None:  # shared by every worker
        assert cooldown_store.exists(f"parley:deployment:{routes[0].deployment}:cooldown")

    await asyncio.sleep(0.7)  # COOLDOWN_SECONDS later it is tried again, and now it answers
    broken.configure(reply="main again")
    assert (await text_of(routes))[0] == "main again"
    assert len(broken.requests) == 3


async def test_an_upstreams_retry_after_sets_the_length_of_its_cooldown(fakes, cooldown_store):
    limited, spare, _ = fakes
    limited.configure(fail_status=429, retry_after_ms=1500)
    routes = [route(limited, name="limited"), route(spare, name="spare")]
    for _ in range(2):
        await text_of(routes)

    await asyncio.sleep(0.7)  # past COOLDOWN_SECONDS (0.6), within the upstream's 1.5 s
    await text_of(routes)

    assert len(limited.requests) == 2


async def test_a_success_in_between_starts_the_count_of_failures_in_a_row_again(fakes, cooldown_store):
    flaky, spare, _ = fakes
    flaky.configure(fail_status=500, fail_times=1)  # fails, then answers, then fails again
    routes = [route(flaky, name="flaky"), route(spare, name="spare")]
    await text_of(routes)  # a failure
    await text_of(routes)  # a success: the failure is no longer in a row
    flaky.configure(fail_status=500, fail_times=1)
    await text_of(routes)  # one failure in a row, of the two (COOLDOWN_FAILURES) it takes

    attempts: list[Attempt] = []
    await text_of(routes, attempts)

    assert not attempts[0].skipped  # not cooling down: it was tried
    assert len(flaky.requests) == 4


async def test_every_deployment_cooling_down_is_503_at_once(fakes, cooldown_store):
    first, second, _ = fakes
    first.configure(fail_status=500)
    second.configure(fail_status=502)
    routes = [route(first), route(second)]
    for _ in range(2):
        with pytest.raises(LLMUnavailable):
            await text_of(routes)

    with pytest.raises(LLMUnavailable) as cooling:
        await text_of(routes)

    assert cooling.value.status_code == 503 and cooling.value.details["reason"] == "cooldown"
    assert len(first.requests) == len(second.requests) == 2  # neither was asked


async def test_a_single_deployment_never_cools_down(fakes, cooldown_store):
    """With one deployment there is nowhere else to go: it is always tried."""
    only, _, _ = fakes
    only.configure(fail_status=500)
    routes = [route(only)]
    for _ in range(4):
        with pytest.raises(LLMUnavailable):
            await text_of(routes)

    assert len(only.requests) == 4


# --- order ------------------------------------------------------------------------------------


def test_deployments_are_ordered_by_priority_then_by_weight():
    heavy = Route(deployment="heavy", upstream_model="m", priority=1, weight=3)
    light = Route(deployment="light", upstream_model="m", priority=1, weight=1)
    spare = Route(deployment="spare", upstream_model="m", priority=2, weight=100)

    orders = [order_by_priority_and_weight([spare, light, heavy]) for _ in range(4000)]

    assert all(order[-1] is spare for order in orders)  # a lower priority is only ever a fallback
    firsts = Counter(order[0].deployment for order in orders)
    assert 0.70 < firsts["heavy"] / 4000 < 0.80  # weight 3 against 1: three in four


async def test_a_provider_whose_key_variable_is_unset_is_asked_with_no_key_rather_than_crashing(
    fakes, monkeypatch
):
    """The upstream decides: a server that needs no key answers, one that does refuses (401),
    which fails over like any deployment failing."""
    keyless, _, _ = fakes
    monkeypatch.delenv("PARLEY_TEST_UNSET_KEY", raising=False)
    spec = ProviderSpec(kind="openai", base_url=keyless.base_url, api_key_env="PARLEY_TEST_UNSET_KEY")
    keyless.configure(reply="no key needed")

    text, _ = await text_of([Route(deployment="keyless", upstream_model="m", provider=spec)])

    assert text == "no key needed"
    assert keyless.last_request.headers["authorization"] == "Bearer not-needed"
