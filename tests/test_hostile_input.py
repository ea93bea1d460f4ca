"""Hostile strings in every public string field, query parameter and path segment: never a 5xx.

Each target below sends one request with one field replaced by a string Hypothesis draws from
the awkward ones: NUL (which PostgreSQL refuses to store or even compare), lone surrogates (which
cannot be encoded as UTF-8, so no driver can send them), right-to-left and zero-width marks,
``%00`` and ``%`` as text, and very long strings. The other fields are valid, so the hostile one
is what the server meets. Whatever the server makes of it (201, 400, 404, 413…), it must not be a
server error. Run on SQLite and PostgreSQL: NUL bytes are where PostgreSQL fails.

Requests go to the real ASGI application under uvicorn on loopback, bodies written as a hostile
client writes them: JSON with ``\\ud800`` escapes (``json.dumps``'s default), path segments and
query values percent-encoded byte by byte (``%ED%A0%80`` for a lone surrogate).
"""

import json
from collections.abc import Callable
from functools import partial
from urllib.parse import quote

import httpx
import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_bakery import baker
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.services import api_key_create
from chats.models import ChatSession
from tests.helpers.clients import PASSWORD
from wallets.services import wallet_adjust

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = 30

#: Whole strings worth trying in every field, whatever Hypothesis draws besides.
HOSTILE = [
    "\x00",
    "ada\x00",
    "\ud800",
    "ada\udfff",
    "\u202eevil\u202c",
    "\u200b",
    "\ufeff\u2066\u2069\u200f",
    "%00",
    "%",
    "../..",
    "' OR 1=1 --",
    "\\",
    "\U0001f600",
    "\uff41\uff44\uff41",  # fullwidth "ada"
    "\x00\ud800%00",
    "x" * 5_000,
    "\u200b" * 100_000,
]

#: Pieces Hypothesis strings together, among text of its own (which has no surrogates).
PIECES = ["\x00", "\ud800", "\udc00", "\u202e", "\u200b", "\u200f", "\ufeff", "%00", "%", "/", "?", "#", "é"]

hostile = st.one_of(
    st.sampled_from(HOSTILE),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), min_size=1, max_size=8).map("".join),
)


#: A URL's hostile part is cut to this: clients and servers refuse request lines of many kilobytes.
URL_VALUE_CHARS = 1000


def encoded(value: str) -> str:
    """``value`` percent-encoded byte by byte, as a path segment or a query value."""
    return quote(value[:URL_VALUE_CHARS].encode("utf-8", "surrogatepass"), safe="")


class Client:
    """httpx against the live server, writing bodies and URLs as a hostile client does."""

    def __init__(self, http: httpx.Client, token: str) -> None:
        self.http, self.token = http, token

    def send(self, method: str, path: str, body: dict | None = None, **query: str) -> httpx.Response:
        if query:
            path += "?" + "&".join(f"{name}={encoded(value)}" for name, value in query.items())
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        content = None
        if body is not None:
            content = json.dumps(body)  # ensure_ascii: a lone surrogate travels as the escape \ud800
            headers["Content-Type"] = "application/json"
        return self.http.request(method, path, content=content, headers=headers)


@pytest.fixture
def world(live_asgi_url, user, staff_user, general_category):
    """Alice with credits, a session and an API key; a client with her token, one with her key."""
    wallet_adjust(user=user, amount=1_000_000, reason="hostile input", actor=staff_user)
    session = baker.make(ChatSession, user=user, category=general_category, title="Alice's chat")
    key, secret = api_key_create(user=user, name="script")
    with httpx.Client(base_url=live_asgi_url, timeout=30) as http:
        yield {
            "api": Client(http, str(RefreshToken.for_user(user).access_token)),
            "v1": Client(http, secret),
            "user": user,
            "session": session,
            "key": key,
        }


def _register(field: str) -> Callable:
    def send(world, value):
        body = {"login_id": "newcomer", "password": PASSWORD, "display_name": "N", "email": "n@example.com"}
        return world["api"].send("POST", "/auth/register", {**body, field: value})

    return send


def _login(field: str) -> Callable:
    def send(world, value):
        body = {"login_id": world["user"].login_id, "password": PASSWORD}
        return world["api"].send("POST", "/auth/login", {**body, field: value})

    return send


def _session(world) -> str:
    return f"/api/sessions/{world['session'].id}"


def _completion(world, value, *, field: str):
    message = {"role": "user", "content": "Say hello"}
    body = {"model": "general", "messages": [message], "max_tokens": 16}
    if field == "content":
        message["content"] = value
    elif field == "content part":
        message["content"] = [{"type": "text", "text": value}]
    elif field == "role":
        message["role"] = value
    else:
        body[field] = value
    return world["v1"].send("POST", "/v1/chat/completions", body)


def _v1_input(path: str, field: str, world, value):
    return world["v1"].send("POST", path, {"model": "general", "input": "hi", field: value})


TARGETS: dict[str, Callable] = {
    **{f"register {field}": _register(field) for field in ("login_id", "password", "display_name", "email")},
    **{f"login {field}": _login(field) for field in ("login_id", "password")},
    "refresh": lambda w, v: w["api"].send("POST", "/auth/token/refresh", {"refresh": v}),
    "logout": lambda w, v: w["api"].send("POST", "/auth/logout", {"refresh": v}),
    "profile display_name": lambda w, v: w["api"].send("PATCH", "/auth/me", {"display_name": v}),
    "profile email": lambda w, v: w["api"].send("PATCH", "/auth/me", {"email": v}),
    "password old": lambda w, v: w["api"].send(
        "POST", "/auth/password", {"old_password": v, "new_password": "a-new-passphrase-0"}
    ),
    "password new": lambda w, v: w["api"].send(
        "POST", "/auth/password", {"old_password": PASSWORD, "new_password": v}
    ),
    "session create title": lambda w, v: w["api"].send(
        "POST", "/api/sessions/", {"category": "general", "title": v}
    ),
    "session create category": lambda w, v: w["api"].send("POST", "/api/sessions/", {"category": v}),
    "session patch title": lambda w, v: w["api"].send("PATCH", f"{_session(w)}/", {"title": v}),
    "session notes": lambda w, v: w["api"].send("PUT", f"{_session(w)}/notes/", {"notes": v}),
    "session list q": lambda w, v: w["api"].send("GET", "/api/sessions/", q=v),
    "session list category": lambda w, v: w["api"].send("GET", "/api/sessions/", category=v),
    "session list archived": lambda w, v: w["api"].send("GET", "/api/sessions/", archived=v),
    "session list cursor": lambda w, v: w["api"].send("GET", "/api/sessions/", cursor=v),
    "session path": lambda w, v: w["api"].send("GET", f"/api/sessions/{encoded(v)}/"),
    "session export format": lambda w, v: w["api"].send("GET", f"{_session(w)}/export/", format=v),
    "history leaf": lambda w, v: w["api"].send("GET", f"{_session(w)}/messages/", leaf=v),
    "message content": lambda w, v: w["api"].send("POST", f"{_session(w)}/messages/", {"content": v}),
    "message parent_id": lambda w, v: w["api"].send(
        "POST", f"{_session(w)}/messages/", {"content": "hi", "parent_id": v}
    ),
    "message path": lambda w, v: w["api"].send("POST", f"{_session(w)}/messages/{encoded(v)}/regenerate/"),
    "key name": lambda w, v: w["api"].send("POST", "/api/keys/", {"name": v}),
    "key path": lambda w, v: w["api"].send("DELETE", f"/api/keys/{encoded(v)}/"),
    "wallet transactions cursor": lambda w, v: w["api"].send("GET", "/api/wallet/transactions/", cursor=v),
    "redeem code": lambda w, v: w["api"].send("POST", "/api/wallet/redeem/", {"code": v}),
    "usage from": lambda w, v: w["api"].send("GET", "/api/usage/", **{"from": v}),
    "usage to": lambda w, v: w["api"].send("GET", "/api/usage/", to=v),
    "usage group_by": lambda w, v: w["api"].send("GET", "/api/usage/", group_by=v),
    "v1 model path": lambda w, v: w["v1"].send("GET", f"/v1/models/{encoded(v)}"),
    **{
        f"v1 completion {field}": partial(_completion, field=field)
        for field in ("model", "content", "content part", "role", "user")
    },
    **{f"v1 responses {field}": partial(_v1_input, "/v1/responses", field) for field in ("model", "input")},
    **{f"v1 embeddings {field}": partial(_v1_input, "/v1/embeddings", field) for field in ("model", "input")},
}


@pytest.mark.parametrize("target", TARGETS)
@given(value=hostile)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure is reproducible, never flaky
    database=None,  # no .hypothesis/ directory in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_a_hostile_string_is_never_a_server_error(world, target, value):
    cache.clear()  # the throttles would otherwise answer 429 before the view reads the field
    response = TARGETS[target](world, value)
    assert response.status_code < 500, (target, value[:80], response.status_code, response.text[:300])


# --- what the property found, pinned --------------------------------------------------------------


def test_a_model_id_with_a_nul_is_not_found(world):
    """PostgreSQL refuses a NUL even in a comparison: ``GET /v1/models/%00`` was a 500 there."""
    response = world["v1"].send("GET", "/v1/models/gen%00eral")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
