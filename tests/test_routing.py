"""Every API route answers with and without its trailing slash (core/routing.py), and the OpenAPI
schema names every route once, in its canonical spelling.

The routes are read from the URLconf itself, so a route added without its twin, or left out of the
schema, fails here without anyone listing it.
"""

import re

import httpx
import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.schemas.generators import EndpointEnumerator
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.services import api_key_create
from chats.models import ChatSession
from core.routing import canonical_path
from tests.helpers.clients import PASSWORD

PREFIXES = ("/api/", "/auth/", "/v1/")
# The schema and its viewer are not operations of the API (SERVE_INCLUDE_SCHEMA is off).
NOT_IN_SCHEMA = {"/api/schema/", "/api/docs/"}
AN_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def _routes(patterns=None, prefix: str = "", namespace: str = "") -> list[tuple[str, str]]:
    """``(path, name)`` of every route, ``{param}`` for its parameters, ``name`` with its namespace."""
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        regex = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            found += _routes(pattern.url_patterns, regex, inner)
        elif isinstance(pattern, URLPattern):
            path = EndpointEnumerator().get_path_from_regex(regex)
            found.append((path, f"{namespace}{pattern.name}" if pattern.name else ""))
    return found


API_ROUTES = sorted(
    {canonical_path(path): name for path, name in _routes() if path.startswith(PREFIXES)}.items()
)


def _example(path: str) -> str:
    return re.sub(r"{\w+}", AN_ID, path)


def _other_spelling(path: str) -> str:
    return path[:-1] if path.endswith("/") else f"{path}/"


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def test_the_urlconf_has_the_api_routes():
    """What the tests below walk: if the walk found nothing, they would pass on nothing."""
    paths = [path for path, _ in API_ROUTES]

    assert "/api/sessions/{pk}/" in paths
    assert "/auth/login/" in paths
    assert "/v1/chat/completions" in paths
    assert len(paths) >= 30


@pytest.mark.parametrize(("path", "name"), API_ROUTES, ids=[path for path, _ in API_ROUTES])
def test_both_spellings_resolve_to_the_same_view_and_reverse_to_the_canonical_one(path, name):
    canonical = resolve(_example(path))
    other = resolve(_example(_other_spelling(path)))

    assert other.func is canonical.func
    assert other.kwargs == canonical.kwargs
    assert other.url_name == canonical.url_name
    assert reverse(name, kwargs=canonical.kwargs) == _example(path)


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "name"), API_ROUTES, ids=[path for path, _ in API_ROUTES])
def test_both_spellings_answer_a_post_alike_and_never_redirect(api_client, debug, path, name):
    """Django's slash redirect was a RuntimeError for a POST under DEBUG and an HTML 301 without."""
    answers = [
        api_client.post(_example(spelling), {}, format="json") for spelling in (path, _other_spelling(path))
    ]

    statuses = [answer.status_code for answer in answers]
    assert statuses[0] == statuses[1], [answer.content for answer in answers]
    assert statuses[0] < 300 or 400 <= statuses[0] < 500, answers[0].content


def test_the_schema_names_every_route_once_in_its_canonical_spelling():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {re.sub(r"{\w+}", "{}", path) for path in schema["paths"]}
    routed = {
        re.sub(r"{\w+}", "{}", path)
        for path, _ in [*API_ROUTES, ("/healthz", ""), ("/readyz", ""), ("/metrics", "")]
        if path not in NOT_IN_SCHEMA
    }

    assert documented == routed
    assert {path for path in documented if path.startswith("/v1/") and path.endswith("/")} == set()
    assert {
        path for path in documented if path.startswith(("/api/", "/auth/")) and not path.endswith("/")
    } == set()


# --- Real requests, through uvicorn, following no redirect -----------------------------------


def _bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


@pytest.mark.django_db(transaction=True)
def test_a_post_and_a_patch_without_the_slash_change_a_session(live_asgi_url, debug, user, general_category):
    with httpx.Client(base_url=live_asgi_url, headers=_bearer(user), follow_redirects=False) as http:
        created = http.post("/api/sessions", json={"category": "general", "title": "no slash"})
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]

        patched = http.patch(f"/api/sessions/{session_id}", json={"title": "renamed"})

    assert patched.status_code == 200, patched.text
    assert ChatSession.objects.get(pk=session_id, user=user).title == "renamed"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", ["/auth/login/", "/auth/login"])
def test_login_with_or_without_the_slash(live_asgi_url, debug, user, url):
    response = httpx.post(
        f"{live_asgi_url}{url}", json={"login_id": "alice", "password": PASSWORD}, follow_redirects=False
    )

    assert response.status_code == 200, response.text
    assert set(response.json()) >= {"access", "refresh"}


@pytest.mark.django_db(transaction=True)
def test_v1_with_a_trailing_slash_answers_as_without(live_asgi_url, debug, user, general_category):
    _, secret = api_key_create(user=user, name="slash")
    headers = {"Authorization": f"Bearer {secret}"}
    body = {"model": "general", "messages": [{"role": "user", "content": "Hi"}]}
    with httpx.Client(base_url=live_asgi_url, headers=headers, follow_redirects=False, timeout=10) as http:
        models = http.get("/v1/models/")
        completion = http.post("/v1/chat/completions/", json=body)

    assert models.status_code == 200, models.text
    assert [model["id"] for model in models.json()["data"]] == ["general"]
    assert completion.status_code == 200, completion.text
    assert completion.json()["object"] == "chat.completion"
