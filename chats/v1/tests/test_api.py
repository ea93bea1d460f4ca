"""``/v1/`` end to end: Parley under uvicorn on loopback, the fake upstream behind it, and clients
nobody here wrote (the official ``openai`` SDK, sync and async; LangChain's ``ChatOpenAI``) in front.

Each money scenario ends with the wallet audit passing and no hold left open. How a request is read
and an error written (OpenAI's wire format) is in ``test_wire.py``.
"""

import json
import time

import httpx
import openai
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from langchain_openai import ChatOpenAI
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from chats.catalogue.models import CatalogueModel
from chats.models import UsageRecord
from core.db.connections import release_connection
from tests.helpers.catalogue import category_make
from tests.helpers.concurrency import in_parallel, requires_postgres
from tests.helpers.money import assert_books_balance, expected_cost
from wallets.models import Hold, LedgerEntry, Wallet
from wallets.services import wallet_adjust

pytestmark = pytest.mark.django_db(transaction=True)


QUESTION = [{"role": "user", "content": "Say hello"}]


def record() -> UsageRecord:
    return UsageRecord.objects.get()


def balance(user) -> int:
    return Wallet.objects.get(user=user).balance


# --- /v1/models -----------------------------------------------------------------------


def test_models_are_the_active_categories(client, general_category):
    category_make("retired", is_active=False)
    CatalogueModel.objects.filter(public_id="retired").update(is_active=False)

    models = client.models.list()

    assert [model.id for model in models.data] == ["general"]
    assert models.data[0].owned_by == "parley"
    assert models.data[0].pricing == {"unit": "credits per 1,000 tokens", "prompt": "1", "completion": "2"}
    assert client.models.retrieve("general").id == "general"
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("retired")
    assert raised.value.code == "model_not_found"


# --- completions, not streamed ----------------------------------------------------------


def test_completion_answers_in_openais_format_and_charges_the_keys_owner(
    client, key, user, openai_settings, general_category
):
    openai_settings.configure(reply="Hello there friend", prompt_tokens=120, completion_tokens=30)

    answer = client.chat.completions.create(
        model="general", messages=QUESTION, temperature=0.2, seed=7, stop=["\n\n"], max_tokens=10**6
    )

    assert answer.object == "chat.completion"
    assert answer.model == "general"
    assert answer.choices[0].message.content == "Hello there friend"
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (
        120,
        30,
        150,
    )
    cost = expected_cost(120, 30)
    assert balance(user) == 100 - cost
    usage = record()
    assert (usage.status, usage.prompt_tokens, usage.completion_tokens, usage.cost) == (
        "complete",
        120,
        30,
        cost,
    )
    assert usage.api_key_id == key[0].id and usage.duration_ms is not None
    charge = LedgerEntry.objects.get(kind="charge")
    assert charge.amount == -cost
    named = f"API request {usage.id} with key {key[0].prefix} (laptop script), model general"
    assert charge.description == named
    # What went upstream: the category's system prompt first, the options passed, max_tokens capped.
    sent = openai_settings.last_request.body
    assert sent["messages"] == [{"role": "system", "content": general_category.system_prompt}, *QUESTION]
    assert (sent["temperature"], sent["seed"], sent["stop"]) == (0.2, 7, ["\n\n"])
    assert sent["max_tokens"] == 1024
    assert_books_balance(user)


# --- completions, streamed ----------------------------------------------------------------


async def test_streamed_completion_with_usage_through_the_async_client(
    live_asgi_url, key, user, openai_settings, general_category
):
    openai_settings.configure(reply="one two three", prompt_tokens=50, completion_tokens=3)
    async with openai.AsyncOpenAI(base_url=f"{live_asgi_url}/v1", api_key=key[1], max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="general", messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    try:
        usage = await UsageRecord.objects.aget()
        assert (usage.status, usage.cost) == ("complete", expected_cost(50, 3))
    finally:
        await sync_to_async(release_connection)()  # the ORM's async call ran in asgiref's thread


def test_streamed_completion_without_usage_has_no_usage_chunk(client, openai_settings):
    stream = client.chat.completions.create(model="general", messages=QUESTION, stream=True)
    chunks = list(stream)
    assert all(chunk.usage is None for chunk in chunks)
    assert record().status == "complete"


def test_a_client_that_leaves_mid_stream_stops_the_upstream_and_pays_what_was_produced(
    live_asgi_url, key, user, openai_settings, general_category
):
    openai_settings.configure(reply=" ".join(f"w{i}" for i in range(40)), chunk_delay=0.05)
    body = {"model": "general", "messages": QUESTION, "stream": True}
    with (
        httpx.Client(timeout=10) as http,
        http.stream(
            "POST",
            f"{live_asgi_url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key[1]}"},
        ) as response,
    ):
        seen = 0
        for line in response.iter_lines():
            if line.startswith("data: ") and "content" in line:
                seen += 1
                if seen == 4:
                    break

    assert openai_settings.wait_until_sync(lambda: openai_settings.last_request.disconnected, timeout=5)
    deadline = time.monotonic() + 10  # the settlement follows the disconnect
    while record().status == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    call_command("release_stale_holds", "--minutes", "0")  # nothing of a settled request to release
    usage = record()
    assert usage.status == "incomplete"
    assert 0 < usage.cost <= Hold.objects.get(pk=usage.hold_id).amount
    assert balance(user) == 100 - usage.cost
    assert_books_balance(user)


def test_a_failure_before_any_token_is_free(client, user, openai_settings):
    openai_settings.configure(fail_status=500)

    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="general", messages=QUESTION)

    assert raised.value.status_code == 502
    assert raised.value.body["type"] == "api_error"
    assert (record().status, record().cost) == ("failed", 0)
    assert balance(user) == 100
    assert_books_balance(user)


def test_a_failure_mid_stream_is_an_error_event_the_sdk_raises(client, user, openai_settings):
    openai_settings.configure(reply="a b c d e f", error_event_after_chunks=2)

    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="general", messages=QUESTION, stream=True))

    assert record().status == "incomplete"
    assert_books_balance(user)


# --- refusals, as the SDK raises them ---------------------------------------------------------


def test_a_revoked_key_is_refused_at_once(client, key, user):
    from accounts.services import api_key_revoke

    api_key_revoke(user=user, key_id=key[0].id)

    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(model="general", messages=QUESTION)
    assert raised.value.code == "invalid_api_key"
    assert not UsageRecord.objects.exists()


def test_a_deactivated_users_key_is_refused_at_once(client, user):
    User.objects.filter(pk=user.pk).update(is_active=False)

    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_a_jwt_is_not_a_key_and_a_key_is_not_a_jwt(live_asgi_url, key, user, openai_settings):
    jwt = str(RefreshToken.for_user(user).access_token)
    with httpx.Client(base_url=live_asgi_url, timeout=10) as http:
        refused = http.get("/v1/models", headers={"Authorization": f"Bearer {jwt}"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert http.get("/api/wallet/", headers={"Authorization": f"Bearer {key[1]}"}).status_code == 401


def test_an_unknown_model_is_model_not_found(client):
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-9", messages=QUESTION)
    assert raised.value.code == "model_not_found"


def test_missing_credits_are_402_insufficient_quota_and_not_retried(
    live_asgi_url, key, user, openai_settings, general_category
):
    wallet_adjust(user=user, amount=-100, reason="spent elsewhere", actor=user)
    with (
        openai.OpenAI(base_url=f"{live_asgi_url}/v1", api_key=key[1], max_retries=3) as client,
        pytest.raises(openai.APIStatusError) as raised,
    ):
        client.chat.completions.create(model="general", messages=QUESTION)

    assert raised.value.status_code == 402
    assert raised.value.code == "insufficient_quota"
    assert raised.value.body["type"] == "insufficient_quota"
    assert openai_settings.requests == []  # the provider was never called
    assert not UsageRecord.objects.exists()


def test_the_message_throttle_is_shared_with_chat_replies(client, user, settings, general_category):
    settings.MESSAGE_THROTTLE_RATE = "2/min"
    client.chat.completions.create(model="general", messages=QUESTION)
    client.chat.completions.create(model="general", messages=QUESTION)

    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="general", messages=QUESTION)
    assert raised.value.code == "rate_limit_exceeded"


def test_a_keys_monthly_cap_of_one_credit_bounds_the_reply_to_what_it_pays_for(client, key, openai_settings):
    """A reply costs a fraction of a credit per token: a cap of one still pays for a short one."""
    type(key[0]).objects.filter(pk=key[0].pk).update(monthly_cap=1)
    openai_settings.configure(ignore_max_tokens=True, reply=" ".join(["word"] * 2000))

    completion = client.chat.completions.create(model="general", messages=QUESTION)

    bound = openai_settings.last_request.body["max_tokens"]
    assert 16 <= bound < 1024  # general: 2 credits per 1,000 completion tokens
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens <= bound
    assert record().cost == 1
    assert UsageRecord.objects.get().status == "complete"


def test_a_cap_that_cannot_pay_min_reply_tokens_is_402_spend_cap_reached(
    client, key, openai_settings, settings
):
    type(key[0]).objects.filter(pk=key[0].pk).update(monthly_cap=1)
    settings.MIN_REPLY_TOKENS = 1000

    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="general", messages=QUESTION)

    assert raised.value.status_code == 402
    assert raised.value.code == "spend_cap_reached"
    assert raised.value.body["details"]["period"] == "month"
    assert openai_settings.requests == []


def test_max_tokens_above_what_the_wallet_pays_for_is_402_naming_the_most_it_can(
    client, user, openai_settings
):
    wallet_adjust(user=user, amount=-99, reason="spent elsewhere", actor=user)  # one credit left

    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="general", messages=QUESTION, max_tokens=1000)
    affordable = raised.value.body["details"]["max_tokens"]
    assert raised.value.status_code == 402
    assert raised.value.code == "insufficient_quota"
    assert f"max_tokens={affordable}" in raised.value.message

    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="general", messages=QUESTION, max_tokens=affordable + 1)
    client.chat.completions.create(model="general", messages=QUESTION, max_tokens=affordable)
    assert openai_settings.last_request.body["max_tokens"] == affordable
    assert balance(user) == 1 - record().cost >= 0
    assert_books_balance(user)


def test_an_upstream_that_ignores_max_tokens_is_cut_at_the_bound(client, user, openai_settings):
    openai_settings.configure(
        ignore_max_tokens=True, reply=" ".join(f"w{i}" for i in range(400)), chunk_delay=0.005
    )

    chunks = list(
        client.chat.completions.create(model="general", messages=QUESTION, max_tokens=5, stream=True)
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.encode()) <= 5 * 4  # four bytes a token, the estimate rule
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    deadline = time.monotonic() + 5
    while not openai_settings.last_request.disconnected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert openai_settings.last_request.disconnected  # the upstream was closed at the bound
    assert record().cost <= Hold.objects.get().amount
    assert_books_balance(user)


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_v1_path_answers_json(api_client, settings, debug):
    settings.DEBUG = debug
    response = api_client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- a client nobody here wrote ---------------------------------------------------------------


def test_langchain_chat_openai_talks_to_parley(live_asgi_url, key, user, openai_settings, general_category):
    openai_settings.configure(reply="Hi from upstream")
    chat = ChatOpenAI(base_url=f"{live_asgi_url}/v1", api_key=key[1], model="general", max_retries=0)

    assert chat.invoke("Say hello").content == "Hi from upstream"
    assert "".join(chunk.content for chunk in chat.stream("Again")) == "Hi from upstream"
    assert UsageRecord.objects.filter(status="complete").count() == 2
    assert_books_balance(user)


# --- concurrency (PostgreSQL: real row locks) ---------------------------------------------------


def worst_cost(general_category, **extra) -> int:
    """What one request of these tests holds: its whole body a token a byte, 1,024 completion tokens."""
    from accounts.services import api_key_create
    from chats.v1.services import completion_begin, completion_finish
    from chats.v1.wire import completion_request

    owner = User.objects.create_user(login_id="measure", password="x" * 12)
    wallet_adjust(user=owner, amount=10_000, reason="measure", actor=None)
    plan = completion_begin(
        user=owner,
        api_key=api_key_create(user=owner, name="measure")[0],
        request=completion_request({"model": "general", "messages": QUESTION, **extra}),
    )
    completion_finish(plan=plan, content="", usage=None, status="failed")
    return plan.held


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@requires_postgres
def test_twenty_concurrent_tool_calling_streams_with_one_key_never_spend_past_the_wallet(
    live_asgi_url, key, user, openai_settings, general_category, settings
):
    """The wallet covers five worst cases: at most five are served in full, the others bounded to
    what was left (each at least MIN_REPLY_TOKENS) or refused; the balance never goes below zero."""
    settings.MAX_CONCURRENT_REPLIES = 20  # the wallet, not the concurrency limit, is under test
    tools = {"tools": [WEATHER], "tool_choice": "required"}
    held = worst_cost(general_category, **tools)
    wallet_adjust(user=user, amount=5 * held - 100, reason="covers five", actor=user)
    openai_settings.configure(chunk_delay=0.05)

    def stream(_: int) -> tuple[str, str]:
        with openai.OpenAI(base_url=f"{live_asgi_url}/v1", api_key=key[1], max_retries=0) as client:
            chunks = client.chat.completions.create(model="general", messages=QUESTION, stream=True, **tools)
            arguments, finish = "", None
            for chunk in chunks:
                for choice in chunk.choices:
                    for call in choice.delta.tool_calls or ():
                        arguments += call.function.arguments or ""
                    finish = choice.finish_reason or finish
            return finish, arguments

    outcomes = in_parallel(stream, callers=20)

    served = [o for o in outcomes if isinstance(o, tuple)]
    refused = [o for o in outcomes if isinstance(o, openai.APIStatusError)]
    assert len(served) + len(refused) == 20, outcomes
    assert all(o.status_code == 402 and o.code == "insufficient_quota" for o in refused)
    bounds = [request.body["max_tokens"] for request in openai_settings.requests]
    assert len(bounds) == len(served)
    assert 1 <= bounds.count(1024) <= 5
    assert all(16 <= bound < 1024 for bound in bounds if bound != 1024)  # the bounded replies
    assert all(finish == "tool_calls" and json.loads(arguments)["city"] for finish, arguments in served)
    assert Wallet.objects.get(user=user).balance >= 0
    assert UsageRecord.objects.filter(user=user, status="complete").count() == len(served)
    assert_books_balance(user)


@requires_postgres
def test_concurrent_streams_and_chat_replies_share_one_wallet_safely(
    live_asgi_url, key, user, openai_settings, general_category, settings
):
    from chats.models import ChatSession, Message

    settings.MAX_CONCURRENT_REPLIES = 20  # the wallet, not the concurrency limit, is under test
    held = worst_cost(general_category)
    wallet_adjust(user=user, amount=6 * held - 100, reason="covers about six", actor=user)
    openai_settings.configure(reply=" ".join(f"w{i}" for i in range(20)), chunk_delay=0.1)
    session = ChatSession.objects.create(user=user, category=general_category)
    jwt = str(RefreshToken.for_user(user).access_token)

    def one(index: int):
        if index % 2:
            with openai.OpenAI(base_url=f"{live_asgi_url}/v1", api_key=key[1], max_retries=0) as client:
                return (
                    client.chat.completions.create(model="general", messages=QUESTION)
                    .choices[0]
                    .finish_reason
                )
        response = httpx.post(
            f"{live_asgi_url}/api/sessions/{session.id}/messages/",
            json={"content": "Say hello"},
            headers={"Authorization": f"Bearer {jwt}", "Accept": "application/json"},
            timeout=30,
        )
        return response.status_code

    outcomes = in_parallel(one, callers=20)

    # A chat reply may also be refused for running more than MAX_CONCURRENT_REPLIES at once (429).
    assert all(o in ("stop", 201, 402, 429) or isinstance(o, openai.APIStatusError) for o in outcomes), (
        outcomes
    )
    served = outcomes.count("stop") + outcomes.count(201)
    bounds = [request.body["max_tokens"] for request in openai_settings.requests]
    assert served == len(bounds)
    assert 1 <= bounds.count(1024) <= 6  # in full; the others bounded to what was left
    assert Wallet.objects.get(user=user).balance >= 0
    assert Message.objects.filter(role="assistant", status="pending").count() == 0
    assert_books_balance(user)


# --- one concurrency limit for chat replies and /v1/ ----------------------------------------------


def test_v1_streams_count_against_max_concurrent_replies_with_chat_replies(
    live_asgi_url, client, user, openai_settings, general_category, settings
):
    from chats.models import ChatSession

    settings.MAX_CONCURRENT_REPLIES = 3
    openai_settings.configure(reply=" ".join(f"w{i}" for i in range(40)), chunk_delay=0.05)
    session = ChatSession.objects.create(user=user, category=general_category)
    jwt = str(RefreshToken.for_user(user).access_token)
    with httpx.Client(timeout=30) as http:
        replies = [
            http.stream(
                "POST",
                f"{live_asgi_url}/api/sessions/{session.id}/messages/",
                json={"content": "Hi"},
                headers={"Authorization": f"Bearer {jwt}"},
            )
            for _ in range(2)
        ]
        opened = [reply.__enter__() for reply in replies]
        streaming = client.chat.completions.create(model="general", messages=QUESTION, stream=True)
        next(iter(streaming))  # a third reply, on /v1/, runs

        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="general", messages=QUESTION, stream=True)
        assert refused.value.code == "rate_limit_exceeded"
        assert "Too many replies" in refused.value.message
        for reply, response in zip(replies, opened, strict=True):
            response.read()
            reply.__exit__(None, None, None)
        assert "".join(c.choices[0].delta.content or "" for c in streaming if c.choices).endswith("w39")

    # every slot is back: as many requests as the limit again, one after another
    for _ in range(4):
        client.chat.completions.create(model="general", messages=QUESTION)
    assert UsageRecord.objects.filter(status="complete", api_key__isnull=False).count() == 5
    assert_books_balance(user)
