"""State per event loop: each loop its own value, a closed loop's value dropped."""

import asyncio
import gc
import threading
import weakref

from core.loops import PerLoop


def test_each_loop_gets_its_own_value_and_keeps_it():
    per_loop = PerLoop(object)

    async def twice():
        return per_loop.get(), per_loop.get()

    first, again = asyncio.run(twice())
    other, _ = asyncio.run(twice())

    assert first is again
    assert other is not first


def test_a_closed_loops_value_is_dropped_when_another_loop_asks():
    per_loop = PerLoop(list)

    async def ask():
        per_loop.get()
        return [loop for loop, _ in per_loop.items()]

    closed = asyncio.new_event_loop()
    assert closed.run_until_complete(ask()) == [closed]
    closed.close()
    forgotten = weakref.ref(closed)
    del closed

    asyncio.run(ask())
    gc.collect()
    assert forgotten() is None  # nothing holds the closed loop (or its sockets) any more


def test_items_lists_the_open_loops_of_other_threads_and_pop_forgets_the_running_one():
    per_loop = PerLoop(dict)
    ready, finish = threading.Event(), threading.Event()
    other_loop = asyncio.new_event_loop()

    def serve():
        async def hold():
            per_loop.get()["name"] = "other"
            ready.set()
            await asyncio.to_thread(finish.wait)

        other_loop.run_until_complete(hold())

    thread = threading.Thread(target=serve)
    thread.start()
    ready.wait(5)

    async def here():
        per_loop.get()["name"] = "here"
        seen = {value["name"] for _, value in per_loop.items()}
        popped = per_loop.pop()
        return seen, popped, {value["name"] for _, value in per_loop.items()}

    seen, popped, left = asyncio.run(here())
    finish.set()
    thread.join(5)
    other_loop.close()

    assert seen == {"here", "other"}
    assert popped == {"name": "here"}
    assert left == {"other"}
