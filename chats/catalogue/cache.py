"""The catalogue as requests read it, kept in each process for ``CATALOGUE_CACHE_SECONDS``.

Every chat reply and ``/v1/`` request needs its model: prices, limits and
deployments. They change when staff edit the catalogue, which is rare, and
reading them is the one query a ``/v1/`` request's reservation spends
before the wallet's (docs/benchmarks.md, "Issue 21"). So a process keeps
what it read for a few seconds: an edit is seen at once by the process that
made it (a saved or deleted row clears its cache, ``chats.apps``) and by
every other worker within ``CATALOGUE_CACHE_SECONDS`` (default 5; 0 turns
the cache off). A hold and its charge are priced by the same read, so a
price edited mid-reply never splits one reply across two prices.

Only what was found is kept (a name that names nothing is asked again), and
at most ``MAX_ENTRIES`` keys, so that clients sending made-up names cannot
grow it. Values are shared between requests: they are never modified.
"""

import threading
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")

MAX_ENTRIES = 1024

_entries: dict[Hashable, tuple[float, object]] = {}
_lock = threading.Lock()


def catalogue_cached(key: Hashable, load: Callable[[], T]) -> T:
    """``load()``'s value for ``key``, read at most once per ``CATALOGUE_CACHE_SECONDS``."""
    seconds = settings.CATALOGUE_CACHE_SECONDS
    if seconds <= 0:
        return load()
    now = time.monotonic()
    hit = _entries.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]  # type: ignore[return-value]
    value = load()
    if value is not None:
        with _lock:
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            _entries[key] = (now + seconds, value)
    return value


def catalogue_forget(**_: object) -> None:
    """Forget everything read: the catalogue changed (a signal receiver, hence ``**_``)."""
    with _lock:
        _entries.clear()
