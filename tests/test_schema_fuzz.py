"""Schemathesis against the project's own OpenAPI schema: no 5xx, and every answer is the documented one.

The schema is fetched from ``/api/schema/`` of the real ASGI application (``config.asgi.http_application``)
when this module is collected, so each operation is its own test id (``test_api[POST /auth/login/]``).
Requests go to the same application in-process through Schemathesis's ASGI transport; the views run
in other threads, hence ``transaction=True`` (rows must be committed for them to see).

Every operation of the schema is fuzzed; nothing is filtered out. Requests carry a real bearer token
of a user who has a wallet and a chat session (under ``/v1/``, that user's personal API key), except
where Schemathesis leaves it out on purpose (then 401 is the documented answer). Random data alone
would only ever meet the error paths of some operations, so in two thirds of the schema-valid cases
the fuzzer's values are swapped for real ones: ``{id}`` becomes the user's own session (or the model
``general``), and the bodies of login, refresh, logout, password change,
Google sign-in (against a loopback stand-in for Google), session creation and the ``/v1/`` POSTs
become ones that succeed; their 2xx answers are then validated against the schema too.

Nothing needs excluding because of the run's own credentials: logout and password change kill
refresh tokens, never the access token the run uses.
"""

import datetime
import json
import uuid

import httpx
import jsonschema
import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from model_bakery import baker
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis import checks

from accounts.services import api_key_create
from chats.models import Category, ChatSession
from config.asgi import http_application
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers.clients import PASSWORD
from wallets.services import wallet_adjust, wallet_get_or_create

MAX_EXAMPLES = 25
MESSAGES = "/api/sessions/{id}/messages/"
COMPONENT = "#/components/schemas/"

# Schemathesis runs an application's lifespan on one event loop that lives for the whole test
# process, and shuts it down after every test: the worker's lifespan (which stops replies when the
# worker stops) is not a fuzz target, so it gets the application without one.
#
# `testserver` is added to ALLOWED_HOSTS only once the test session starts; the schema is loaded
# during collection, so it is fetched as `localhost` (in the default ALLOWED_HOSTS).
schema = schemathesis.openapi.from_asgi("/api/schema/", http_application, headers={"Host": "localhost"})

# The bearer token of the current test's user (a new user each test: transactional tests flush),
# and that user's personal API key, for /v1/.
_current_token: list[str] = []
_current_api_key: list[str] = []


@schema.auth(refresh_interval=None)  # never cached: each test has its own user and token
class BearerToken:
    """The user's real credential, on every case but those Schemathesis strips of it on purpose."""

    def get(self, case, context):
        return _current_api_key[-1] if case.path.startswith("/v1/") else _current_token[-1]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    # Schema-violating input (wrong types, out-of-range page sizes, missing fields) must be a 4xx.
    checks.negative_data_rejection,
    # An operation that declares jwtAuth must refuse the same request without or with a bad token.
    checks.ignored_auth,
    # A method the path does not document must be a 405.
    checks.unsupported_method,
]
# Deliberately not run:
# - positive_data_acceptance: expects every schema-valid body to succeed, but some rules are not
#   JSON Schema: Django's password validators (register, password change), the current password
#   being right, NUL characters refused in text fields, a login id already taken (409), unknown
#   category slugs. Those are 400s by design, with the error shape (which the checks above verify).
# - use_after_free, ensure_resource_availability: stateful checks over links between operations;
#   the schema declares no OpenAPI links, and those flows are tested by hand in each app's tests.
# - max_response_time: timing is not a contract here (bench/ measures it).


@pytest.fixture
def world(user, google_configured, general_category):
    """Alice, her wallet and one chat session; her bearer token is what `BearerToken` sends."""
    wallet_get_or_create(user=user)
    session = baker.make(ChatSession, user=user, category=general_category, title="Alice's chat")
    _current_token.append(str(RefreshToken.for_user(user).access_token))
    _current_api_key.append(api_key_create(user=user, name="fuzz")[1])
    yield {"user": user, "session": session, "google": google_configured}
    _current_token.pop()
    _current_api_key.pop()


def _real_body(case, world) -> dict | None:
    """A body with which this operation succeeds (or meets its business rules), if it needs one."""
    match (case.method, case.path):
        case ("POST", "/auth/login/"):
            return {"login_id": world["user"].login_id, "password": PASSWORD}
        case ("POST", "/auth/token/refresh/") | ("POST", "/auth/logout/"):
            return {"refresh": str(RefreshToken.for_user(world["user"]))}
        case ("POST", "/auth/password/"):
            return {"old_password": PASSWORD, "new_password": f"a-new-passphrase-{uuid.uuid4().hex[:8]}"}
        case ("POST", "/auth/google/"):
            return {"id_token": world["google"].id_token()}
        case ("POST", "/api/sessions/"):
            return {**(case.body if isinstance(case.body, dict) else {}), "category": "general"}
        case ("POST", "/v1/chat/completions"):
            return {"model": "general", "messages": [{"role": "user", "content": "Hi"}]}
        case ("POST", "/v1/responses") | ("POST", "/v1/embeddings"):
            return {"model": "general", "input": "Hi"}
    return None


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@schema.given(
    use_real_values=st.sampled_from([True, True, False]),  # mostly real: random ids only ever 404
    accept=st.sampled_from([None, "application/json", "text/event-stream"]),
)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every CI run: failures are reproducible, never flaky
    database=None,  # no .hypothesis/ directory in the working tree
    # `world` is built once per operation and shared by its examples on purpose: a DELETE of the
    # session or replies draining the wallet change what later examples meet (404, 402), as in life.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_api(case, world, use_real_values, accept):
    # The auth throttles (10/min per address) would otherwise answer 429 to everything after the
    # tenth request, and the fuzzer would stop reaching the views behind them.
    cache.clear()
    # Only schema-valid cases get real values: a case built to violate the schema must stay invalid.
    if use_real_values and (case.meta is None or not case.meta.generation.mode.is_negative):
        if "id" in (case.path_parameters or {}):
            case.path_parameters["id"] = (
                "general" if case.path == "/v1/models/{id}" else str(world["session"].id)
            )
        body = _real_body(case, world)
        if body is not None:
            case.body = body
    headers = {}
    # The streaming POST answers SSE, or one JSON body when asked; other views only speak JSON.
    if accept is not None and case.method == "POST" and case.path == MESSAGES:
        headers["Accept"] = accept
    case.call_and_validate(headers=headers, checks=CHECKS)


# --- Disagreements the fuzzer found, pinned ------------------------------------

LISTS = ["/api/categories/", "/api/sessions/", "/api/wallet/transactions/", MESSAGES]
# A valid body each, so that the id is what is judged (a bad body is a 400 before any lookup).
ON_A_SESSION = [
    ("GET", "/api/sessions/{id}/", None),
    ("PATCH", "/api/sessions/{id}/", {"title": "t"}),
    ("DELETE", "/api/sessions/{id}/", None),
    ("PUT", "/api/sessions/{id}/notes/", {"notes": "n"}),
    ("GET", MESSAGES, None),
    ("POST", MESSAGES, {"content": "hi"}),
]
ON_A_SESSION_IDS = [f"{method} {path}" for method, path, _ in ON_A_SESSION]


def validate(response, method: str, path: str) -> None:
    """Hold a test client's response to the schema, as the fuzzer does."""
    as_httpx = httpx.Response(
        response.status_code,
        headers=dict(response.items()),
        content=response.content,
        request=httpx.Request(method, f"http://testserver{path}"),
    )
    as_httpx.elapsed = datetime.timedelta(0)  # read by the validator; not sent through a client
    schema[path][method].validate_response(as_httpx)


@pytest.fixture
def alices_session(user):
    return baker.make(ChatSession, user=user, category=Category.objects.get(slug="general"))


@pytest.mark.django_db
@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("page_size", ["0", "101", "-1", "ten", "", "1.5", "\u0663"])
def test_page_size_outside_the_schema_is_400(auth_client, alices_session, path, page_size):
    """It used to be ignored (DRF's default), so ``page_size=ten`` answered a page of 20."""
    response = auth_client.get(path.replace("{id}", str(alices_session.id)), {"page_size": page_size})

    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"] == {"page_size": ["An integer from 1 to 100."]}
    validate(response, "GET", path)


@pytest.mark.django_db
@pytest.mark.parametrize("page_size", ["1", "100"])
def test_page_size_within_the_schema_is_a_page(auth_client, alices_session, user, page_size):
    baker.make(ChatSession, user=user, category=alices_session.category)

    response = auth_client.get("/api/sessions/", {"page_size": page_size})

    assert len(response.json()["results"]) == min(int(page_size), 2)
    validate(response, "GET", "/api/sessions/")


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body"), ON_A_SESSION, ids=ON_A_SESSION_IDS)
@pytest.mark.parametrize("session_id", ["not-a-uuid", "1234", "0" * 33])
def test_a_session_id_that_is_not_a_uuid_is_404(auth_client, method, path, body, session_id):
    """It used to be a 400 from the router's lookup (``"…" is not a valid UUID``), undocumented."""
    response = getattr(auth_client, method.lower())(path.replace("{id}", session_id), body, format="json")

    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    validate(response, method, path)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/embeddings"])
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_a_method_a_v1_post_does_not_take_is_405_saying_what_it_takes(api_client, path, method):
    """It was a 405 without ``Allow`` (RFC 9110 requires it; Schemathesis' unsupported_method check)."""
    response = getattr(api_client, method)(path)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"]["code"] == "invalid_request_error"


def test_every_operation_documents_its_errors_in_the_error_shape():
    """401 wherever a token is read; 400 and 413 wherever a body is; 404 wherever an id or a cursor is.

    The shape is Parley's, but under /v1/: OpenAI's, which its clients read.
    """
    # Register and logout read no token (their views have no authentication), so no 401 for a bad one;
    # logout answers 401 for a refresh token that is not valid, as refresh does. The probes read none.
    no_token = {("POST", "/auth/register/"), ("GET", "/healthz"), ("GET", "/readyz")}
    missing = []
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        definition = operation.definition.raw
        parameters = {parameter["name"] for parameter in definition.get("parameters", [])}
        expected = set() if key in no_token else {"401"}
        if "requestBody" in definition:
            expected |= {"400", "413"}
        if "id" in parameters:
            expected.add("404")
        if "cursor" in parameters:
            expected |= {"400", "404"}  # a bad page_size; a cursor that is not one of ours
        missing += [f"{key}: {status}" for status in sorted(expected - set(definition["responses"]))]
        shape = "OpenAIError" if operation.path.startswith("/v1/") else "Error"
        for status, response in definition["responses"].items():
            if status.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == {"$ref": f"{COMPONENT}{shape}"}
    assert not missing


# --- The streaming POST, against a fake OpenAI upstream: what the echo provider never does ---

# What the `data` of each event holds. OpenAPI 3.0 can only say so in words (see chats/views.py),
# so the words are held to this.
SSE_PAYLOADS = {
    "start": {
        "type": "object",
        "required": ["user_message", "assistant_message_id"],
        "additionalProperties": False,
        "properties": {
            "user_message": {"$ref": f"{COMPONENT}Message"},
            "assistant_message_id": {"type": "string", "format": "uuid"},
        },
    },
    "delta": {
        "type": "object",
        "required": ["content"],
        "additionalProperties": False,
        "properties": {"content": {"type": "string"}},
    },
    "done": {
        "type": "object",
        "required": ["message", "finish_reason", "usage", "cost", "balance"],
        "additionalProperties": False,
        "properties": {
            "message": {"$ref": f"{COMPONENT}Message"},
            "finish_reason": {"type": "string"},
            "usage": {"$ref": f"{COMPONENT}Usage"},
            "cost": {"type": "integer"},
            "balance": {"type": "integer"},
        },
    },
    "error": {"$ref": f"{COMPONENT}Error"},
}


@pytest.fixture
def upstream(settings):
    """A fake OpenAI-compatible server on loopback, and the ``openai`` provider pointed at it."""
    with FakeOpenAI() as fake:
        settings.LLM_PROVIDER = "openai"
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_API_KEY = "test"
        settings.LLM_MAX_RETRIES = 0
        yield fake


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("scenario", "names"),
    [
        ({}, ["start", "delta", "delta", "done"]),
        ({"fail_status": 503}, ["start", "error"]),
        ({"fail_after_chunks": 1}, ["start", "delta", "error"]),
    ],
    ids=["reply", "fails-before-any-token", "fails-mid-stream"],
)
def test_the_stream_is_what_the_schema_says(live_asgi_url, world, upstream, scenario, names):
    upstream.configure(reply="Hello there", **scenario)
    token = _current_token[-1]

    response = httpx.post(
        f"{live_asgi_url}/api/sessions/{world['session'].id}/messages/",
        json={"content": "Hi"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )

    assert response.status_code == 200
    schema[MESSAGES]["POST"].validate_response(response)
    events = sse_events(response.text)
    assert [name for name, _ in events] == names
    components = _nullable_as_json_schema(schema.raw_schema["components"])
    for name, data in events:
        jsonschema.Draft4Validator({**SSE_PAYLOADS[name], "components": components}).validate(data)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("scenario", "status"),
    [({}, 201), ({"fail_status": 500}, 502), ({"fail_status": 503}, 503), ("broke", 402)],
    ids=["reply", "upstream-500", "upstream-503", "insufficient-funds"],
)
def test_the_json_reply_is_what_the_schema_says(live_asgi_url, world, upstream, scenario, status):
    if scenario == "broke":
        wallet_adjust(user=world["user"], amount=-100, reason="spent elsewhere", actor=None)
    else:
        upstream.configure(**scenario)

    response = httpx.post(
        f"{live_asgi_url}/api/sessions/{world['session'].id}/messages/",
        json={"content": "Hi"},
        headers={"Authorization": f"Bearer {_current_token[-1]}", "Accept": "application/json"},
        timeout=10,
    )

    assert response.status_code == status, response.text
    schema[MESSAGES]["POST"].validate_response(response)


def _nullable_as_json_schema(node):
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema says it (``Draft4Validator`` ignores it)."""
    if isinstance(node, list):
        return [_nullable_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_as_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    return node
