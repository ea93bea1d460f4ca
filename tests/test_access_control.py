"""Access control, endpoint by endpoint: who may call what, and what the others get.

Every operation of the spec is in ``ENDPOINTS`` (a test checks the table against the OpenAPI schema,
so a new endpoint cannot be forgotten here). Each is then called

- anonymously: 401 ``not_authenticated`` in the error shape, except the public ones;
- with a bearer token that is not valid: 401 ``token_not_valid``;
- as Bob, on Alice's session: 404 ``not_found``, never a trace of her data, nothing of hers changed;
- with the still-unexpired access token of a deactivated user: 401, nothing changed;

and then the admin is walked as a logged-in user who is not staff, and bodies over the size limit are
sent to a JSON endpoint and to the streaming POST (in-process, and through uvicorn).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.generators import SchemaGenerator
from model_bakery import baker
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import ApiKey, User
from accounts.services import api_key_create, users_deactivate
from chats.models import ChatSession, Message
from tests.fakes.google_idp import GoogleIdentityPlatform
from tests.helpers.asserts import assert_error
from tests.helpers.clients import PASSWORD, bearer_client
from wallets.codes import code_batch_create
from wallets.models import Hold, LedgerEntry, Wallet
from wallets.services import wallet_top_up

ALICE_TITLE = "alice-secret-title"
ALICE_NOTES = "alice-secret-notes"
ALICE_MESSAGE = "alice-secret-message"
ALICE_REPLY = "alice-secret-reply"
ALICE_BALANCE = 100 + 1234  # the sign-up bonus and a top-up: a number Bob's wallet never shows


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # "{id}" stands for the session under test (Alice's API key under /api/keys/)
    body: Callable[["World"], Any] | None = None
    public: bool = False
    # What a public endpoint answers an anonymous caller with this body.
    anonymous_status: int | None = None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def on_a_session(self) -> bool:
        return "{id}" in self.path


@dataclass
class World:
    alice: User
    bob: User
    session: ChatSession  # Alice's
    google: GoogleIdentityPlatform
    api_key: ApiKey  # Alice's
    reply_id: object = None  # Alice's first reply, remembered: it stays the same URL once deleted

    def url(self, endpoint: Endpoint) -> str:
        target = self.api_key.id if endpoint.path.startswith("/api/keys/") else self.session.id
        if self.reply_id is None and "{message_id}" in endpoint.path:
            reply = Message.objects.filter(session=self.session, role="assistant").first()
            self.reply_id = reply and reply.id
        return endpoint.path.replace("{id}", str(target)).replace("{message_id}", str(self.reply_id))


ENDPOINTS = [
    # --- public: anyone may call them, and they answer without a token ---
    Endpoint(
        "POST",
        "/auth/register/",
        lambda w: {"login_id": "mallory", "password": "a-long-enough-pass-123"},
        public=True,
        anonymous_status=201,
    ),
    Endpoint(
        "POST",
        "/auth/login/",
        lambda w: {"login_id": "alice", "password": PASSWORD},
        public=True,
        anonymous_status=200,
    ),
    Endpoint(
        "POST",
        "/auth/token/refresh/",
        lambda w: {"refresh": str(RefreshToken.for_user(w.alice))},
        public=True,
        anonymous_status=200,
    ),
    Endpoint(
        "POST",
        "/auth/logout/",
        lambda w: {"refresh": str(RefreshToken.for_user(w.alice))},
        public=True,
        anonymous_status=204,
    ),
    Endpoint(
        "POST",
        "/auth/google/",  # with a token signed by the loopback stand-in for Google
        lambda w: {"id_token": w.google.id_token()},
        public=True,
        anonymous_status=201,
    ),
    Endpoint("GET", "/api/categories/", public=True, anonymous_status=200),
    Endpoint("GET", "/healthz", public=True, anonymous_status=200),
    Endpoint("GET", "/readyz", public=True, anonymous_status=200),
    Endpoint("GET", "/metrics", public=True, anonymous_status=404),  # off: no METRICS_TOKEN in tests
    Endpoint("GET", "/api/schema/", public=True, anonymous_status=200),
    Endpoint("GET", "/api/docs/", public=True, anonymous_status=200),
    # --- the caller's own things: a bearer token is required ---
    Endpoint("GET", "/auth/me/"),
    Endpoint("PATCH", "/auth/me/", lambda w: {"display_name": "Mallory", "email": "mallory@example.com"}),
    Endpoint(
        "POST", "/auth/password/", lambda w: {"old_password": PASSWORD, "new_password": "new-pass-42-x"}
    ),
    Endpoint("GET", "/api/wallet/"),
    Endpoint("POST", "/api/wallet/"),
    Endpoint("GET", "/api/wallet/transactions/"),
    Endpoint(
        "POST",
        "/api/wallet/redeem/",
        lambda w: {"code": code_batch_create(name="t", count=1, credits=5)[1][0]},
    ),
    Endpoint("GET", "/api/keys/"),
    Endpoint("POST", "/api/keys/", lambda w: {"name": "mallory's"}),
    Endpoint("DELETE", "/api/keys/{id}/"),
    Endpoint("GET", "/api/sessions/"),
    Endpoint("POST", "/api/sessions/", lambda w: {"category": "general", "title": "mine"}),
    Endpoint("GET", "/api/sessions/{id}/"),
    Endpoint(
        "PATCH", "/api/sessions/{id}/", lambda w: {"title": "taken over", "pinned": True, "archived": True}
    ),
    Endpoint("PUT", "/api/sessions/{id}/notes/", lambda w: {"notes": "taken over"}),
    Endpoint("DELETE", "/api/sessions/{id}/"),
    Endpoint("GET", "/api/sessions/{id}/messages/"),
    Endpoint("POST", "/api/sessions/{id}/messages/", lambda w: {"content": "tell me her secrets"}),
    Endpoint("POST", "/api/sessions/{id}/messages/{message_id}/regenerate/"),
    Endpoint("GET", "/api/sessions/{id}/messages/{message_id}/events/"),
    Endpoint("POST", "/api/sessions/{id}/messages/{message_id}/stop/"),
    Endpoint("GET", "/api/sessions/{id}/export/"),
    Endpoint("GET", "/api/export/"),
    Endpoint("GET", "/api/usage/"),
]
PUBLIC = [endpoint for endpoint in ENDPOINTS if endpoint.public]
PRIVATE = [endpoint for endpoint in ENDPOINTS if not endpoint.public]
ON_A_SESSION = [endpoint for endpoint in PRIVATE if endpoint.on_a_session]
# The schema and its viewer: not operations of the API, so not in the schema; public by design.
NOT_IN_SCHEMA = {"GET /api/schema/", "GET /api/docs/"}
# OpenAI's API for programs: a personal API key, never a JWT, and OpenAI's error shape
# (test_v1_refuses_anything_but_a_live_api_key below; the rest in chats/v1/tests).
V1_ENDPOINTS = [
    Endpoint("GET", "/v1/models"),
    Endpoint("GET", "/v1/models/{id}"),
    Endpoint("POST", "/v1/chat/completions", lambda w: {"model": "general", "messages": []}),
    Endpoint("POST", "/v1/responses", lambda w: {"model": "general", "input": "hi"}),
    Endpoint("POST", "/v1/embeddings", lambda w: {"model": "general", "input": "hi"}),
]


def ids(endpoints: list[Endpoint]) -> list[str]:
    return [endpoint.id for endpoint in endpoints]


@pytest.fixture
def world(user, other_user, google_configured, general_category) -> World:
    """Alice with a session that holds a conversation, notes and a topped-up wallet; Bob with his own."""
    session = baker.make(
        ChatSession, user=user, category=general_category, title=ALICE_TITLE, notes=ALICE_NOTES
    )
    baker.make(Message, session=session, role="user", content=ALICE_MESSAGE, status="complete")
    baker.make(Message, session=session, role="assistant", content=ALICE_REPLY, status="complete")
    wallet_top_up(user=user, amount=ALICE_BALANCE - 100, reason="alice's top-up")
    baker.make(ChatSession, user=other_user, category=general_category, title="bob's own chat")
    api_key, _ = api_key_create(user=user, name="alice-secret-key")
    return World(alice=user, bob=other_user, session=session, google=google_configured, api_key=api_key)


def call(client: APIClient, endpoint: Endpoint, world: World, **extra):
    body = endpoint.body(world) if endpoint.body else None
    return getattr(client, endpoint.method.lower())(world.url(endpoint), body, format="json", **extra)


def alice_snapshot(world: World) -> dict:
    """Everything of Alice's that an endpoint could change."""
    alice = User.objects.get(pk=world.alice.pk)
    session = ChatSession.objects.filter(pk=world.session.pk).values().first()
    wallet = Wallet.objects.filter(user=alice).values("balance", "held").first()
    return {
        "user": (alice.login_id, alice.email, alice.display_name, alice.password, alice.is_active),
        "sessions": list(ChatSession.objects.filter(user=alice).values().order_by("pk")),
        "session": session,
        "messages": list(Message.objects.filter(session__user=alice).values().order_by("pk")),
        "wallet": wallet,
        "ledger": list(LedgerEntry.objects.filter(wallet__user=alice).values_list("pk", flat=True)),
        "holds": Hold.objects.filter(wallet__user=alice).count(),
        "api_keys": list(ApiKey.objects.filter(user=alice).values().order_by("pk")),
    }


def assert_nothing_of_alices(response) -> None:
    text = response.getvalue().decode()  # streamed (the account export) or not
    for secret in (str(ALICE_BALANCE), ALICE_TITLE, ALICE_NOTES, ALICE_MESSAGE, ALICE_REPLY, "alice"):
        assert secret not in text, f"{secret!r} leaked: {text[:500]}"


# --- The table is the spec --------------------------------------------------


def test_table_covers_every_operation_of_the_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }

    assert operations == set(ids(ENDPOINTS + V1_ENDPOINTS)) - NOT_IN_SCHEMA


def test_schema_security_matches_the_table():
    """The schema tells clients which operations need a token; it must say what the table says."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for endpoint in ENDPOINTS:
        if endpoint.id in NOT_IN_SCHEMA:
            continue
        security = schema["paths"][endpoint.path][endpoint.method.lower()].get("security", [])
        anonymous_allowed = {} in security
        assert anonymous_allowed == endpoint.public, (endpoint.id, security)
    for endpoint in V1_ENDPOINTS:
        security = schema["paths"][endpoint.path][endpoint.method.lower()]["security"]
        assert security == [{"apiKeyAuth": []}], (endpoint.id, security)


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", V1_ENDPOINTS, ids=ids(V1_ENDPOINTS))
@pytest.mark.parametrize("credential", ["none", "alices-jwt", "unknown-key"])
def test_v1_refuses_anything_but_a_live_api_key(api_client, world, endpoint, credential):
    """Alice's JWT is no key: a /v1/ request is billed to a key's owner, and only a key names one."""
    before = alice_snapshot(world)
    if credential == "alices-jwt":
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(world.alice).access_token}")
    elif credential == "unknown-key":
        api_client.credentials(HTTP_AUTHORIZATION="Bearer pk-not-a-key-of-anyone")
    body = endpoint.body(world) if endpoint.body else None
    url = endpoint.path.replace("{id}", "general")

    response = getattr(api_client, endpoint.method.lower())(url, body, format="json")

    assert response.status_code == 401, response.content
    assert {"message", "type", "param", "code"} <= set(response.json()["error"])  # OpenAI's shape
    assert_nothing_of_alices(response)
    assert alice_snapshot(world) == before


# --- (a) anonymous ---------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", PRIVATE, ids=ids(PRIVATE))
def test_anonymous_is_401_not_authenticated(api_client, world, endpoint):
    before = alice_snapshot(world)

    response = call(api_client, endpoint, world)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert_nothing_of_alices(response)
    assert alice_snapshot(world) == before


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", PUBLIC, ids=ids(PUBLIC))
def test_anonymous_may_call_the_public_endpoints(api_client, world, endpoint):
    response = call(api_client, endpoint, world)

    assert response.status_code == endpoint.anonymous_status, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", PRIVATE, ids=ids(PRIVATE))
@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Bearer ", "Basic YWxpY2U6cGFzc3dvcmQ=", "Bearer {refresh}"],
    ids=["garbage", "empty", "basic-auth", "refresh-as-access"],
)
def test_a_token_that_is_not_valid_is_401(api_client, world, endpoint, authorization):
    before = alice_snapshot(world)
    api_client.credentials(
        HTTP_AUTHORIZATION=authorization.replace("{refresh}", str(RefreshToken.for_user(world.alice)))
    )

    response = call(api_client, endpoint, world)

    # A scheme other than Bearer is no credential at all; a bad bearer token is a wrong one.
    code = "not_authenticated" if authorization.startswith("Basic") else "token_not_valid"
    assert_error(response, 401, code)
    assert_nothing_of_alices(response)
    assert alice_snapshot(world) == before


# --- (b) another user -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ON_A_SESSION, ids=ids(ON_A_SESSION))
def test_another_user_on_alices_session_is_404(world, endpoint):
    before = alice_snapshot(world)

    response = call(bearer_client(world.bob), endpoint, world)

    assert_error(response, 404, "not_found")
    assert_nothing_of_alices(response)
    assert str(world.session.id) not in response.content.decode()
    assert alice_snapshot(world) == before
    # The provider was never called: Bob has no new message either, and no hold.
    assert not Message.objects.filter(session__user=world.bob).exists()
    assert not Hold.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ON_A_SESSION, ids=ids(ON_A_SESSION))
def test_a_session_that_does_not_exist_is_the_same_404(world, endpoint):
    """Bob cannot tell Alice's session from no session at all."""
    theirs = call(bearer_client(world.bob), endpoint, world)
    ChatSession.objects.filter(pk=world.session.pk).delete()

    nobodys = call(bearer_client(world.bob), endpoint, world)

    assert (nobodys.status_code, nobodys.json()) == (theirs.status_code, theirs.json())


OWN_THINGS = [endpoint for endpoint in PRIVATE if not endpoint.on_a_session]


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", OWN_THINGS, ids=ids(OWN_THINGS))
def test_another_user_sees_and_changes_only_their_own(world, endpoint):
    before = alice_snapshot(world)

    response = call(bearer_client(world.bob), endpoint, world)

    assert 200 <= response.status_code < 300, response.content
    assert_nothing_of_alices(response)
    assert alice_snapshot(world) == before


@pytest.mark.django_db
def test_another_users_lists_hold_only_their_rows(world):
    bob = bearer_client(world.bob)

    sessions = bob.get("/api/sessions/").json()["results"]
    ledger = bob.get("/api/wallet/transactions/").json()["results"]

    assert [s["id"] for s in sessions] == [str(s.pk) for s in ChatSession.objects.filter(user=world.bob)]
    assert {e["id"] for e in ledger} == set(
        LedgerEntry.objects.filter(wallet__user=world.bob).values_list("pk", flat=True)
    )
    assert bob.get("/api/wallet/").json()["balance"] == Wallet.objects.get(user=world.bob).balance
    assert bob.get("/auth/me").json()["login_id"] == "bob"


# --- (c) a deactivated user's token ------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", PRIVATE, ids=ids(PRIVATE))
def test_deactivated_users_unexpired_access_token_is_401(world, endpoint):
    client = bearer_client(world.alice)  # issued while she was active; it has not expired
    users_deactivate(users=[world.alice])
    before = alice_snapshot(world)

    response = call(client, endpoint, world)

    assert_error(response, 401, "token_not_valid")
    assert_nothing_of_alices(response)
    assert alice_snapshot(world) == before


@pytest.mark.django_db
def test_deactivated_user_cannot_refresh_or_log_in(api_client, world):
    refresh = str(RefreshToken.for_user(world.alice))
    users_deactivate(users=[world.alice])

    assert_error(
        api_client.post("/auth/token/refresh", {"refresh": refresh}, format="json"), 401, "token_not_valid"
    )
    assert_error(
        api_client.post("/auth/login", {"login_id": "alice", "password": PASSWORD}, format="json"),
        401,
        "invalid_credentials",
    )


# --- (d) the admin is for staff ---------------------------------------------


def _admin_url_names() -> set[str]:
    """The name of every URL under /admin/, custom views included."""
    [admin_urls] = [
        p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and p.app_name == "admin"
    ]

    def names(patterns) -> set[str]:
        found = set()
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found |= names(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and pattern.name:
                found.add(pattern.name)
        return found

    return names(admin_urls.url_patterns)


# Public on purpose: the sign-in page itself, and signing out.
ADMIN_PUBLIC = {"login", "logout"}
ADMIN_PAGES = [
    *sorted(_admin_url_names() - ADMIN_PUBLIC),
    # Unnamed: an object's bare URL (redirects to its change page), and the catch-all.
    "object-bare-url",
    "catch-all",
]


def admin_url(name: str, world: World) -> str:
    """The URL of the admin page ``name``, on one of Alice's objects where it takes one."""
    objects = {
        "accounts_user": world.alice.pk,
        "wallets_wallet": Wallet.objects.get(user=world.alice).pk,
        "wallets_ledgerentry": LedgerEntry.objects.filter(wallet__user=world.alice).first().pk,
        "chats_chatsession": world.session.pk,
        "chats_category": world.session.category.pk,
        "accounts_apikey": world.api_key.pk,
    }
    if name == "object-bare-url":
        return reverse("admin:accounts_user_changelist") + f"{world.alice.pk}/"
    if name == "catch-all":
        return reverse("admin:index") + "no-such-page/"
    if name == "app_list":
        return reverse("admin:app_list", args=["wallets"])
    if name == "view_on_site":
        content_type = ContentType.objects.get_for_model(ChatSession)
        return reverse("admin:view_on_site", args=[content_type.pk, world.session.pk])
    if name == "auth_user_password_change":
        return reverse("admin:auth_user_password_change", args=[world.alice.pk])
    try:
        return reverse(f"admin:{name}")
    except NoReverseMatch:  # a per-object page: MODEL_change, MODEL_delete, MODEL_history, MODEL_adjust
        # Models with nothing of Alice's (groups, tokens, allauth's) get an id: the page is refused
        # before the object is looked up.
        return reverse(f"admin:{name}", args=[objects.get(name.rpartition("_")[0], 1)])


def test_admin_pages_list_is_complete():
    """A new admin URL fails here until it is walked (or named public, with a reason)."""
    assert {"index", "wallets_wallet_adjust", "accounts_user_change", "view_on_site"} <= set(ADMIN_PAGES)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_admin_is_staff_only(world, staff_user, name):
    url = admin_url(name, world)
    login = reverse("admin:login")
    not_staff = Client()
    not_staff.force_login(world.alice)
    before = alice_snapshot(world)

    for client in (not_staff, Client()):
        for method in ("get", "post"):
            # A POST carries what a top-up, an edit or a deletion would need; none may happen.
            data = {"kind": "topup", "amount": "1000", "reason": "free money", "post": "yes"}
            response = getattr(client, method)(url, data if method == "post" else None)
            assert response.status_code == 302, (method, response.status_code)
            assert response["Location"].startswith(f"{login}?next="), response["Location"]

    assert alice_snapshot(world) == before
    # The same page for staff is no sign-in redirect: the walk visits real pages.
    staff = Client()
    staff.force_login(staff_user)
    response = staff.get(url)
    assert not (response.status_code == 302 and response["Location"].startswith(login)), name


# --- (e) the request body size limit -------------------------------------------


def oversize_json(settings, **fields) -> bytes:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps({**fields, "padding": "x" * limit}).encode()
    assert len(body) > limit
    return body


LIMITED = [
    Endpoint("POST", "/auth/login", public=True),
    Endpoint("PATCH", "/api/sessions/{id}/"),
    Endpoint("PUT", "/api/sessions/{id}/notes/"),
    Endpoint("POST", "/api/sessions/{id}/messages/"),
]
STREAM = LIMITED[-1]
# The streaming POST in both of its modes; the JSON endpoints speak only JSON (else 406).
LIMITED_ACCEPTING = [(endpoint, "application/json") for endpoint in LIMITED] + [(STREAM, "text/event-stream")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("endpoint", "accept"), LIMITED_ACCEPTING, ids=[f"{e.id} {accept}" for e, accept in LIMITED_ACCEPTING]
)
def test_body_over_the_limit_is_413(world, settings, endpoint, accept):
    body = oversize_json(settings, login_id="alice", password=PASSWORD, title="t", notes="n", content="hi")
    before = alice_snapshot(world)

    response = bearer_client(world.alice).generic(
        endpoint.method, world.url(endpoint), body, content_type="application/json", HTTP_ACCEPT=accept
    )

    error = assert_error(response, 413, "payload_too_large")
    assert error["details"] == {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
    assert alice_snapshot(world) == before


def send(url: str, world: World, endpoint: Endpoint, content) -> httpx.Response:
    token = RefreshToken.for_user(world.alice).access_token
    return httpx.request(
        endpoint.method,
        url + world.url(endpoint),
        content=content,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )


def in_chunks(body: bytes):
    """A body sent with ``Transfer-Encoding: chunked``: no Content-Length announces its size."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("endpoint", LIMITED, ids=ids(LIMITED))
def test_body_over_the_limit_is_413_under_uvicorn(live_asgi_url, world, settings, endpoint):
    """Through a real ASGI server, where the streaming POST runs as it does in production."""
    body = oversize_json(settings, login_id="alice", password=PASSWORD, title="t", notes="n", content="hi")
    before = alice_snapshot(world)

    response = send(live_asgi_url, world, endpoint, body)

    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "payload_too_large"
    assert alice_snapshot(world) == before


@pytest.mark.django_db(transaction=True)
def test_chunked_body_over_the_limit_is_413_on_the_streaming_post(live_asgi_url, world, settings):
    before = alice_snapshot(world)

    response = send(live_asgi_url, world, STREAM, in_chunks(oversize_json(settings, content="hi")))

    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert alice_snapshot(world) == before


@pytest.mark.django_db(transaction=True)
def test_chunked_body_over_the_limit_is_413_on_a_json_endpoint(live_asgi_url, world, settings):
    body = oversize_json(settings, login_id="alice", password=PASSWORD)

    response = send(live_asgi_url, world, LIMITED[0], in_chunks(body))

    assert response.status_code == 413, response.text
