"""The staff "Usage" page: the chart's numbers, the top spenders, the date filter, who may see it."""

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from model_bakery import baker

from chats.models import ChatSession, Message, UsageRecord
from tests.helpers.catalogue import category_make
from tests.helpers.usage_rows import at, reply, request

pytestmark = pytest.mark.django_db

URL = "/admin/chats/usagerecord/usage/"
SEGMENT = re.compile(
    r'<rect class="segment" data-day="([\d-]+)" data-category="([\w-]+)"\s+data-credits="(\d+)"'
)
BAR = re.compile(r'<g class="bar" data-day="([\d-]+)" data-credits="(\d+)">')
SPENDER = re.compile(r'<tr class="spender" data-login-id="([^"]+)" data-credits="(\d+)">')


def segments(response) -> dict[tuple[str, str], int]:
    return {(day, category): int(credits) for day, category, credits in SEGMENT.findall(response.text)}


def spenders(response) -> list[tuple[str, int]]:
    return [(login_id, int(credits)) for login_id, credits in SPENDER.findall(response.text)]


@pytest.fixture
def coding(db):
    return category_make("coding", name="Coding", order=1, prompt_price=1, completion_price=1)


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def today():
    return timezone.now().date()


@pytest.fixture
def seeded(make_user, general_category, coding, today):
    """Alice and Bob spend in the last 30 days; pending, older work and users' own messages don't count."""
    alice, bob = make_user("alice"), make_user("bob")
    yesterday, three_ago = today - dt.timedelta(days=1), today - dt.timedelta(days=3)
    reply(alice, general_category, 5, at(yesterday, 0))
    reply(bob, general_category, 7, at(yesterday, 23))
    request(alice, coding, 4, at(yesterday))
    request(bob, general_category, 10, at(three_ago))
    reply(alice, coding, 2, at(today - dt.timedelta(days=29)))
    reply(alice, general_category, 100, at(today - dt.timedelta(days=30)))  # a day too old
    reply(bob, general_category, 50, timezone.now(), status=Message.Status.PENDING)  # still streaming
    request(bob, coding, 60, timezone.now(), status=UsageRecord.Status.PENDING)
    session = baker.make(ChatSession, user=alice, category=general_category)
    baker.make(Message, session=session, role=Message.Role.USER, cost=0)
    return alice, bob


def test_chart_shows_the_last_30_days_split_by_category(admin_client, seeded, today):
    response = admin_client.get(URL)

    assert response.status_code == 200
    iso = lambda days_ago: (today - dt.timedelta(days=days_ago)).isoformat()  # noqa: E731
    assert segments(response) == {
        (iso(1), "general"): 12,
        (iso(1), "coding"): 4,
        (iso(3), "general"): 10,
        (iso(29), "coding"): 2,
    }
    bars = BAR.findall(response.text)
    assert [day for day, _ in bars] == [iso(days_ago) for days_ago in range(29, -1, -1)]
    assert dict(bars)[iso(1)] == "16"
    assert "Total: <strong>28</strong> credits." in response.text


def test_top_spenders_are_ordered_by_credits_and_link_their_wallet(
    admin_client, make_user, general_category, coding, today
):
    users = [make_user(f"user-{n:02}") for n in range(12)]
    for n, user in enumerate(users):
        reply(user, general_category, n + 1, at(today))
    request(users[0], coding, 20, at(today))  # 1 + 20 by chat and API together: the most

    response = admin_client.get(URL)

    expected = [("user-00", 21)] + [(f"user-{n:02}", n + 1) for n in range(11, 2, -1)]
    assert spenders(response) == expected
    assert f'href="/admin/wallets/wallet/{users[0].wallet.pk}/change/"' in response.text
    assert (
        f"/admin/wallets/wallet/{users[1].wallet.pk}/change/" not in response.text
    )  # 11th and 12th: not shown


def test_date_filter_narrows_chart_and_spenders(admin_client, seeded, today):
    three_ago = today - dt.timedelta(days=3)

    response = admin_client.get(URL, {"start": three_ago.isoformat(), "end": three_ago.isoformat()})

    assert response.status_code == 200
    assert segments(response) == {(three_ago.isoformat(), "general"): 10}
    assert len(BAR.findall(response.text)) == 1
    assert spenders(response) == [("bob", 10)]

    older = today - dt.timedelta(days=30)
    response = admin_client.get(URL, {"start": older.isoformat(), "end": today.isoformat()})
    assert spenders(response) == [("alice", 111), ("bob", 17)]
    assert segments(response)[older.isoformat(), "general"] == 100


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "yesterday"}, "From: Enter a valid date."),
        ({"start": "2026-02-30"}, "From: Enter a valid date."),
        ({"start": "2026-05-02", "end": "2026-05-01"}, "“From” must not be after “To”."),
        ({"start": "2025-01-01", "end": "2026-01-02"}, "Choose a range of at most 366 days."),
        ({"end": "9999-12-31"}, "“To” must be 9999-12-30 or earlier."),  # was a 500: no day after it
    ],
)
def test_bad_dates_show_a_message_and_the_default_range(admin_client, seeded, today, query, message):
    response = admin_client.get(URL, query)

    assert response.status_code == 200
    assert message in response.text
    assert len(BAR.findall(response.text)) == 30
    assert (today - dt.timedelta(days=1)).isoformat() in dict(BAR.findall(response.text))


def test_the_first_days_of_the_calendar_are_a_shorter_range(admin_client, seeded):
    """The default 30 days before ``end`` would start before the calendar does: it was a 500."""
    response = admin_client.get(URL, {"end": "0001-01-05"})

    assert response.status_code == 200
    assert [day for day, _ in BAR.findall(response.text)] == [f"0001-01-0{n}" for n in range(1, 6)]


def test_a_whole_year_is_allowed(admin_client, seeded, today):
    response = admin_client.get(URL, {"start": (today - dt.timedelta(days=365)).isoformat()})

    assert response.status_code == 200
    assert len(BAR.findall(response.text)) == 366


def test_query_count_does_not_grow_with_rows(
    admin_client, make_user, general_category, coding, today, django_assert_max_num_queries
):
    for n in range(15):
        user = make_user(f"spender-{n}")
        for days_ago in range(4):
            reply(user, general_category, 3, at(today - dt.timedelta(days=days_ago)))
            request(user, coding, 2, at(today - dt.timedelta(days=days_ago)))

    with django_assert_max_num_queries(8):
        response = admin_client.get(URL)

    assert len(spenders(response)) == 10
    assert sum(segments(response).values()) == 15 * 4 * 5


def test_anonymous_and_customers_are_sent_to_the_admin_login(client, user):
    assert client.get(URL)["Location"] == f"/admin/login/?next={URL}"
    client.force_login(user)
    assert client.get(URL)["Location"] == f"/admin/login/?next={URL}"


def test_staff_without_ledger_permission_get_403_and_no_link(client, make_user):
    clerk = make_user("clerk", is_staff=True)
    client.force_login(clerk)

    assert client.get(URL).status_code == 403
    assert URL not in client.get("/admin/").text

    clerk.user_permissions.add(Permission.objects.get(codename="view_ledgerentry"))
    assert client.get(URL).status_code == 200
    assert f'<a href="{URL}">Usage</a>' in client.get("/admin/").text


def test_admin_index_links_the_usage_page(admin_client):
    response = admin_client.get("/admin/")

    assert f'<a href="{URL}">Usage</a>' in response.text
    assert "Chats" in response.text  # the apps are still listed below
