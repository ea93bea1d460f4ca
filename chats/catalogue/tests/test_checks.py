"""``manage.py check_providers``: each deployment's provider reached on loopback, for real."""

import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from chats.catalogue.models import Deployment, Provider
from tests.helpers.catalogue import catalogue_model_make

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again: nothing listens there


def check() -> tuple[list[str], str]:
    out = StringIO()
    error = ""
    try:
        call_command("check_providers", stdout=out)
    except CommandError as exc:
        error = str(exc)
    return out.getvalue().splitlines(), error


def test_each_deployment_is_reachable_or_not_with_its_time(fake_openai, monkeypatch, general_category):
    monkeypatch.setenv("FAKE_KEY", "sk-from-the-environment")
    up = Provider.objects.create(name="up", base_url=fake_openai.base_url, api_key_env="FAKE_KEY", timeout=5)
    down = Provider.objects.create(name="down", base_url=f"http://127.0.0.1:{closed_port()}/v1", timeout=5)
    model = catalogue_model_make("house", upstream_model="fake-model")
    Deployment.objects.filter(model=model).update(provider=up)
    Deployment.objects.create(model=model, provider=down, upstream_model="fake-model", priority=2)

    lines, error = check()

    assert lines[0] == "general -> gpt-4o-mini on default (echo): reachable in 0 ms: offline echo model"
    assert lines[1].startswith("house -> fake-model on up (openai): reachable in ")
    assert lines[2].startswith("house -> fake-model on down (openai): UNREACHABLE in ")
    assert "could not connect" in lines[2]
    assert error == "1 of 3 deployments unreachable."
    asked = [(r.method, r.path, r.headers.get("authorization")) for r in fake_openai.requests]
    assert asked == [
        ("GET", "/v1/models", "Bearer sk-from-the-environment"),
        ("POST", "/v1/chat/completions", "Bearer sk-from-the-environment"),
    ]
    assert fake_openai.requests[1].body["max_tokens"] == 1
    assert "sk-from-the-environment" not in "\n".join(lines)


def test_the_default_provider_is_the_settings_and_an_error_status_is_unreachable(
    openai_settings, general_category
):
    openai_settings.configure(fail_status=500)

    lines, error = check()

    assert lines[0].startswith("general -> gpt-4o-mini on default (openai): UNREACHABLE in ")
    assert lines[0].endswith(": HTTP 500: The fake upstream failed.") or "HTTP 500" in lines[0]
    assert error == "1 of 1 deployments unreachable."


@override_settings(LLM_MODEL="not-listed")
def test_all_reachable_exits_zero_and_notes_a_model_missing_from_the_list(openai_settings, general_category):
    lines, error = check()

    assert error == ""
    assert lines[0].endswith(": not in its model list")
    assert lines[-1] == "All 1 deployments reachable."


def test_no_deployments_is_said(db):
    from chats.models import Category

    Category.objects.all().delete()
    Deployment.objects.all().delete()
    assert check() == (["No deployments to check."], "")
