"""Reading and validating the environment.

Every setting comes from one ``environ.Env``. A bad value must stop the
process at start-up with a message that names the variable, rather than
surfacing later as a confusing error deep inside a request.
"""

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

# What to say when a value does not parse, for the readers whose own message misleads.
_EXPECTED = {env.int: "use a whole number.", env.float: "use a number."}


class SettingError(ImproperlyConfigured):
    """The environment holds a value Parley cannot run with; the message names the variable."""


@contextmanager
def exit_on_setting_error() -> Iterator[None]:
    """Around an entry point (``manage.py``, the ASGI application): a bad setting ends the
    process with one line on stderr and status 1, not a traceback through Django's internals.
    """
    try:
        yield
    except SettingError as exc:
        sys.exit(f"Configuration error: {exc}")


def read_dotenv(base_dir: Path) -> None:
    """Load ``.env`` beside ``manage.py`` when there is one, or the file ``ENV_FILE`` names; real
    environment variables win.

    ``ENV_FILE`` set but empty reads no file at all. The tests run so (pytest.ini): what they check
    must not depend on a developer's ``.env``, such as the one ``make run`` writes (DEBUG on, a slow
    echo model). A file named but missing stops start-up rather than being skipped unnoticed.
    """
    named = os.environ.get("ENV_FILE")
    if named is None:
        dotenv = base_dir / ".env"
        if not dotenv.is_file():
            return
    elif named == "":
        return
    else:
        dotenv = Path(named)
        if not dotenv.is_file():
            raise SettingError(f"ENV_FILE={named!r} is not valid: there is no such file.")
    environ.Env.read_env(str(dotenv), overwrite=False)


def setting(
    name: str,
    reader: Callable[..., Any],
    *,
    default: Any = environ.Env.NOTSET,
    choices: Iterable[Any] | None = None,
    minimum: float | None = None,
) -> Any:
    """Read ``name`` with ``reader`` (an ``env.int``, ``env.bool``...) and validate it."""
    try:
        value = reader(name, default=default)
    except ImproperlyConfigured:
        raise SettingError(f"Set the {name} environment variable.") from None
    except (TypeError, ValueError) as exc:
        raw = env.str(name, default="")
        # django-environ's own messages mislead ("could not convert string to float: ''" for abc).
        expected = _EXPECTED.get(reader, str(exc))
        raise SettingError(f"{name}={raw!r} is not valid: {expected}") from None
    if choices is not None and value not in choices:
        allowed = ", ".join(sorted(map(str, choices)))
        raise SettingError(f"{name}={value!r} is not valid: choose one of {allowed}.")
    if minimum is not None and value is not None and value < minimum:
        raise SettingError(f"{name}={value!r} is not valid: it must be at least {minimum}.")
    return value
