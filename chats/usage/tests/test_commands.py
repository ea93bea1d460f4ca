"""``manage.py usage_report``: everyone's charges, for staff, by day, user or category."""

import csv
import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from chats.models import Message, UsageRecord
from tests.helpers.catalogue import category_make
from tests.helpers.usage_rows import charge_through_services
from wallets.models import LedgerEntry

pytestmark = pytest.mark.django_db


TODAY = timezone.now().astimezone(dt.UTC).date()


@pytest.fixture
def coding(db):
    return category_make("coding", name="Coding", prompt_price=1, completion_price=1)


@pytest.fixture
def charged(user, other_user, general_category, coding):
    """Replies and ``/v1/`` requests through the real services, so that each charge is in the ledger."""
    charge_through_services((user, other_user), (general_category, coding), api_model="coding")
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
        records = UsageRecord.objects.filter(user=person)
        replies = Message.objects.filter(session__user=person).aggregate(c=Sum("cost"))["c"]
        requests = records.filter(api_key__isnull=False).aggregate(c=Sum("cost"))["c"]
        assert by_user[person.login_id] == replies + requests == records.aggregate(c=Sum("cost"))["c"]
    assert set(by_category) == {"general", "coding"}
    assert by_category["coding"] == (
        Message.objects.filter(session__category__slug="coding").aggregate(c=Sum("cost"))["c"]
        + UsageRecord.objects.filter(api_key__isnull=False).aggregate(c=Sum("cost"))["c"]
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
        (("--to", "9999-12-31"), "--to must be 9999-12-30 or earlier, not 9999-12-31."),  # was an overflow
    ],
)
def test_report_refuses_bad_dates_in_one_sentence(args, message):
    with pytest.raises(CommandError) as refused:
        call_command("usage_report", *args, stdout=StringIO())
    assert str(refused.value) == message
