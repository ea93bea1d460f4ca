"""Cursors are the client's input: a crafted one is a 4xx in the error shape, never a 500.

A cursor is base64 of a query string (``o`` offset, ``r`` reverse, ``p`` position, the last row's
ordering value). Through every list endpoint, public and private, on both databases.
"""

import base64
from urllib.parse import quote

import pytest
from model_bakery import baker

from chats.models import ChatSession
from tests.helpers.asserts import assert_error

pytestmark = pytest.mark.django_db

CRAFTED = [
    "p=abc",
    "p=2020-13-45",
    "r=1&p=%00",
    "p=%00",
    "p=9999-12-31T23:59:59-14:00",
    "p=0001-01-01T00:00:00%2B14:00",
    "p=99999999999999999999999999",
    "p=-99999999999999999999999999",
    "p=1e400",
    "p=nan",
    "p=" + "9" * 5000,
    "p=",
    "not base64 at all",
]
# Odd: served or refused depending on the list's ordering field, but never a 500 (DRF caps the
# offset and reads any non-zero ``r`` as reverse).
ODD = ["o=99999999999999999999999&p=1", "o=-1", "r=2", "p=2020-01-01", "p=7"]


def encode(raw: str) -> str:
    if raw == "not base64 at all":
        return quote(raw)
    return quote(base64.b64encode(raw.encode()).decode())


@pytest.fixture
def session(user, general_category):
    return baker.make(ChatSession, user=user, category=general_category)


@pytest.fixture
def list_urls(session):
    return [
        "/api/categories/",
        "/api/sessions/",
        f"/api/sessions/{session.pk}/messages/",
        "/api/wallet/transactions/",
    ]


@pytest.mark.parametrize("raw", CRAFTED)
def test_crafted_cursor_is_a_client_error_on_every_list(auth_client, list_urls, raw):
    for url in list_urls:
        response = auth_client.get(f"{url}?cursor={encode(raw)}")

        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("raw", ODD)
def test_odd_cursor_is_served_or_refused_never_a_500(auth_client, list_urls, raw):
    for url in list_urls:
        response = auth_client.get(f"{url}?cursor={encode(raw)}")

        if response.status_code != 200:
            assert_error(response, 404, "not_found")


def test_crafted_cursor_on_the_public_list_needs_no_token(api_client):
    response = api_client.get(f"/api/categories/?cursor={encode('p=abc')}")

    assert_error(response, 404, "not_found")


def test_the_cursors_the_api_hands_out_still_work(auth_client, session, user):
    baker.make(ChatSession, user=user, category=session.category, _quantity=4)

    first = auth_client.get("/api/sessions/?page_size=2").json()
    second = auth_client.get(first["next"]).json()
    back = auth_client.get(second["previous"]).json()

    assert len(first["results"]) == len(second["results"]) == 2
    assert back["results"] == first["results"]
