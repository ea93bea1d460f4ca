"""JWTAuthentication: simplejwt's, its user read by ``selectors.user_by_id`` in one plain statement
that gives the user the ORM would (on SQLite and on PostgreSQL)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import AccessToken

from accounts.authentication import JWTAuthentication
from accounts.models import User
from accounts.selectors import user_by_id
from tests.helpers.orm import fields_of

pytestmark = pytest.mark.django_db


def authenticate(token) -> tuple:
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
    return JWTAuthentication().authenticate(request)


def test_the_tokens_user_is_the_one_the_orm_reads_in_one_statement(user):
    User.objects.filter(pk=user.pk).update(display_name="Ålice 漢", is_staff=True)

    with CaptureQueriesContext(connection) as captured:
        found, token = authenticate(AccessToken.for_user(user))

    assert fields_of(found) == fields_of(User.objects.get(pk=user.pk))
    assert found.last_login is None or found.last_login.tzinfo is not None
    assert not found._state.adding
    assert str(token["user_id"]) == str(user.pk)
    assert len(captured.captured_queries) == 1


def test_a_missing_or_deactivated_user_is_refused(user):
    missing = AccessToken.for_user(user)
    missing["user_id"] = user.pk + 1000
    with pytest.raises(AuthenticationFailed) as caught:
        authenticate(missing)
    assert caught.value.get_codes() == "user_not_found"

    User.objects.filter(pk=user.pk).update(is_active=False)
    with pytest.raises(AuthenticationFailed) as caught:
        authenticate(AccessToken.for_user(user))
    assert caught.value.get_codes() == "user_inactive"


def test_a_token_without_a_user_is_invalid(user):
    token = AccessToken.for_user(user)
    del token["user_id"]
    with pytest.raises(InvalidToken):
        authenticate(token)


def test_user_by_id_is_none_for_a_missing_or_malformed_id(user):
    assert user_by_id(user.pk + 1000) is None
    assert user_by_id("not-a-number") is None
    assert user_by_id(str(user.pk)).pk == user.pk
