"""POST /auth/google: real RS256 tokens, certificates served over loopback HTTP."""

import threading
import time

import jwt
import pytest
from allauth.socialaccount.models import SocialAccount

from accounts.google import _login_id_candidates, google_certs
from accounts.models import User
from tests.fakes.google_idp import (
    ANDROID_CLIENT_ID,
    GOOGLE_CACHE_CONTROL,
    WEB_CLIENT_ID,
    GoogleIdentityPlatform,
    SigningKey,
)
from tests.helpers.asserts import assert_error
from tests.helpers.clients import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/auth/google"


@pytest.fixture(scope="module")
def idp():
    platform = GoogleIdentityPlatform()
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def stranger_key():
    """A key Google never published, under the same key id as the real one."""
    return SigningKey("test-kid-1")


@pytest.fixture(autouse=True)
def google_settings(settings, idp):
    """Every test here talks to the loopback platform, never to googleapis.com."""
    idp.published = [idp.key]
    idp.cache_control, idp.age, idp.raw_body, idp.delay = GOOGLE_CACHE_CONTROL, None, None, 0.0
    settings.GOOGLE_CLIENT_ID = [WEB_CLIENT_ID, ANDROID_CLIENT_ID]
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {
            "APPS": [{"client_id": WEB_CLIENT_ID, "secret": "", "key": ""}],
            "CERTS_URL": idp.certs_url,
        }
    }
    return settings


def sign_in(client, token):
    return client.post(URL, {"id_token": token}, format="json")


def test_first_sign_in_creates_user_and_links_google_account(api_client, idp):
    response = sign_in(api_client, idp.id_token())

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"user", "access", "refresh"}
    assert body["user"]["login_id"] == "carol.jones"
    assert body["user"]["email"] == "carol.jones@gmail.com"
    assert body["user"]["display_name"] == "Carol Jones"
    user = User.objects.get(pk=body["user"]["id"])
    assert not user.has_usable_password()
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == ("google", "110169484474386276334")
    assert account.extra_data["email"] == "carol.jones@gmail.com"
    assert idp.requests_served >= 1


def test_tokens_from_google_sign_in_work(api_client, idp):
    body = sign_in(api_client, idp.id_token()).json()

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert api_client.get("/auth/me").json()["login_id"] == "carol.jones"
    assert (
        api_client.post("/auth/token/refresh", {"refresh": body["refresh"]}, format="json").status_code == 200
    )


def test_returning_user_is_found_by_sub(api_client, idp):
    first = sign_in(api_client, idp.id_token()).json()

    # A later token: new jti, and the person changed their name and address at Google.
    response = sign_in(api_client, idp.id_token(email="carol@example.org", name="Carol J."))

    assert response.status_code == 200, response.content
    assert response.json()["user"]["id"] == first["user"]["id"]
    assert User.objects.count() == 1
    assert SocialAccount.objects.get().extra_data["email"] == "carol@example.org"


def test_token_for_any_configured_client_id_is_accepted(api_client, idp):
    response = sign_in(api_client, idp.id_token(aud=ANDROID_CLIENT_ID, azp=ANDROID_CLIENT_ID))

    assert response.status_code == 201, response.content


@pytest.mark.parametrize("issuer", ["https://accounts.google.com", "accounts.google.com"])
def test_both_issuer_forms_are_accepted(api_client, idp, issuer):
    assert sign_in(api_client, idp.id_token(iss=issuer)).status_code == 201


def test_wrong_audience_is_refused(api_client, idp):
    response = sign_in(api_client, idp.id_token(aud="someone-else.apps.googleusercontent.com"))

    assert_error(response, 401, "token_not_valid")
    assert not User.objects.exists()


def test_wrong_issuer_is_refused(api_client, idp):
    response = sign_in(api_client, idp.id_token(iss="https://evil.example.com"))

    assert_error(response, 401, "token_not_valid")


def test_expired_token_is_refused(api_client, idp):
    now = int(time.time())
    response = sign_in(api_client, idp.id_token(iat=now - 7200, exp=now - 3600))

    error = assert_error(response, 401, "token_not_valid")
    assert "expired" in error["message"]


def test_token_without_expiry_is_refused(api_client, idp):
    assert_error(sign_in(api_client, idp.id_token(exp=None)), 401, "token_not_valid")


def test_token_signed_by_another_key_is_refused(api_client, idp, stranger_key):
    response = sign_in(api_client, idp.id_token(key=stranger_key))

    error = assert_error(response, 401, "token_not_valid")
    assert "Signature" in error["message"]
    assert not User.objects.exists()


def test_token_with_unknown_key_id_is_refused(api_client, idp):
    assert_error(sign_in(api_client, idp.id_token(headers={"kid": "rotated-away"})), 401, "token_not_valid")


def test_rotated_key_is_found_among_published_certificates(api_client, idp):
    new_key = SigningKey("test-kid-2")
    idp.published = [idp.key, new_key]

    assert sign_in(api_client, idp.id_token(key=new_key)).status_code == 201


@pytest.mark.parametrize("email_verified", [False, "false", None])
def test_unverified_email_is_refused(api_client, idp, email_verified):
    response = sign_in(api_client, idp.id_token(email_verified=email_verified))

    error = assert_error(response, 401, "token_not_valid")
    assert "not verified" in error["message"]
    assert not User.objects.exists()


def test_token_without_email_is_refused(api_client, idp):
    assert_error(sign_in(api_client, idp.id_token(email=None)), 401, "token_not_valid")


def test_replayed_token_is_refused(api_client, idp):
    token = idp.id_token()
    assert sign_in(api_client, token).status_code == 201

    assert_error(sign_in(api_client, token), 401, "token_not_valid")


def test_password_account_with_same_email_is_not_linked(api_client, idp, make_user):
    owner = make_user("carol.jones", email="carol.jones@gmail.com")

    response = sign_in(api_client, idp.id_token())

    assert response.status_code == 201, response.content
    created = response.json()["user"]
    assert created["id"] != owner.pk
    assert created["login_id"] == "carol.jones-2"
    assert not SocialAccount.objects.filter(user=owner).exists()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_login_id_taken_in_other_case_gets_a_number(api_client, idp, make_user):
    make_user("CAROL.JONES")

    assert sign_in(api_client, idp.id_token()).json()["user"]["login_id"] == "carol.jones-2"


def test_deactivated_user_is_refused(api_client, idp):
    user_id = sign_in(api_client, idp.id_token()).json()["user"]["id"]
    User.objects.filter(pk=user_id).update(is_active=False)

    error = assert_error(sign_in(api_client, idp.id_token()), 401, "invalid_credentials")
    assert "deactivated" in error["message"]


def test_google_user_cannot_log_in_with_a_password(api_client, idp):
    sign_in(api_client, idp.id_token())

    for password in ["", "!", PASSWORD]:
        response = api_client.post(
            "/auth/login", {"login_id": "carol.jones", "password": password}, format="json"
        )
        assert response.status_code in (400, 401)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        jwt.encode({"sub": "1"}, "", algorithm="none"),
        jwt.encode(
            {"sub": "1"}, "a-shared-secret-of-32-bytes-or-more!", algorithm="HS256", headers={"kid": "x"}
        ),
    ],
    ids=["garbage", "alg-none", "hs256"],
)
def test_tokens_not_signed_with_rs256_are_refused(api_client, token):
    assert_error(sign_in(api_client, token), 401, "token_not_valid")


def test_missing_id_token_is_a_validation_error(api_client):
    error = assert_error(api_client.post(URL, {}, format="json"), 400, "validation_error")
    assert "id_token" in error["details"]


def test_not_configured_is_a_clear_503(api_client, idp, settings):
    settings.GOOGLE_CLIENT_ID = []

    assert_error(sign_in(api_client, idp.id_token()), 503, "google_not_configured")


def test_unreachable_certificates_are_a_502(api_client, idp, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"google": {"CERTS_URL": idp.certs_url.replace("/certs", "/missing")}}

    assert_error(sign_in(api_client, idp.id_token()), 502, "google_unavailable")


@pytest.mark.parametrize(
    ("email", "login_id"),
    [
        ("carol.jones@gmail.com", "carol.jones"),
        ("o'brien+news@example.com", "obrien+news"),
        ("'''@example.com", "google-42"),
    ],
)
def test_login_id_derives_from_email_local_part(email, login_id):
    candidates = _login_id_candidates(email=email, sub="42")

    assert candidates[0] == login_id
    assert candidates[-1] == "google-42"


def test_google_sign_in_is_throttled_per_ip(api_client, idp, settings):
    settings.AUTH_THROTTLE_RATE = "2/min"
    for _ in range(2):
        sign_in(api_client, idp.id_token())

    assert_error(sign_in(api_client, idp.id_token()), 429, "throttled")


# --- Google's certificates are cached for as long as Google says ------------


def sign_in_as_many(client, idp, count: int) -> None:
    for n in range(count):
        response = sign_in(client, idp.id_token(sub=f"sub-{n}", email=f"user{n}@gmail.com"))
        assert response.status_code == 201, response.content


def test_a_burst_of_sign_ins_fetches_the_certificates_once(api_client, idp):
    before = idp.requests_served

    sign_in_as_many(api_client, idp, 5)

    assert idp.requests_served - before == 1


def test_concurrent_first_sign_ins_fetch_the_certificates_once(idp):
    idp.delay = 0.2  # the fetch is slow enough for every thread to miss the cache
    before = idp.requests_served
    barrier = threading.Barrier(8)
    results = []

    def fetch():
        barrier.wait()
        results.append(google_certs())

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(results) == 8 and all(idp.key.kid in certs for certs in results)
    assert idp.requests_served - before == 1


def test_certificates_are_fetched_again_once_their_max_age_has_passed(api_client, idp):
    idp.cache_control = "public, max-age=1"
    before = idp.requests_served
    sign_in_as_many(api_client, idp, 2)
    assert idp.requests_served - before == 1

    time.sleep(1.1)
    assert sign_in(api_client, idp.id_token(sub="later", email="later@gmail.com")).status_code == 201

    assert idp.requests_served - before == 2


@pytest.mark.parametrize(
    ("cache_control", "age"),
    [("", None), ("no-store", None), ("no-cache, max-age=600", None), ("public, max-age=600", 600)],
    ids=["no-header", "no-store", "no-cache", "already-stale"],
)
def test_certificates_without_freshness_are_not_cached(api_client, idp, cache_control, age):
    idp.cache_control, idp.age = cache_control, age
    before = idp.requests_served

    sign_in_as_many(api_client, idp, 2)

    assert idp.requests_served - before == 2


def test_cached_certificates_still_refuse_a_key_google_does_not_publish(api_client, idp, stranger_key):
    sign_in_as_many(api_client, idp, 1)

    response = sign_in(api_client, idp.id_token(key=stranger_key, sub="x", email="x@gmail.com"))

    assert_error(response, 401, "token_not_valid")


def test_certificates_that_are_not_a_json_object_are_a_502(api_client, idp):
    idp.raw_body = b"[]"

    assert_error(sign_in(api_client, idp.id_token()), 502, "google_unavailable")


def test_google_sign_in_response_is_no_store(api_client, idp):
    for expected in (201, 200):  # created, then found
        response = sign_in(api_client, idp.id_token())
        assert response.status_code == expected, response.content
        assert "no-store" in response["Cache-Control"]
