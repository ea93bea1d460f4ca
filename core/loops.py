"""State that belongs to one event loop: clients, heartbeats, the replies a worker runs.

Under uvicorn a process has one loop. A test run has many, one after another
and sometimes side by side (a live server in a thread beside the test's own
loop), and what one loop holds (sockets, tasks, timers) must neither leak into
another nor outlive it: a closed loop's entry is dropped the next time any
loop asks for its own.
"""

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One ``T`` per event loop, made by ``factory`` on the loop's first ask."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: dict[asyncio.AbstractEventLoop, T] = {}
        self._lock = threading.Lock()  # loops in several threads may ask at once

    def get(self) -> T:
        """The running loop's value (call it in a coroutine or a callback on the loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for closed in [other for other in self._values if other.is_closed()]:
                del self._values[closed]
            if loop not in self._values:
                self._values[loop] = self._factory()
            return self._values[loop]

    def pop(self) -> T | None:
        """Forget the running loop's value and hand it back, if it had one."""
        with self._lock:
            return self._values.pop(asyncio.get_running_loop(), None)

    def items(self) -> Iterator[tuple[asyncio.AbstractEventLoop, T]]:
        """Every open loop's value (a snapshot: safe to iterate while loops come and go)."""
        with self._lock:
            return iter([(loop, value) for loop, value in self._values.items() if not loop.is_closed()])
