"""Fixtures for the cross-app tests: Google sign-in configured against a loopback stand-in."""

import pytest

from tests.fakes.google_idp import WEB_CLIENT_ID, GoogleIdentityPlatform


@pytest.fixture(scope="module")
def google():
    """A loopback stand-in for Google's certificate endpoint: nothing reaches googleapis.com."""
    platform = GoogleIdentityPlatform()
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture
def google_configured(google, settings) -> GoogleIdentityPlatform:
    """Google sign-in on, for the stand-in's web client id."""
    settings.GOOGLE_CLIENT_ID = [WEB_CLIENT_ID]
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {
            "APPS": [{"client_id": WEB_CLIENT_ID, "secret": "", "key": ""}],
            "CERTS_URL": google.certs_url,
        }
    }
    return google
