"""Reading and validating the environment.

Every setting comes from one ``environ.Env``. A bad value must stop the
process at start-up with a message that names the variable, rather than
surfacing later as a confusing error deep inside a request.
"""

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()


def read_dotenv(base_dir: Path) -> None:
    """Load ``.env`` when there is one; real environment variables win."""
    dotenv = base_dir / ".env"
    if dotenv.is_file():
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
        raise ImproperlyConfigured(f"Set the {name} environment variable.") from None
    except (TypeError, ValueError) as exc:
        raw = env.str(name, default="")
        raise ImproperlyConfigured(f"{name}={raw!r} is not valid: {exc}") from None
    if choices is not None and value not in choices:
        allowed = ", ".join(sorted(map(str, choices)))
        raise ImproperlyConfigured(f"{name}={value!r} is not valid: choose one of {allowed}.")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} is not valid: it must be at least {minimum}.")
    return value
