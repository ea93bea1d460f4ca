"""``OPTIONS`` describes what a client sends: the input serializer behind each method
(core.metadata.InputMetadata), never the answer's read-only fields, and never a 500."""

import pytest
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from model_bakery import baker

from chats.models import ChatSession
from core.metadata import InputMetadata

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(user, general_category):
    return baker.make(ChatSession, user=user, category=general_category)


def test_options_on_sessions_lists_the_create_body_with_category_writable(auth_client):
    response = auth_client.options("/api/sessions/")

    assert response.status_code == 200
    assert response.json()["actions"] == {
        "POST": {
            "category": {
                "type": "slug",
                "required": True,
                "read_only": False,
                "label": "Category",
                "max_length": 50,
            },
            "title": {
                "type": "string",
                "required": False,
                "read_only": False,
                "label": "Title",
                "max_length": 200,
            },
        }
    }


def test_options_on_a_session_lists_its_update_and_its_notes(auth_client, session):
    detail = auth_client.options(f"/api/sessions/{session.id}/").json()["actions"]
    notes = auth_client.options(f"/api/sessions/{session.id}/notes/").json()["actions"]

    assert {method: set(fields) for method, fields in detail.items()} == {
        "PATCH": {"title", "pinned", "archived"}
    }
    assert {method: set(fields) for method, fields in notes.items()} == {"PUT": {"notes"}}
    assert notes["PUT"]["notes"]["read_only"] is False


def test_options_on_another_users_session_lists_nothing_to_send(other_client, session):
    response = other_client.options(f"/api/sessions/{session.id}/notes/")

    assert response.status_code == 200
    assert "actions" not in response.json()


@pytest.mark.parametrize(
    ("path", "method", "fields"),
    [
        ("/auth/register", "POST", {"login_id", "password", "display_name", "email"}),
        ("/auth/login", "POST", {"login_id", "password"}),
        ("/auth/token/refresh", "POST", {"refresh"}),
        ("/auth/logout", "POST", {"refresh"}),
        ("/auth/google", "POST", {"id_token"}),
        ("/auth/me", "PATCH", {"display_name", "email"}),
        ("/auth/password", "POST", {"old_password", "new_password"}),
        ("/api/keys/", "POST", {"name", "expires_at", "monthly_cap", "models"}),
    ],
)
def test_options_on_the_account_urls_lists_their_bodies_instead_of_a_500(auth_client, path, method, fields):
    """DRF's metadata asked the /auth/ views for a ``serializer_class`` they do not have."""
    response = auth_client.options(path)

    assert response.status_code == 200, response.content
    actions = response.json()["actions"]
    assert set(actions) == {method}
    assert set(actions[method]) == fields
    assert not any(field["read_only"] for field in actions[method].values())


def test_options_lists_every_body_as_the_schema_describes_it(auth_client, session):
    """Wherever OPTIONS is InputMetadata's, each method with a JSON body lists the fields the schema
    gives that body, and requires the ones it requires: the two cannot drift apart."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    compared = []
    for path, item in schema["paths"].items():
        url = path.replace("{id}", str(session.id)).replace("{message_id}", str(session.id))
        view = getattr(resolve(url).func, "cls", None)
        if view is None or not issubclass(view.metadata_class, InputMetadata):
            continue  # a plain Django view (the reply endpoints, /v1/), or a view's own metadata
        for method, operation in item.items():
            ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            if method not in {"post", "put", "patch"} or "$ref" not in ref.get("schema", {}):
                continue
            options = auth_client.options(url)
            if method.upper() not in options["Allow"]:
                continue  # served by a plain view beside the DRF one that answers OPTIONS
            body = components[ref["schema"]["$ref"].rsplit("/", 1)[-1]]
            listed = options.json().get("actions", {}).get(method.upper(), {})
            assert set(listed) == set(body["properties"]), (method, path)
            assert {name for name, field in listed.items() if field["required"]} == set(
                body.get("required", [])
            ), (method, path)
            compared.append(f"{method.upper()} {path}")

    assert {"POST /api/sessions/", "PATCH /api/sessions/{id}/", "POST /api/keys/"} <= set(compared)
