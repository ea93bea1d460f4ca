"""The README's OpenAI client examples run as written, against Parley on loopback with the offline
``echo`` model: a new user copying them sees what the comments promise."""

import contextlib
import io
import re
from pathlib import Path

import pytest

from chats.models import UsageRecord
from tests.helpers.money import assert_books_balance

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.django_db(transaction=True)
def test_the_readmes_openai_examples_run_offline_on_echo(live_asgi_url, user, general_category):
    from accounts.services import api_key_create

    _, secret = api_key_create(user=user, name="readme")
    blocks = [block for block in python_blocks(README.read_text()) if "client" in block]
    assert len(blocks) >= 2, "the README lost its client examples"
    source = "\n".join(blocks)
    source = source.replace("http://127.0.0.1:8000/v1", f"{live_asgi_url}/v1")
    source = source.replace('"pk-..."', repr(secret))
    printed = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "README.md", "exec"), namespace)  # the README's own code

    call = namespace["call"]
    assert call.function.name == "get_weather"
    assert "Sunny, 21 °C" in printed.getvalue()  # the tool's result reached the final answer
    parsed = namespace["parsed"].choices[0].message.parsed
    assert isinstance(parsed, namespace["City"])
    assert UsageRecord.objects.filter(status="complete").count() == 4
    assert_books_balance(user)
