"""``GET /api/usage/``: the caller's own usage, chat replies and ``/v1/`` requests together."""

import datetime as dt

import pytest
from django.utils import timezone
from model_bakery import baker

from accounts.services import api_key_create
from chats.models import ChatSession, Message, UsageRecord
from tests.helpers.asserts import assert_error
from tests.helpers.catalogue import catalogue_model_make, category_make

pytestmark = pytest.mark.django_db


URL = "/api/usage/"


TODAY = timezone.now().astimezone(dt.UTC).date()


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def reply(session, *, day=TODAY, hour=12, status="complete", prompt=10, completion=20, cost=3) -> Message:
    message = baker.make(
        Message,
        session=session,
        role="assistant",
        status=status,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=cost,
    )
    Message.objects.filter(pk=message.pk).update(created_at=at(day, hour))  # auto_now_add on create
    if status != "pending":  # its usage record, as ``reply_finish`` writes it when the reply ends
        baker.make(
            UsageRecord,
            id=message.pk,
            user=session.user,
            api_key=None,
            session=session,
            category=session.category,
            model=session.category.model,
            status=status,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=cost,
            created_at=at(day, hour),
        )
    return message


def request(
    user, api_key, category, *, day=TODAY, hour=12, status="complete", prompt=1, completion=2, cost=5
):
    record = baker.make(
        UsageRecord,
        user=user,
        api_key=api_key,
        category=category,
        model=category.model if category is not None else None,
        status=status,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=cost,
    )
    UsageRecord.objects.filter(pk=record.pk).update(created_at=at(day, hour))
    return record


@pytest.fixture
def coding(db):
    return category_make("coding", name="Coding", prompt_price=1, completion_price=1)


@pytest.fixture
def session(user, general_category):
    return baker.make(ChatSession, user=user, category=general_category)


@pytest.fixture
def api_key(user):
    return api_key_create(user=user, name="laptop")[0]


# --- GET /api/usage/ ---------------------------------------------------------------------------


def test_usage_by_day_adds_replies_and_requests_and_totals(
    auth_client, user, session, api_key, general_category
):
    yesterday = TODAY - dt.timedelta(days=1)
    reply(session, day=yesterday)
    reply(session, day=TODAY, hour=0)
    request(user, api_key, general_category, day=TODAY, hour=23)

    response = auth_client.get(URL)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "results": [
            {
                "day": yesterday.isoformat(),
                "replies": 1,
                "prompt_tokens": 10,
                "completion_tokens": 20,
                "cost": 3,
            },
            {"day": TODAY.isoformat(), "replies": 2, "prompt_tokens": 11, "completion_tokens": 22, "cost": 8},
        ],
        "totals": {"replies": 3, "prompt_tokens": 21, "completion_tokens": 42, "cost": 11},
    }


def test_usage_by_category(auth_client, user, session, api_key, general_category, coding):
    reply(session)
    request(user, api_key, coding)
    request(user, api_key, general_category)

    body = auth_client.get(URL, {"group_by": "category"}).json()

    assert [(row["category"], row["replies"], row["cost"]) for row in body["results"]] == [
        ("coding", 1, 5),
        ("general", 2, 8),
    ]
    assert body["totals"]["cost"] == 13


def test_usage_by_model_groups_by_the_catalogue_model_that_priced_each(
    auth_client, user, api_key, general_category, coding
):
    house = catalogue_model_make("house")
    for category, model in [
        (general_category, general_category.model),
        (coding, coding.model),
        (None, house),  # a /v1/ request that named the model itself
        (None, house),
        (None, None),  # a reply whose model was not kept
    ]:
        UsageRecord.objects.filter(pk=request(user, api_key, category).pk).update(model=model)

    body = auth_client.get(URL, {"group_by": "model"}).json()

    assert [(row["model"], row["replies"], row["cost"]) for row in body["results"]] == [
        ("coding", 1, 5),
        ("general", 1, 5),
        ("house", 2, 10),
        (None, 1, 5),
    ]
    assert set(body["results"][0]) == {"model", "replies", "prompt_tokens", "completion_tokens", "cost"}
    assert body["totals"]["cost"] == 25


def test_usage_by_key_puts_chat_replies_under_null(auth_client, user, session, api_key, general_category):
    other_key, _ = api_key_create(user=user, name="server")
    reply(session)
    request(user, api_key, general_category)
    request(user, other_key, general_category, cost=7)

    body = auth_client.get(URL, {"group_by": "key"}).json()

    keys = sorted([api_key, other_key], key=lambda key: key.prefix)
    assert body["results"][0] == {
        "key": None,
        "replies": 1,
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "cost": 3,
    }
    assert [row["key"] for row in body["results"][1:]] == [
        {"id": str(k.id), "prefix": k.prefix} for k in keys
    ]
    assert body["totals"]["cost"] == 15


def test_usage_leaves_out_pending_and_counts_failed_and_incomplete(
    auth_client, user, session, api_key, general_category
):
    reply(session, status="pending", cost=0)
    reply(session, status="failed", cost=0)
    reply(session, status="incomplete", cost=2)
    request(user, api_key, general_category, status="pending", cost=0)
    baker.make(Message, session=session, role="user", content="a question")  # not a reply

    totals = auth_client.get(URL).json()["totals"]

    assert totals == {"replies": 2, "prompt_tokens": 20, "completion_tokens": 40, "cost": 2}


def test_usage_range_is_utc_days_with_to_included(auth_client, session):
    day = dt.date(2026, 3, 10)
    reply(session, day=day - dt.timedelta(days=1), hour=23)  # the evening before: out
    reply(session, day=day, hour=0)
    reply(session, day=day + dt.timedelta(days=1), hour=23)  # the last minute of `to`: in
    reply(session, day=day + dt.timedelta(days=2), hour=0)  # the day after: out

    body = auth_client.get(URL, {"from": "2026-03-10", "to": "2026-03-11"}).json()

    assert [row["day"] for row in body["results"]] == ["2026-03-10", "2026-03-11"]
    assert body["totals"]["replies"] == 2


def test_usage_defaults_to_the_last_30_days(auth_client, session):
    reply(session, day=TODAY - dt.timedelta(days=29))
    reply(session, day=TODAY - dt.timedelta(days=30))

    body = auth_client.get(URL).json()

    assert [row["day"] for row in body["results"]] == [(TODAY - dt.timedelta(days=29)).isoformat()]


def test_usage_shows_nothing_of_another_user(other_client, user, session, api_key, general_category):
    reply(session)
    request(user, api_key, general_category)

    body = other_client.get(URL, {"group_by": "key"}).json()

    assert body == {
        "results": [],
        "totals": {"replies": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0},
    }


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"from": "2026-02-30"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": ""}, "from"),
        ({"from": "2026-1-1"}, "from"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "from"),  # 367 days: one too many
        ({"group_by": "user"}, "group_by"),
    ],
)
def test_usage_rejects_bad_parameters(auth_client, params, parameter):
    error = assert_error(auth_client.get(URL, params), 400, "validation_error")
    assert parameter in error["details"]


def test_usage_accepts_a_range_of_366_days(auth_client):
    assert auth_client.get(URL, {"from": "2024-01-01", "to": "2024-12-31"}).status_code == 200


@pytest.mark.parametrize("params", [{"to": "9999-12-31"}, {"from": "9999-12-31", "to": "9999-12-31"}])
def test_usage_to_the_last_day_of_the_calendar_is_a_400_not_an_overflow(auth_client, params):
    """The range ends at the start of the day after ``to``, which 9999-12-31 does not have: it was a 500."""
    error = assert_error(auth_client.get(URL, params), 400, "validation_error")
    assert error["details"] == {"to": ["Must be 9999-12-30 or earlier."]}


@pytest.mark.parametrize(
    ("params", "day"),
    [
        ({"to": "9999-12-30"}, dt.date(9999, 12, 30)),
        # The default 30 days would start before the calendar does (a 500): they start with it.
        ({"to": "0001-01-05"}, dt.date(1, 1, 1)),
        ({"from": "0001-01-01", "to": "0001-01-01"}, dt.date(1, 1, 1)),
    ],
)
def test_usage_at_the_ends_of_the_calendar(auth_client, session, params, day):
    reply(session, day=day, hour=23)

    response = auth_client.get(URL, params)

    assert response.status_code == 200, response.content
    assert [row["day"] for row in response.json()["results"]] == [day.isoformat()]


def test_usage_needs_a_token(api_client):
    assert_error(api_client.get(URL), 401, "not_authenticated")


@pytest.mark.parametrize("group_by", ["day", "category", "model", "key"])
def test_usage_query_count_does_not_grow_with_rows(
    auth_client, user, session, general_category, coding, group_by, django_assert_max_num_queries
):
    keys = [api_key_create(user=user, name=f"key {i}")[0] for i in range(5)]
    for i in range(40):
        reply(session, day=TODAY - dt.timedelta(days=i % 20))
        request(user, keys[i % 5], (general_category, coding)[i % 2], day=TODAY - dt.timedelta(days=i % 25))

    # The user behind the token, then the usage records' groups: replies and requests together.
    with django_assert_max_num_queries(2):
        response = auth_client.get(URL, {"group_by": group_by})

    assert response.status_code == 200
    assert response.json()["totals"]["replies"] == 80
    assert len(response.json()["results"]) > 1


def test_a_blank_group_by_is_a_400(auth_client):
    response = auth_client.get("/api/usage/?group_by=")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"group_by": ["May not be blank."]}
