"""System checks: core's own (``core.checks``) fire, and none of Django's is silenced or hidden."""

import sys

import pytest
from django.core.checks import registry

from core import checks
from tests.helpers.processes import run


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_check_deploy_warns_of_hsts_and_ssl_redirect_with_the_default_settings():
    result = run([sys.executable, "manage.py", "check", "--deploy"])  # DEBUG=false, as run() sets

    output = result.stdout + result.stderr
    assert result.returncode == 0, output  # warnings only
    assert "security.W004" in output, output
    assert "security.W008" in output, output
    assert "silenced" not in output.replace("(0 silenced)", ""), output


def test_no_django_security_check_is_silenced(settings):
    assert not [check for check in settings.SILENCED_SYSTEM_CHECKS if check.startswith("security.")]


@pytest.mark.parametrize("path", checks.CHECKED_BY_PATH)
def test_middleware_whose_deploy_checks_look_for_its_path_is_listed_by_it(settings, path):
    assert path in settings.MIDDLEWARE


def test_the_checks_are_registered_and_pass_with_the_project_settings():
    assert {
        checks.check_request_threads,
        checks.check_middleware_on_the_loop,
    } <= registry.registry.registered_checks
    assert checks.check_request_threads(None) == []
    assert checks.check_middleware_on_the_loop(None) == []


def test_an_asgiref_that_lends_no_executor_is_an_error(monkeypatch):
    class ThreadSensitiveContext:  # asgiref's before it took an executor
        def __init__(self) -> None:
            pass

    monkeypatch.setattr(checks, "ThreadSensitiveContext", ThreadSensitiveContext)

    assert ids(checks.check_request_threads(None)) == ["core.E001"]


def test_a_subclass_of_djangos_security_middleware_listed_in_its_place_is_an_error(settings):
    """What the settings used to list: Django's deploy checks of it did not run."""
    settings.MIDDLEWARE = [
        "core.middleware.SecurityMiddleware"
        if path == "django.middleware.security.SecurityMiddleware"
        else path
        for path in settings.MIDDLEWARE
    ]

    assert ids(checks.check_middleware_on_the_loop(None)) == ["core.E002"]


def test_a_session_engine_not_djangos_is_an_error(settings):
    settings.SESSION_ENGINE = "somewhere.sessions"

    assert ids(checks.check_middleware_on_the_loop(None)) == ["core.E003"]


def test_a_message_storage_not_djangos_is_an_error(settings):
    settings.MESSAGE_STORAGE = "somewhere.MessageStorage"

    assert ids(checks.check_middleware_on_the_loop(None)) == ["core.E004"]


def test_the_csrf_token_in_the_session_is_an_error(settings):
    settings.CSRF_USE_SESSIONS = True

    assert ids(checks.check_middleware_on_the_loop(None)) == ["core.E005"]


def test_without_the_middleware_its_setting_is_not_checked(settings):
    settings.MIDDLEWARE = []
    settings.SESSION_ENGINE = "somewhere.sessions"
    settings.MESSAGE_STORAGE = "somewhere.MessageStorage"
    settings.CSRF_USE_SESSIONS = True

    assert checks.check_middleware_on_the_loop(None) == []
