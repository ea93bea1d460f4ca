import uuid

import pytest
from model_bakery import baker

from chats.models import Category, ChatSession, Message
from tests.helpers.asserts import assert_error
from tests.helpers.catalogue import category_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def general():
    return Category.objects.get(slug="general")


@pytest.fixture
def session(user, general):
    return baker.make(ChatSession, user=user, category=general, title="Hello")


def test_general_category_exists_after_migrate(api_client):
    response = api_client.get("/api/categories/")
    assert response.status_code == 200
    [general] = response.json()["results"]
    assert general == {
        "slug": "general",
        "name": "General",
        "description": "Ask anything.",
        "prompt_price": "1.0000",
        "completion_price": "2.0000",
    }


def test_categories_lists_only_active_ones(api_client):
    category_make("hidden", is_active=False)
    category_make("code", is_active=True, order=5)
    slugs = [c["slug"] for c in api_client.get("/api/categories/").json()["results"]]
    assert slugs == ["general", "code"]


def test_create_session(auth_client):
    response = auth_client.post("/api/sessions/", {"category": "general", "title": "Trip"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["category"] == "general"
    assert body["title"] == "Trip"
    assert body["message_count"] == 0
    assert body["notes"] == ""
    uuid.UUID(body["id"])
    assert ChatSession.objects.get(pk=body["id"]).user.login_id == "alice"


def test_create_session_unknown_category_is_400(auth_client):
    response = auth_client.post("/api/sessions/", {"category": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "category" in response.json()["error"]["details"]
    assert not ChatSession.objects.exists()


def test_create_session_inactive_category_is_400(auth_client, general):
    Category.objects.filter(pk=general.pk).update(is_active=False)
    response = auth_client.post("/api/sessions/", {"category": "general"}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "body", [{}, {"category": 5}, {"category": ["general"]}, {"category": "general", "title": {}}]
)
def test_create_session_wrong_types_are_400(auth_client, body):
    response = auth_client.post("/api/sessions/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_create_session_malformed_json_is_400(auth_client):
    response = auth_client.post("/api/sessions/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_sessions_need_authentication(api_client):
    response = api_client.get("/api/sessions/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_list_sessions_most_recent_activity_first(auth_client, user, general, other_user):
    old = baker.make(ChatSession, user=user, category=general, title="old")
    new = baker.make(ChatSession, user=user, category=general, title="new")
    baker.make(ChatSession, user=other_user, category=general)
    ChatSession.objects.filter(pk=old.pk).update(updated_at=new.updated_at.replace(year=2000))
    results = auth_client.get("/api/sessions/").json()["results"]
    assert [s["id"] for s in results] == [str(new.id), str(old.id)]
    # Activity on the old one moves it to the top.
    auth_client.patch(f"/api/sessions/{old.id}/", {"title": "renamed"}, format="json")
    results = auth_client.get("/api/sessions/").json()["results"]
    assert [s["id"] for s in results] == [str(old.id), str(new.id)]


def test_list_sessions_query_count_is_flat(auth_client, user, general, django_assert_max_num_queries):
    baker.make(ChatSession, user=user, category=general, _quantity=120)
    baker.make(ChatSession, user=user, category=general, message_count=3, _quantity=30)
    with django_assert_max_num_queries(3):
        response = auth_client.get("/api/sessions/?page_size=100")
    body = response.json()
    assert len(body["results"]) == 100
    assert body["next"] is not None
    assert sorted(s["message_count"] for s in body["results"])[-1] == 3


def test_list_items_are_what_the_session_serializer_shows(auth_client, user, general):
    """The list is built from ``values()`` rows, the other endpoints from instances: same JSON."""
    active = baker.make(
        ChatSession, user=user, category=general, title="Ünïcode", notes="n\n", message_count=2
    )
    active.last_message_at = active.updated_at
    active.save()
    idle = baker.make(ChatSession, user=user, category=general)

    listed = {item["id"]: item for item in auth_client.get("/api/sessions/").json()["results"]}

    for session in (active, idle):
        shown = auth_client.get(f"/api/sessions/{session.id}/").json()
        assert listed[str(session.id)] == shown
    assert listed[str(active.id)]["message_count"] == 2
    assert listed[str(active.id)]["last_message_at"].endswith("Z")
    assert listed[str(idle.id)]["last_message_at"] is None


def test_pagination_walks_every_session_once(auth_client, user, general):
    made = {str(s.id) for s in baker.make(ChatSession, user=user, category=general, _quantity=45)}
    seen, url = [], "/api/sessions/"
    while url:
        body = auth_client.get(url).json()
        seen += [s["id"] for s in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(made)


def test_retrieve_session(auth_client, session):
    ChatSession.objects.filter(pk=session.pk).update(message_count=2)
    body = auth_client.get(f"/api/sessions/{session.id}/").json()
    assert body["id"] == str(session.id)
    assert body["message_count"] == 2


def test_rename_session(auth_client, session):
    response = auth_client.patch(f"/api/sessions/{session.id}/", {"title": "Renamed"}, format="json")
    assert response.status_code == 200
    assert response.json()["title"] == "Renamed"
    session.refresh_from_db()
    assert session.title == "Renamed"


def test_rename_session_title_too_long_is_400(auth_client, session):
    response = auth_client.patch(f"/api/sessions/{session.id}/", {"title": "x" * 201}, format="json")
    assert response.status_code == 400
    assert "title" in response.json()["error"]["details"]


def test_put_notes(auth_client, session):
    response = auth_client.put(
        f"/api/sessions/{session.id}/notes/", {"notes": "remember the milk"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["notes"] == "remember the milk"
    session.refresh_from_db()
    assert session.notes == "remember the milk"


def test_notes_missing_field_is_400(auth_client, session):
    response = auth_client.put(f"/api/sessions/{session.id}/notes/", {}, format="json")
    assert response.status_code == 400
    assert "notes" in response.json()["error"]["details"]


def test_delete_session_takes_its_messages(auth_client, session):
    baker.make(Message, session=session, role="user", _quantity=3)
    response = auth_client.delete(f"/api/sessions/{session.id}/")
    assert response.status_code == 204
    assert not ChatSession.objects.filter(pk=session.pk).exists()
    assert not Message.objects.filter(session_id=session.pk).exists()


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"title": "mine now"}),
        ("delete", "", None),
        ("put", "notes/", {"notes": "mine"}),
        ("get", "messages/", None),
        ("post", "messages/", {"content": "hi"}),
    ],
)
def test_another_users_session_is_not_found(other_client, session, method, suffix, body):
    response = getattr(other_client, method)(f"/api/sessions/{session.id}/{suffix}", body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    session.refresh_from_db()
    assert session.title == "Hello"
    assert session.notes == ""
    assert not session.messages.exists()


def test_unknown_session_is_not_found(auth_client):
    response = auth_client.get(f"/api/sessions/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_history_oldest_first_and_flat_queries(auth_client, session, django_assert_max_num_queries):
    parent = None
    for _ in range(300):
        parent = baker.make(Message, session=session, role="user", content="x", parent=parent)
    first = Message.objects.filter(session=session).order_by("created_at").first()
    with django_assert_max_num_queries(4):
        response = auth_client.get(f"/api/sessions/{session.id}/messages/?page_size=100")
    body = response.json()
    assert len(body["results"]) == 100
    assert body["results"][0]["id"] == str(first.id)
    times = [m["created_at"] for m in body["results"]]
    assert times == sorted(times)
    assert set(body["results"][0]) == {
        "id",
        "parent_id",
        "role",
        "content",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "finish_reason",
        "created_at",
    }


@pytest.mark.parametrize(
    "body",
    ["{nope", "[" * 100_000 + "]" * 100_000, "[]", '"hi"', "null", '{"content": 5}', "{}"],
    ids=["malformed", "nested-too-deep", "list", "string", "null", "number", "no-content"],
)
def test_a_message_body_the_client_got_wrong_is_400_and_stores_nothing(auth_client, session, body):
    response = auth_client.generic(
        "POST", f"/api/sessions/{session.id}/messages/", body, content_type="application/json"
    )

    assert_error(response, 400, "validation_error")
    assert not Message.objects.exists()


def test_an_upper_case_session_id_reaches_the_same_session_on_every_route(
    auth_client, user, general_category
):
    session = baker.make(ChatSession, user=user, category=general_category, title="Mine")
    base = f"/api/sessions/{str(session.id).upper()}/"

    assert auth_client.get(base).json()["id"] == str(session.id)
    assert auth_client.patch(base, {"title": "Renamed"}, format="json").status_code == 200
    assert auth_client.put(f"{base}notes/", {"notes": "n"}, format="json").status_code == 200
    reply = auth_client.post(
        f"{base}messages/", {"content": "Hi"}, format="json", HTTP_ACCEPT="application/json"
    )
    assert reply.status_code == 201, reply.content
    assert len(auth_client.get(f"{base}messages/").json()["results"]) == 2
    assert auth_client.delete(base).status_code == 204
    assert not ChatSession.objects.filter(pk=session.id).exists()
