"""instructor (default mode: tools), in a virtualenv of its own: instructor 1.17 pins ``jiter<0.15``,
the ``openai`` Parley serves with needs ``jiter>=0.16``. The client runs as a subprocess."""

import pytest

from tests.clients.books import Seen, assert_charged_once_each
from tests.clients.shared import City
from tests.clients.venvs import client_venv, run_client

pytestmark = pytest.mark.django_db(transaction=True)

#: instructor and the newest openai (and jiter) that it installs with: pinned, so the venv is stable.
INSTRUCTOR = ["instructor==1.17.0", "openai==3.3.0", "jiter==0.14.0"]


@pytest.fixture(scope="session")
def instructor_python():
    """Built once (about half a minute), then cached across runs."""
    return client_venv("instructor", INSTRUCTOR)


def test_instructor_tools_mode_returns_the_response_model(
    instructor_python, base_url, secret, user, general_category
):
    out = run_client(instructor_python, "instructor_client.py", base_url, secret)

    assert out["versions"]["instructor"] == "1.17.0"
    assert out["mode"] == "tool_call"
    assert out["type"] == "City"
    City.model_validate(out["output"])
    assert out["tool_calls"] == ["City"]
    usage = out["usage"]
    assert_charged_once_each(
        user, general_category, requests=1, seen=[Seen(usage["prompt_tokens"], usage["completion_tokens"])]
    )
