"""``GET /api/usage/`` (the caller's own usage) and ``manage.py usage_report`` (everyone's, for staff)."""

import csv
import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone
from model_bakery import baker

from accounts.services import api_key_create
from chats.llm import ChatMessage, Usage
from chats.models import Category, ChatSession, Message, UsageRecord
from chats.replies.services import reply_begin, reply_finish
from chats.v1.services import completion_begin, completion_finish
from tests.helpers.asserts import assert_error
from wallets.models import LedgerEntry
from wallets.services import wallet_top_up

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
    return message


def request(
    user, api_key, category, *, day=TODAY, hour=12, status="complete", prompt=1, completion=2, cost=5
):
    record = baker.make(
        UsageRecord,
        user=user,
        api_key=api_key,
        category=category,
        status=status,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=cost,
    )
    UsageRecord.objects.filter(pk=record.pk).update(created_at=at(day, hour))
    return record


@pytest.fixture
def coding(db):
    return Category.objects.create(slug="coding", name="Coding", prompt_price=1, completion_price=1)


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


def test_usage_needs_a_token(api_client):
    assert_error(api_client.get(URL), 401, "not_authenticated")


@pytest.mark.parametrize("group_by", ["day", "category", "key"])
def test_usage_query_count_does_not_grow_with_rows(
    auth_client, user, session, general_category, coding, group_by, django_assert_max_num_queries
):
    keys = [api_key_create(user=user, name=f"key {i}")[0] for i in range(5)]
    for i in range(40):
        reply(session, day=TODAY - dt.timedelta(days=i % 20))
        request(user, keys[i % 5], (general_category, coding)[i % 2], day=TODAY - dt.timedelta(days=i % 25))

    # The user behind the token, the replies' groups, the requests' groups.
    with django_assert_max_num_queries(3):
        response = auth_client.get(URL, {"group_by": group_by})

    assert response.status_code == 200
    assert response.json()["totals"]["replies"] == 80
    assert len(response.json()["results"]) > 1


# --- manage.py usage_report -----------------------------------------------------------------


@pytest.fixture
def charged(user, other_user, general_category, coding):
    """Replies and ``/v1/`` requests through the real services, so that each charge is in the ledger."""
    for person in (user, other_user):
        wallet_top_up(user=person, amount=10_000, reason="test")
        for category in (general_category, coding):
            chat = baker.make(ChatSession, user=person, category=category)
            for i in range(3):
                plan = reply_begin(user=person, session_id=chat.id, content=f"question {i}")
                reply_finish(plan=plan, content="an answer " * (i + 1) * 20, usage=None, status="complete")
        key, _ = api_key_create(user=person, name="k")
        plan = completion_begin(
            user=person, api_key=key, model="coding", messages=[ChatMessage(role="user", content="hi")]
        )
        completion_finish(
            plan=plan, content="", usage=Usage(prompt_tokens=300, completion_tokens=900), status="complete"
        )
        failed = reply_begin(user=person, session_id=chat.id, content="no answer")
        reply_finish(plan=failed, content="", usage=None, status="failed")
    return -LedgerEntry.objects.filter(kind="charge").aggregate(total=Sum("amount"))["total"]


def report(*args) -> str:
    out = StringIO()
    call_command("usage_report", *args, stdout=out)
    return out.getvalue()


def parsed(*args) -> list[dict]:
    return list(csv.DictReader(StringIO(report(*args, "--format", "csv"))))


@pytest.mark.parametrize("group_by", ["day", "user", "category"])
def test_report_totals_equal_the_ledgers_charges(charged, group_by):
    rows = parsed("--group-by", group_by)

    assert list(rows[0]) == [group_by, "charges", "credits"]
    assert sum(int(row["credits"]) for row in rows) == charged > 0
    assert sum(int(row["charges"]) for row in rows) == LedgerEntry.objects.filter(kind="charge").count()


def test_report_by_user_and_category_match_the_replies_costs(charged, user, other_user):
    by_user = {row["user"]: int(row["credits"]) for row in parsed("--group-by", "user")}
    by_category = {row["category"]: int(row["credits"]) for row in parsed("--group-by", "category")}

    for person in (user, other_user):
        spent = (Message.objects.filter(session__user=person).aggregate(c=Sum("cost"))["c"] or 0) + (
            UsageRecord.objects.filter(user=person).aggregate(c=Sum("cost"))["c"] or 0
        )
        assert by_user[person.login_id] == spent
    assert set(by_category) == {"general", "coding"}
    assert by_category["coding"] == (
        Message.objects.filter(session__category__slug="coding").aggregate(c=Sum("cost"))["c"]
        + UsageRecord.objects.aggregate(c=Sum("cost"))["c"]
    )


def test_report_range_leaves_out_other_days(charged):
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()

    assert parsed("--from", yesterday, "--to", yesterday) == []
    assert [row["day"] for row in parsed("--from", TODAY.isoformat(), "--to", TODAY.isoformat())] == [
        TODAY.isoformat()
    ]


def test_report_table_is_aligned_with_a_total(charged):
    lines = report("--group-by", "user").splitlines()

    assert lines[0].split() == ["user", "charges", "credits"]
    assert lines[-1].split() == [
        "total",
        str(LedgerEntry.objects.filter(kind="charge").count()),
        str(charged),
    ]
    assert len({len(line) for line in lines}) == 1  # every column ends where its header ends


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-02-30"), "--from must be a date written YYYY-MM-DD, not '2026-02-30'."),
        (("--to", "soon"), "--to must be a date written YYYY-MM-DD, not 'soon'."),
        (
            ("--from", "2026-03-02", "--to", "2026-03-01"),
            "--from (2026-03-02) must not be after --to (2026-03-01).",
        ),
    ],
)
def test_report_refuses_bad_dates_in_one_sentence(args, message):
    with pytest.raises(CommandError) as refused:
        call_command("usage_report", *args, stdout=StringIO())
    assert str(refused.value) == message


def test_a_blank_group_by_is_a_400(auth_client):
    response = auth_client.get("/api/usage/?group_by=")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"group_by": ["May not be blank."]}
