"""Managing conversations: pin and archive, the list's filters and search, and exports. Both databases."""

import base64
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone
from model_bakery import baker

from chats.conversations.selectors import session_rows_for_user
from chats.models import ChatSession, Message
from tests.helpers.asserts import assert_error
from tests.helpers.catalogue import category_make
from tests.helpers.concurrency import requires_postgres
from tests.helpers.conversations import ids, listed, make_session

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="full-text search is PostgreSQL's"
)


def walk(client, url: str) -> list[str]:
    seen = []
    while url:
        body = client.get(url).json()
        seen += [item["id"] for item in body["results"]]
        url = body["next"]
    return seen


# --- PATCH: title, pinned, archived -------------------------------------------------------------


def test_patch_pins_and_archives_without_moving_the_activity(auth_client, user, general):
    session = make_session(user, general, minutes_ago=30, title="keep")
    before = session.updated_at

    response = auth_client.patch(f"/api/sessions/{session.id}/", {"pinned": True}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["pinned"] is True
    assert response.json()["archived"] is False
    assert response.json()["title"] == "keep"
    session.refresh_from_db()
    assert (session.pinned, session.archived, session.updated_at) == (True, False, before)

    body = auth_client.patch(
        f"/api/sessions/{session.id}/", {"archived": True, "pinned": False}, format="json"
    )
    session.refresh_from_db()
    assert (session.pinned, session.archived, session.updated_at) == (False, True, before)
    assert body.json() == auth_client.get(f"/api/sessions/{session.id}/").json()


def test_patch_title_with_flags_is_activity(auth_client, user, general):
    session = make_session(user, general, minutes_ago=30)

    response = auth_client.patch(
        f"/api/sessions/{session.id}/", {"title": "New", "pinned": True}, format="json"
    )

    session.refresh_from_db()
    assert (session.title, session.pinned) == ("New", True)
    assert session.updated_at > timezone.now() - timedelta(minutes=1)
    assert (
        response.json()["updated_at"] == auth_client.get(f"/api/sessions/{session.id}/").json()["updated_at"]
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"unknown": True},
        {"pinned": "true"},
        {"pinned": 1},
        {"pinned": None},
        {"archived": "false"},
        {"archived": 0},
        {"archived": []},
        {"title": 5},
        {"title": "ok", "pinned": "yes"},
    ],
)
def test_patch_takes_strict_booleans_and_at_least_one_field(auth_client, user, general, body):
    session = make_session(user, general, title="same")
    before = ChatSession.objects.filter(pk=session.pk).values().get()

    assert_error(
        auth_client.patch(f"/api/sessions/{session.id}/", body, format="json"), 400, "validation_error"
    )
    assert ChatSession.objects.filter(pk=session.pk).values().get() == before


# --- The list: pinned first, archived hidden, by category ----------------------------------------


def test_list_pinned_first_then_most_recent_activity(auth_client, user, general, other_user):
    old_pinned = make_session(user, general, minutes_ago=50, pinned=True)
    new_pinned = make_session(user, general, minutes_ago=40, pinned=True)
    old = make_session(user, general, minutes_ago=30)
    new = make_session(user, general, minutes_ago=1)
    make_session(other_user, general, pinned=True)

    assert listed(auth_client) == ids(new_pinned, old_pinned, new, old)


def test_archived_hidden_unless_asked(auth_client, user, general):
    in_use = make_session(user, general, minutes_ago=2)
    archived = make_session(user, general, minutes_ago=1, archived=True)
    archived_pinned = make_session(user, general, minutes_ago=3, archived=True, pinned=True)

    assert listed(auth_client) == ids(in_use)
    assert listed(auth_client, "?archived=false") == ids(in_use)
    assert listed(auth_client, "?archived=true") == ids(archived_pinned, archived)
    assert listed(auth_client, "?archived=all") == ids(archived_pinned, archived, in_use)


@pytest.mark.parametrize("query", ["?archived=", "?category="])
def test_a_blank_filter_is_a_400_not_the_default(auth_client, query):
    response = auth_client.get(f"/api/sessions/{query}")
    assert response.status_code == 400
    name = query[1:-1]
    assert response.json()["error"]["details"] == {name: ["May not be blank."]}


def test_list_by_category(auth_client, user, general):
    code = category_make("code", is_active=False)
    mine = make_session(user, code)
    make_session(user, general)

    assert listed(auth_client, "?category=code") == ids(mine)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?archived=yes", "archived"),
        ("?archived=1", "archived"),
        ("?archived=True", "archived"),
        ("?category=nope", "category"),
        ("?category=not%20a%20slug", "category"),
        ("?category=" + "a" * 51, "category"),
        ("?category=%00", "category"),
    ],
)
def test_bad_list_parameters_are_400(auth_client, user, general, query, field):
    make_session(user, general)

    error = assert_error(auth_client.get(f"/api/sessions/{query}"), 400, "validation_error")

    assert field in error["details"]


def test_pages_walk_pinned_and_tied_sessions_once_both_ways(auth_client, user, general):
    """Every unpinned session shares ``pinned``, and these share ``updated_at`` too: the key pages them."""
    same_moment = timezone.now()
    made = baker.make(ChatSession, user=user, category=general, _quantity=9)
    pinned = baker.make(ChatSession, user=user, category=general, pinned=True, _quantity=4)
    ChatSession.objects.filter(user=user).update(updated_at=same_moment)
    expected = listed(auth_client, "?page_size=100")

    forward = walk(auth_client, "/api/sessions/?page_size=2")

    assert forward == expected
    assert sorted(forward) == sorted(ids(*made, *pinned))
    assert set(forward[:4]) == set(ids(*pinned))
    # And back from the last page, by the ``previous`` links.
    url, backward = "/api/sessions/?page_size=2", []
    while url:
        body = auth_client.get(url).json()
        url = body["next"]
    last = body
    backward = [item["id"] for item in last["results"]]
    url = last["previous"]
    while url:
        body = auth_client.get(url).json()
        backward = [item["id"] for item in body["results"]] + backward
        url = body["previous"]
    assert backward == expected


def test_pages_go_beyond_drf_offset_cap(auth_client, user, general, settings):
    """More unpinned sessions than DRF's offset cap (1000 rows): the walk still ends, each once."""
    ChatSession.objects.bulk_create([ChatSession(user=user, category=general) for _ in range(1030)])

    seen = walk(auth_client, "/api/sessions/?page_size=100")

    assert len(seen) == len(set(seen)) == 1030


def encode(raw: str) -> str:
    return quote(base64.b64encode(raw.encode()).decode())


@pytest.mark.parametrize(
    "position",
    [
        "1|2020-01-01T00:00:00+00:00",
        "2|2020-01-01T00:00:00+00:00|3f2b3c1e-7b0e-4f57-9a55-0c6a3c2f1b9d",
        "1|2020-01-01T00:00:00|3f2b3c1e-7b0e-4f57-9a55-0c6a3c2f1b9d",
        "1|9999-12-31T23:59:59-14:00|3f2b3c1e-7b0e-4f57-9a55-0c6a3c2f1b9d",
        "1|2020-13-45T00:00:00+00:00|3f2b3c1e-7b0e-4f57-9a55-0c6a3c2f1b9d",
        "1|2020-01-01T00:00:00+00:00|not-a-uuid",
        "1|2020-01-01T00:00:00+00:00|3f2b3c1e-7b0e-4f57-9a55-0c6a3c2f1b9d|x",
        "0|2020-01-01T00:00:00+00:00|3f2b3c1e-7b0e-4f57-9a55-0c6a3c2f1b9d%00",
    ],
)
def test_crafted_keyset_positions_are_404(auth_client, user, general, position):
    make_session(user, general)

    for query in ("", "&q=hello"):
        assert_error(
            auth_client.get(f"/api/sessions/?cursor={encode('p=' + position)}{query}"), 404, "not_found"
        )


@pytest.mark.parametrize("rank", ["nan", "inf", "-inf", "1e400", "x"])
def test_crafted_rank_in_a_search_position_is_404(auth_client, user, general, rank):
    make_session(user, general, title="hello")
    position = f"0|{rank}|2020-01-01T00:00:00+00:00|3f2b3c1e-7b0e-4f57-9a55-0c6a3c2f1b9d"

    response = auth_client.get(f"/api/sessions/?q=hello&cursor={encode('p=' + position)}")

    assert_error(response, 404, "not_found")


def test_list_query_count_is_flat_with_every_filter(
    auth_client, user, general, django_assert_max_num_queries
):
    for session in baker.make(ChatSession, user=user, category=general, title="topic", _quantity=60):
        baker.make(Message, session=session, content="the topic again", _quantity=3)
    baker.make(ChatSession, user=user, category=general, pinned=True, _quantity=10)

    # The user (JWT), the category (when named), the page: however many sessions and messages.
    with django_assert_max_num_queries(3):
        response = auth_client.get("/api/sessions/?page_size=50&category=general&archived=all&q=topic")
    assert len(response.json()["results"]) == 50
    with django_assert_max_num_queries(3):
        assert auth_client.get(response.json()["next"]).status_code == 200


# --- Search ---------------------------------------------------------------------------------------


def test_search_finds_titles_notes_and_messages_case_insensitively(auth_client, user, general, other_user):
    by_title = make_session(user, general, minutes_ago=1, title="Trip to LISBON")
    by_notes = make_session(user, general, minutes_ago=2, notes="hotels in Lisbon, maybe")
    by_message = make_session(user, general, minutes_ago=3)
    baker.make(Message, session=by_message, role="assistant", content="Lisbon has trams.")
    make_session(user, general, title="Porto")
    theirs = make_session(other_user, general, title="lisbon", notes="lisbon")
    baker.make(Message, session=theirs, content="lisbon lisbon")

    found = listed(auth_client, "?q=lisbon")

    assert sorted(found) == sorted(ids(by_title, by_notes, by_message))
    assert str(theirs.id) not in found
    assert listed(auth_client, "?q=LisBon") == found
    assert listed(auth_client, "?q=madrid") == []


def test_search_never_shows_another_users_session(other_client, user, general, other_user):
    alices = make_session(user, general, title="alice-secret")
    baker.make(Message, session=alices, content="alice-secret words")
    bobs = make_session(other_user, general, title="bob's")

    for q in ("alice-secret", "secret", "words", "alice secret words"):
        response = other_client.get(f"/api/sessions/?q={quote(q)}&archived=all")
        assert response.status_code == 200
        assert "alice" not in response.content.decode()
    assert listed(other_client, "?q=bob") in ([], ids(bobs))  # "bob's": the word is found or not, never hers


def test_search_keeps_the_archived_and_category_filters(auth_client, user, general):
    shown = make_session(user, general, title="budget plans")
    archived = make_session(user, general, title="budget old", archived=True)

    assert listed(auth_client, "?q=budget") == ids(shown)
    assert listed(auth_client, "?q=budget&archived=true") == ids(archived)
    assert listed(auth_client, "?q=budget&category=general&archived=all").__len__() == 2


def test_blank_search_is_the_plain_list(auth_client, user, general):
    session = make_session(user, general)

    assert listed(auth_client, "?q=") == listed(auth_client, "?q=%20%20") == ids(session)


HOSTILE = [
    "'",
    '"',
    "\\",
    "'; DROP TABLE chats_chatsession; --",
    "' OR 1=1 --",
    "&|!():*",
    "a & b | !c",
    "foo:*",
    "(((",
    '"unterminated phrase',
    "-",
    "or",
    "%_%",
    "Ünïcödé 日本語 🙂",
    "x" * 500,
    "\u200b\ufeff",
]


@pytest.mark.parametrize("q", HOSTILE)
def test_any_search_text_is_answered(auth_client, user, general, q):
    make_session(user, general, title="hello world")

    response = auth_client.get(f"/api/sessions/?q={quote(q)}")

    assert response.status_code == 200, response.content
    assert ChatSession.objects.count() == 1


@pytest.mark.parametrize("q", ["a\x00b", "x" * 501, "x" * 10_000])
def test_search_text_with_nul_or_too_long_is_400(auth_client, user, general, q):
    error = assert_error(auth_client.get(f"/api/sessions/?q={quote(q)}"), 400, "validation_error")
    assert "q" in error["details"]


def test_search_finds_text_with_symbols_and_unicode(auth_client, user, general):
    session = make_session(user, general, title="Café crème")
    baker.make(Message, session=session, content="naïve façade: 日本語")

    assert listed(auth_client, f"?q={quote('café')}") == ids(session)
    assert listed(auth_client, f"?q={quote('façade')}") == ids(session)


@postgres_only
def test_search_on_postgresql_ranks_pinned_first_then_by_relevance(auth_client, user, general):
    once = make_session(user, general, minutes_ago=1, title="nothing here")
    baker.make(Message, session=once, content="a tram")
    often = make_session(user, general, minutes_ago=5, title="tram tram", notes="tram routes")
    baker.make(Message, session=often, content="tram tram tram")
    pinned = make_session(user, general, minutes_ago=9, title="other", pinned=True)
    baker.make(Message, session=pinned, content="the tram")

    assert listed(auth_client, "?q=tram") == ids(pinned, often, once)


@postgres_only
def test_search_on_postgresql_reads_web_search_syntax(auth_client, user, general):
    both = make_session(user, general, title="red apples")
    red = make_session(user, general, title="red cars")

    assert listed(auth_client, f"?q={quote('red -apples')}") == ids(red)
    assert listed(auth_client, "?q=" + quote('"red apples"')) == ids(both)


@postgres_only
def test_search_pages_walk_equal_ranks_once(auth_client, user, general):
    made = baker.make(ChatSession, user=user, category=general, title="same words", _quantity=7)
    ChatSession.objects.filter(user=user).update(updated_at=timezone.now())

    seen = walk(auth_client, "/api/sessions/?q=same&page_size=2")

    assert sorted(seen) == sorted(ids(*made)) and len(seen) == 7


@requires_postgres
def test_search_query_plan_uses_both_gin_indexes(user, other_user, general):
    for owner in (user, other_user):
        sessions = ChatSession.objects.bulk_create(
            [ChatSession(user=owner, category=general, title=f"chat {i}") for i in range(300)]
        )
        Message.objects.bulk_create(
            [
                Message(session=s, role="user", content=f"words about topic {i}")
                for s in sessions
                for i in range(10)
            ]
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chats_chatsession")
        cursor.execute("ANALYZE chats_message")
        cursor.execute("SET LOCAL enable_seqscan = off")

    plan = session_rows_for_user(user=user, q="needle").explain()

    assert "Bitmap Index Scan on chats_session_search" in plan, plan
    assert "Bitmap Index Scan on chats_message_search" in plan, plan


# --- Exports -------------------------------------------------------------------------------------
