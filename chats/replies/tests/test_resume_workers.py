"""Replies that outlive their connection, across two real uvicorn workers sharing PostgreSQL and Redis.

Each test starts worker processes (``python -m uvicorn config.asgi:application``,
lifespan on, production settings) on the test database, with their own
Redis database, and the fake OpenAI upstream of this process: a reply
resumed on the other worker, a stop sent to the other worker, the
concurrency limit counted across workers, a worker asked to stop (SIGTERM)
in the middle of replies, the events of a finished reply read elsewhere.

The same scenarios on one worker without Redis are in ``test_resume.py``.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from chats.models import Message
from chats.replies.services import replies_close_stale
from tests.helpers.concurrency import requires_postgres
from tests.helpers.money import assert_books_balance, expected_cost
from tests.helpers.streams import events_url, read_events, resume, settled_reply, start_reply
from tests.helpers.tcp_proxy import TcpProxy
from wallets.models import Hold, Wallet

REDIS_DB = 13  # this file's own database, flushed before and after each test
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
UVICORN = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
UVICORN += ["--lifespan", "on", "--no-access-log"]
SHUTDOWN_GRACE = 1.0  # seconds: REPLY_SHUTDOWN_GRACE of every worker here


def _redis_answers() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping())
    except Exception:
        return False


pytestmark = [
    requires_postgres,
    pytest.mark.skipif(not _redis_answers(), reason="needs Redis answering PING at 127.0.0.1:6379"),
    pytest.mark.django_db(transaction=True),
]

WORDS = [f"w{i}" for i in range(40)]


# --- the workers ---------------------------------------------------------------------------


@dataclass
class Worker:
    """One uvicorn process serving the project, its output in ``log_path``."""

    name: str
    url: str
    process: subprocess.Popen
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"worker {self.name} exited ({self.process.returncode}) at start:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"worker {self.name} did not answer /healthz within {timeout} s:\n{self.log()}")

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL if still there after ``timeout`` seconds; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    """The test database (the one this test writes in), as the workers' DATABASE_URL."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def redis_db():
    """This file's Redis database, empty at the start and at the end; a sync client of it."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def start_workers(transactional_db, openai_settings, redis_db, tmp_path):
    """``start_workers("A", "B", **env)``: worker processes on the test database and Redis, ready.

    The fake upstream (``openai_settings``) runs in this process. Every worker
    is stopped at the end (SIGTERM, SIGKILL after 15 s); their logs are
    printed, so a failing test shows them.
    """
    started: list[Worker] = []
    base_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _database_url(),
        "DATABASE_POOL_MIN": "0",
        "DATABASE_POOL_MAX": "8",
        "SECRET_KEY": settings.SECRET_KEY,  # the tokens minted here are valid there
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "REDIS_URL": REDIS_URL,
        "LLM_PROVIDER": "openai",
        "OPENAI_BASE_URL": openai_settings.base_url,
        "OPENAI_API_KEY": "x",
        "LLM_MAX_RETRIES": "0",
        "MESSAGE_THROTTLE_RATE": "100000/min",
        "REPLY_SHUTDOWN_GRACE": str(SHUTDOWN_GRACE),
        "LOG_LEVEL": "WARNING",
    }

    def start(*names: str, **env: str) -> list[Worker]:
        workers = []
        for name in names:
            port = _free_port()
            log_path = tmp_path / f"worker-{name}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [*UVICORN, "--port", str(port)],
                    cwd=settings.BASE_DIR,
                    env={**base_env, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            workers.append(Worker(name, f"http://127.0.0.1:{port}", process, log_path))
        started.extend(workers)
        for worker in workers:  # they start in parallel
            worker.wait_ready()
        return workers

    yield start
    for worker in started:
        status = worker.terminate()
        print(f"---- worker {worker.name} (exit {status}):\n{worker.log()}")


@pytest.fixture
def workers(start_workers):
    return start_workers("A", "B")


def messages_url(base, session) -> str:
    return f"{base}/api/sessions/{session.id}/messages/"


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def no_reply_pending() -> bool:
    return not Message.objects.filter(status=Message.Status.PENDING).exists()


# --- the tests -----------------------------------------------------------------------------


def test_a_reply_started_on_a_resumes_on_b_with_every_missed_event_once(
    workers, openai_settings, session, headers, user
):
    a, b = workers
    openai_settings.configure(reply=" ".join(WORDS), chunk_delay=0.05)
    first = start_reply(a.url, session, headers, deltas=3)  # then the connection drops
    assert [event["id"] for event in first] == [1, 2, 3, 4]
    message_id = first[0]["data"]["assistant_message_id"]
    assert not openai_settings.last_request.completed  # still running on A while B takes over

    rest = resume(b.url, session, message_id, {**headers, "Last-Event-ID": "4"})

    ids = [event["id"] for event in first + rest]
    assert ids == list(range(1, len(ids) + 1))  # every event exactly once, in order
    assert [event["event"] for event in rest[:-1]] == ["delta"] * (len(rest) - 1)
    assert rest[-1]["event"] == "done"
    text = "".join(event["data"]["content"] for event in first + rest if event["event"] == "delta")
    assert text == " ".join(WORDS)
    reply = settled_reply(session)
    assert (reply.status, reply.content) == ("complete", " ".join(WORDS))
    done = rest[-1]["data"]
    assert done["message"]["status"] == "complete"
    assert done["cost"] == reply.cost == expected_cost(reply.prompt_tokens, reply.completion_tokens) > 0
    assert done["usage"]["completion_tokens"] == len(WORDS)  # charged in full, as the upstream reported
    assert Wallet.objects.get(user=user).balance == done["balance"] == 100 - reply.cost
    assert openai_settings.last_request.completed
    assert_books_balance(user)


def test_a_stop_sent_to_b_cuts_the_reply_running_on_a_within_one_chunk(
    workers, openai_settings, session, headers, user
):
    a, b = workers
    openai_settings.configure(reply=" ".join(WORDS * 3), chunk_delay=0.05)
    url = messages_url(a.url, session)
    with (
        httpx.Client(timeout=20) as client,
        client.stream("POST", url, json={"content": "Hi"}, headers=headers) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        first = read_events(lines, stop_after_deltas=3)
        message_id = first[0]["data"]["assistant_message_id"]
        stop_url = f"{messages_url(b.url, session)}{message_id}/stop/"
        stopped = httpx.post(stop_url, headers=headers, timeout=10)
        sent_when_stopped = openai_settings.last_request.chunks_sent
        assert stopped.status_code == 202, stopped.text
        assert stopped.json() == {"id": message_id, "status": "stopping"}
        rest = read_events(lines)  # the reader on A sees the end

    assert rest[-1]["event"] == "done"
    done = rest[-1]["data"]
    assert done["message"]["status"] == "incomplete"
    assert openai_settings.wait_until_sync(lambda: openai_settings.last_request.disconnected, timeout=5)
    # Within one chunk: the upstream sent at most one more chunk after the stop was accepted...
    assert openai_settings.last_request.chunks_sent <= sent_when_stopped + 1
    reply = settled_reply(session)
    produced = len(reply.content.split())
    # ...and the reply holds what was produced up to then, far from the whole answer.
    assert 3 <= produced <= sent_when_stopped + 1 < len(WORDS) * 3
    text = "".join(event["data"]["content"] for event in first + rest if event["event"] == "delta")
    assert text == reply.content == done["message"]["content"]
    assert reply.status == "incomplete"
    assert reply.cost == expected_cost(reply.prompt_tokens, reply.completion_tokens) == done["cost"]
    assert Wallet.objects.get(user=user).balance == done["balance"] == 100 - reply.cost

    again = httpx.post(stop_url, headers=headers, timeout=10)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert_books_balance(user)


def test_a_fourth_concurrent_reply_across_workers_is_429_and_nothing_is_reserved(
    workers, openai_settings, session, headers, user, redis_db
):
    a, b = workers
    openai_settings.configure(reply=" ".join(WORDS * 2), chunk_delay=0.05)  # about 4 s each
    started = [start_reply(a.url, session, headers, deltas=1) for _ in range(3)]
    assert Hold.objects.filter(status=Hold.Status.OPEN).count() == 3

    fourth = httpx.post(messages_url(b.url, session), json={"content": "Hi"}, headers=headers, timeout=10)

    assert fourth.status_code == 429, fourth.text
    assert fourth.json()["error"]["code"] == "too_many_replies"
    assert Message.objects.filter(session=session).count() == 6  # three questions, three replies
    assert Hold.objects.filter(status=Hold.Status.OPEN).count() == 3  # nothing reserved for the fourth
    assert len(openai_settings.requests) == 3
    for events in started:  # they run on to their end, read from B, and give their slots back
        rest = resume(b.url, session, events[0]["data"]["assistant_message_id"], headers)
        assert rest[-1]["event"] == "done"
        assert rest[-1]["data"]["message"]["status"] == "complete"
    assert wait_until(no_reply_pending)
    assert wait_until(lambda: redis_db.zcard(f"parley:replies-running:{user.pk}") == 0)  # slots given back
    openai_settings.configure(reply="one more")
    again = start_reply(b.url, session, headers, deltas=99)
    assert (again[0]["event"], again[-1]["event"]) == ("start", "done")
    assert_books_balance(user)


@pytest.mark.parametrize(
    "reader",
    [
        "gone",
        "connected",
    ],
)
def test_sigterm_during_replies_settles_them_and_leaves_nothing_held(
    start_workers, openai_settings, session, headers, user, redis_db, reader
):
    """Two replies of 10 s on worker A, SIGTERM after a few deltas: they are cut after the grace.

    ``gone``: both readers have dropped their connections; ``connected``: one still reads.
    """
    (a,) = start_workers("A")
    openai_settings.configure(reply=" ".join(WORDS * 5), chunk_delay=0.05)  # 200 chunks: 10 s
    dropped = start_reply(a.url, session, headers, deltas=2)
    url = messages_url(a.url, session)
    second: list[dict] = []
    ready = threading.Event()

    def read_along() -> None:
        with (
            httpx.Client(timeout=30) as client,
            client.stream("POST", url, json={"content": "Hi"}, headers=headers) as response,
        ):
            lines = response.iter_lines()
            second.extend(read_events(lines, stop_after_deltas=2))
            ready.set()
            if reader == "connected":
                second.extend(read_events(lines))

    thread = threading.Thread(target=read_along, daemon=True)
    thread.start()
    assert ready.wait(10), a.log()
    assert Hold.objects.filter(status=Hold.Status.OPEN).count() == 2

    asked = time.monotonic()
    a.process.send_signal(signal.SIGTERM)
    try:
        status = a.process.wait(timeout=SHUTDOWN_GRACE + 5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker A still runs {SHUTDOWN_GRACE + 5} s after SIGTERM (grace {SHUTDOWN_GRACE} s)")
    took = time.monotonic() - asked
    thread.join(timeout=10)

    # A clean exit: uvicorn ends by re-raising the SIGTERM it handled.
    assert status in {0, -signal.SIGTERM}, a.log()
    assert "Application shutdown complete" in a.log()
    print(f"worker A exited {took:.1f} s after SIGTERM")
    assert took < 10  # the replies were cut, not left to run their 10 s
    assert not Hold.objects.filter(status=Hold.Status.OPEN).exists()
    assert no_reply_pending()
    replies = list(Message.objects.filter(session=session, role="assistant"))
    assert len(replies) == 2
    for reply in replies:
        assert reply.status == "incomplete"
        assert reply.content  # something was produced, and is charged
        assert reply.cost == expected_cost(reply.prompt_tokens, reply.completion_tokens) > 0
    assert Wallet.objects.get(user=user).balance == 100 - sum(reply.cost for reply in replies)
    if reader == "connected":
        assert second[-1]["event"] == "done"  # the connected reader saw the end
        assert second[-1]["data"]["message"]["status"] == "incomplete"
    # Each log ends with `done` in Redis, for a reader coming back on another worker.
    for events in (dropped, second):
        stream = redis_db.xrange(f"parley:reply:{events[0]['data']['assistant_message_id']}:events")
        assert stream[-1][1][b"e"] == b"done"
    assert redis_db.zcard(f"parley:replies-running:{user.pk}") == 0
    assert_books_balance(user)


def test_a_reply_that_ended_on_a_is_replayed_whole_on_b(workers, openai_settings, session, headers):
    a, b = workers
    openai_settings.configure(reply="one two three four")
    first = start_reply(a.url, session, headers, deltas=99)
    assert first[-1]["event"] == "done"
    message_id = first[0]["data"]["assistant_message_id"]

    again = resume(b.url, session, message_id, headers, params={"after": "0"})

    assert again == first  # the same events: ids, names and data
    assert resume(b.url, session, message_id, {**headers, "Last-Event-ID": "3"}) == first[3:]


def test_reading_past_the_end_of_a_reply_that_ended_on_a_is_empty_on_b(
    workers, openai_settings, session, headers
):
    """As on one worker (``test_resume.py``): nothing after the last event, at once."""
    a, b = workers
    openai_settings.configure(reply="one two three four")
    first = start_reply(a.url, session, headers, deltas=99)
    message_id = first[0]["data"]["assistant_message_id"]
    url = events_url(b.url, session, message_id)

    response = httpx.get(url, headers={**headers, "Last-Event-ID": str(first[-1]["id"])}, timeout=8)

    assert response.status_code == 200
    assert response.text == ""


# --- faults: a worker killed, the database gone for a while -------------------------------------


def test_a_killed_workers_reply_is_409_on_resume_then_ends_with_its_stored_end_after_the_sweep(
    start_workers, openai_settings, session, headers, user, redis_db
):
    """Worker A is SIGKILLed mid-reply. A reader following on B learns it within a heartbeat and a
    read; a resume on B is 409 ``reply_unavailable`` while the reply's lease runs, and after the
    sweep one final event built from the stored reply. The sweep also frees the user's slot."""
    a, b = start_workers(
        "A", "B", REPLY_LEASE_SECONDS="3", WORKER_HEARTBEAT_SECONDS="0.3", MAX_CONCURRENT_REPLIES="1"
    )
    openai_settings.configure(reply=" ".join(WORDS * 5), chunk_delay=0.05)  # 200 chunks: 10 s
    first = start_reply(a.url, session, headers, deltas=3)
    message_id = first[0]["data"]["assistant_message_id"]
    following: list[dict] = []

    def follow_on_b() -> None:
        following.extend(resume(b.url, session, message_id, {**headers, "Last-Event-ID": "4"}))

    reader = threading.Thread(target=follow_on_b, daemon=True)
    reader.start()
    time.sleep(0.5)  # the reader on B follows the live log

    a.process.kill()
    a.process.wait(timeout=10)
    killed = time.monotonic()

    assert wait_until(lambda: not redis_db.keys("parley:worker:*"), timeout=5)  # its heartbeat stopped
    resumed = httpx.get(events_url(b.url, session, message_id), headers=headers, timeout=10)
    assert resumed.status_code == 409, resumed.text
    assert resumed.json()["error"]["code"] == "reply_unavailable"
    assert Message.objects.get(pk=message_id).status == "pending"  # within its lease: not swept yet
    stop = httpx.post(f"{messages_url(b.url, session)}{message_id}/stop/", headers=headers, timeout=10)
    assert (stop.status_code, stop.json()["error"]["code"]) == (409, "reply_unavailable")
    reader.join(timeout=15)
    assert not reader.is_alive()  # the reader following on B was told, not left waiting
    assert following[-1]["event"] == "error"
    assert following[-1]["data"]["error"]["code"] == "reply_unavailable"
    # Its slot is still taken (its lease has not run out): the user's one slot is busy.
    refused = httpx.post(messages_url(b.url, session), json={"content": "Hi"}, headers=headers, timeout=10)
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "too_many_replies")

    assert wait_until(lambda: Message.objects.get(pk=message_id).lease_expires_at < timezone.now(), 5)
    with override_settings(REDIS_URL=REDIS_URL):
        assert replies_close_stale() == 1
    swept = time.monotonic() - killed
    assert redis_db.zcard(f"parley:replies-running:{user.pk}") == 0  # freed by the sweep
    assert swept < 2 * 3  # before the slot's own lease (twice the reply's) would have freed it

    ended = resume(b.url, session, message_id, {**headers, "Last-Event-ID": "4"})
    assert [event["event"] for event in ended] == ["error"]  # one final event, from the database
    assert ended[0]["data"]["error"]["code"] == "llm_unavailable"  # a failed reply, free
    assert Message.objects.get(pk=message_id).status == "failed"
    openai_settings.configure(reply="one more")
    again = start_reply(b.url, session, headers, deltas=99)
    assert (again[0]["event"], again[-1]["event"]) == ("start", "done")
    assert not Hold.objects.filter(status=Hold.Status.OPEN).exists()
    assert_books_balance(user)


def test_a_reply_ending_while_the_database_is_unreachable_is_stored_and_charged_once_it_is_back(
    start_workers, openai_settings, session, headers, user
):
    """The database goes away as a reply ends (every connection cut, new ones refused, as in a
    restart) and comes back 2 s later: the settlement is tried again until it is stored, so what
    the client was sent is kept and charged, once."""
    db = connection.settings_dict
    proxy = TcpProxy(target=(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    through_proxy = _database_url().replace(f":{db['PORT'] or 5432}/", f":{proxy.port}/")
    (a,) = start_workers("A", DATABASE_URL=through_proxy, DATABASE_POOL_TIMEOUT="1", REPLY_LEASE_SECONDS="20")
    openai_settings.configure(reply=" ".join(WORDS[:20]), chunk_delay=0.05)
    events: list[dict] = []
    reader = threading.Thread(
        target=lambda: events.extend(start_reply(a.url, session, headers, deltas=999)), daemon=True
    )
    try:
        reader.start()
        assert openai_settings.wait_until_sync(
            lambda: openai_settings.requests and openai_settings.last_request.chunks_sent >= 3, timeout=10
        )
        proxy.cut()
        assert openai_settings.wait_until_sync(lambda: openai_settings.last_request.completed, timeout=10)
        time.sleep(2)  # the reply has ended; its settlement meets no database
        assert reader.is_alive(), events[-2:]  # the client waits for the end, rather than hearing of an error
        proxy.restore()
        reader.join(timeout=20)
    finally:
        proxy.close()

    assert events[-1]["event"] == "done", (events[-1], a.log())
    sent = "".join(event["data"]["content"] for event in events if event["event"] == "delta")
    assert sent == " ".join(WORDS[:20])
    reply = settled_reply(session)
    assert (reply.status, reply.content) == ("complete", sent)  # what the client read is stored
    assert (
        reply.cost
        == events[-1]["data"]["cost"]
        == expected_cost(reply.prompt_tokens, reply.completion_tokens)
    )
    assert Wallet.objects.get(user=user).balance == 100 - reply.cost  # charged once
    assert not Hold.objects.filter(status=Hold.Status.OPEN).exists()
    assert "could not reach the database" in a.log()
    assert_books_balance(user)


# --- providers: a cooldown and the metrics, shared by the workers ----------------------------


def test_a_cooldown_started_on_one_worker_skips_the_deployment_on_the_other_and_metrics_add_up(
    start_workers, user, redis_db, tmp_path
):
    """Two deployments of ``house``; ``main`` fails. Two failures on A start its cooldown (in
    Redis): B does not ask it, and after the cooldown asks it again. ``/metrics`` on either
    worker counts the requests of both (``PROMETHEUS_MULTIPROC_DIR``)."""
    from prometheus_client.parser import text_string_to_metric_families

    from accounts.services import api_key_create
    from chats.catalogue.models import CatalogueModel, Deployment, Provider
    from tests.fakes.openai_upstream import FakeOpenAI

    with FakeOpenAI() as main, FakeOpenAI() as spare:
        main.configure(fail_status=500)
        spare.configure(reply="spare")
        model = CatalogueModel.objects.create(
            public_id="house", name="House", prompt_price=1, completion_price=1
        )
        for priority, (name, fake) in enumerate((("main", main), ("spare", spare)), start=1):
            provider = Provider.objects.create(name=name, base_url=fake.base_url, retries=0)
            Deployment.objects.create(
                model=model, provider=provider, upstream_model=f"{name}-llm", priority=priority
            )
        _, secret = api_key_create(user=user, name="bot")
        shared = tmp_path / "metrics"
        shared.mkdir()
        a, b = start_workers(
            "A",
            "B",
            COOLDOWN_FAILURES="2",
            COOLDOWN_SECONDS="2",
            METRICS_TOKEN="scrape",
            PROMETHEUS_MULTIPROC_DIR=str(shared),
        )

        def ask(worker: Worker) -> str:
            answer = httpx.post(
                f"{worker.url}/v1/chat/completions",
                json={"model": "house", "messages": [{"role": "user", "content": "Hi"}]},
                headers={"Authorization": f"Bearer {secret}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            return answer.json()["choices"][0]["message"]["content"]

        assert [ask(a), ask(a)] == ["spare", "spare"]
        assert len(main.requests) == 2
        assert redis_db.exists("parley:deployment:main/main-llm:cooldown")

        assert ask(b) == "spare"
        assert len(main.requests) == 2  # B skipped it: the cooldown is shared

        main.configure(reply="main again")
        assert wait_until(lambda: not redis_db.exists("parley:deployment:main/main-llm:cooldown"), timeout=5)
        assert ask(b) == "main again"
        assert len(main.requests) == 3

        scrape = httpx.get(f"{a.url}/metrics", headers={"Authorization": "Bearer scrape"}, timeout=10).text

    def value(name: str, **labels: str) -> float:
        for family in text_string_to_metric_families(scrape):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return sample.value
        return 0.0

    # Counted by both workers, read from A.
    assert value("parley_replies_total", model="house", deployment="spare/spare-llm", outcome="complete") == 3
    assert value("parley_replies_total", model="house", deployment="main/main-llm", outcome="complete") == 1
    assert value("parley_failovers_total", deployment="main/main-llm") == 2
    assert value("parley_cooldowns_total", deployment="main/main-llm") == 1
