"""The process's cache of the catalogue: read once, forgotten on an edit, bounded."""

import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from chats.catalogue import cache
from chats.catalogue.models import Deployment
from chats.catalogue.selectors import model_served
from chats.v1.selectors import model_requested
from tests.helpers.catalogue import catalogue_model_make

pytestmark = pytest.mark.django_db


def queries(call) -> tuple[object, int]:
    with CaptureQueriesContext(connection) as captured:
        value = call()
    return value, len(captured.captured_queries)


def test_a_model_is_read_once_then_served_from_the_cache():
    model = catalogue_model_make("house", prompt_price=1)

    first, asked = queries(lambda: model_requested(name="house"))
    again, asked_again = queries(lambda: model_requested(name="house"))
    served, served_asked = queries(lambda: model_served(model_id=model.pk))
    served_again, served_asked_again = queries(lambda: model_served(model_id=model.pk))

    assert (asked, asked_again, served_asked, served_asked_again) == (1, 0, 1, 0)
    assert again is first and served_again is served


@pytest.mark.parametrize("edit", ["model", "deployment", "delete deployment"])
def test_an_edit_saved_in_this_process_is_seen_at_once(edit):
    model = catalogue_model_make("house", prompt_price=1, upstream_model="old")
    assert model_requested(name="house").served.model.prompt_price == 1

    if edit == "model":
        model.prompt_price = Decimal("7")
        model.save()
    elif edit == "deployment":
        Deployment.objects.create(model=model, upstream_model="new", priority=0)
    else:
        Deployment.objects.create(model=model, upstream_model="new", priority=0)
        Deployment.objects.get(upstream_model="old").delete()

    served = model_requested(name="house").served
    if edit == "model":
        assert served.model.prompt_price == 7
    else:
        assert served.routes[0].upstream_model == "new"


def test_what_other_workers_edit_is_seen_once_the_cache_lapses():
    model = catalogue_model_make("house", prompt_price=1)
    with override_settings(CATALOGUE_CACHE_SECONDS=0.2):
        model_requested(name="house")
        type(model).objects.filter(pk=model.pk).update(prompt_price=9)  # as another process: no signal

        assert model_requested(name="house").served.model.prompt_price == 1  # still cached
        time.sleep(0.25)
        assert model_requested(name="house").served.model.prompt_price == 9


def test_with_no_cache_every_request_reads_the_catalogue():
    catalogue_model_make("house")
    with override_settings(CATALOGUE_CACHE_SECONDS=0):
        counts = [queries(lambda: model_requested(name="house"))[1] for _ in range(3)]

    assert counts == [1, 1, 1]


def test_names_that_name_nothing_are_not_kept_and_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    for n in range(5):
        catalogue_model_make(f"m{n}")

    assert [queries(lambda: model_requested(name="nothing"))[1] for _ in range(2)] == [1, 1]
    for n in range(5):
        model_requested(name=f"m{n}")

    assert len(cache._entries) <= 3
