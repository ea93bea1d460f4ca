"""Shared plumbing for the streaming benchmarks (``stream_overhead.py``, ``stream_capacity.py``).

Nothing here imports Django: the load generator stays a plain asyncio +
httpx process, and everything that needs the project runs in a subprocess
of its own:

* :class:`FakeUpstream`: ``chats.tests.fake_openai.FakeOpenAI`` in its own
  process (so its event loop shares a GIL with neither the server nor the
  load generator), configured with a :class:`~chats.tests.fake_openai.Scenario`.
* :class:`Server`: ``uvicorn config.asgi:application``, one worker, one
  process (the ``Popen`` pid *is* the worker, so ``/proc/<pid>/status`` is
  its memory).
* :func:`prepare_database`: create the PostgreSQL database if it is
  missing, then ``manage.py migrate``.
* :func:`register_users` (through the API) and :func:`seed_users` (straight
  into the database, for a thousand users at once).
* :func:`sse_events`: a small server-sent-events reader over httpx.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# The fake upstream in a process of its own, on uvloop: reads a Scenario as
# JSON from argv, prints its port, serves until its stdin closes.
_FAKE_LAUNCHER = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from chats.tests.fake_openai import FakeOpenAI
import uvloop
fake = FakeOpenAI(loop_factory=uvloop.new_event_loop)
fake.configure(**json.loads(sys.argv[2]))
fake.start()
print(fake.port, flush=True)
sys.stdin.read()
os._exit(0)  # the process is only the fake: nothing to clean up
"""

# Users, wallets and sessions straight into the database (the post_save
# signal grants the wallet, as for any user), and an access token each.
_SEEDER = """
import json, sys
import django
django.setup()
from django.db import transaction
from rest_framework_simplejwt.tokens import AccessToken
from accounts.models import User
from chats import services
prefix, count = sys.argv[1], int(sys.argv[2])
for index in range(count):
    with transaction.atomic():
        user = User.objects.create_user(f"{prefix}-{index}", password=None)
        session = services.session_create(user=user, category="general")
    print(json.dumps({"token": str(AccessToken.for_user(user)), "session": str(session.id)}), flush=True)
"""


# --- numbers -----------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# --- the machine -----------------------------------------------------------------


def python_speed_us() -> float:
    """Microseconds for ``sum(range(1000))``, best of 5: how fast this machine runs Python.

    Latency figures scale with it, so it lets figures taken on different
    machines be compared (22.7 us on the machine of docs/benchmarks.md).
    """
    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, kernel, Python, its speed and the load average now: for the record."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        total_kb = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(total_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_sum_range_1000_us": round(python_speed_us(), 1),
        "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads of a process, from ``/proc/<pid>/status``."""
    wanted = {"VmRSS", "VmHWM", "Threads"}
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in wanted:
                found[name] = int(value.split()[0])
    return found


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def steal_seconds() -> float:
    """CPU time that the hypervisor gave to other guests instead of this one, all CPUs together.

    On a shared VM this is what makes two runs of the same benchmark differ:
    the scripts print it beside their figures.
    """
    with open("/proc/stat") as stat:
        return int(stat.readline().split()[8]) / CLOCK_TICKS


def postgres_pids() -> list[int]:
    """The local PostgreSQL server's processes (its backends do part of the work measured)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == "postgres":
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


class CpuMeter:
    """CPU used between ``start()`` and ``stop()``: by given processes, by PostgreSQL, by the machine."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.used: dict[str, float] = {}

    @staticmethod
    def _machine() -> float:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
        return (sum(ticks) - ticks[3] - ticks[4] - ticks[7]) / CLOCK_TICKS  # all but idle, iowait, steal

    def _read(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        for pid in postgres_pids():
            try:
                now[f"postgres:{pid}"] = cpu_seconds(pid)
            except OSError:  # a backend that just ended
                continue
        now["machine"] = self._machine()
        now["steal"] = steal_seconds()
        return now

    def start(self) -> None:
        self._wall = time.monotonic()
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        """CPU seconds per process name, ``postgres`` (all its backends), ``others`` and ``wall``."""
        end = self._read()
        used = {name: end[name] - self._start[name] for name in self.pids}
        # Backends that started meanwhile count whole; those that ended are lost (the pool keeps them).
        used["postgres"] = sum(
            end[key] - self._start.get(key, 0.0) for key in end if key.startswith("postgres:")
        )
        used["machine"] = end["machine"] - self._start["machine"]
        used["steal"] = end["steal"] - self._start["steal"]
        used["others"] = max(0.0, used["machine"] - sum(used[name] for name in [*self.pids, "postgres"]))
        used["wall"] = time.monotonic() - self._wall
        self.used = used
        return used


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the database -------------------------------------------------------------


def reset_database(url: str) -> None:
    """Drop (forcing out old sessions) and create the PostgreSQL database ``url`` names."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to drop database {name!r}")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def resolve_database_url(explicit: str | None) -> str:
    """``--database-url``, else ``DATABASE_URL``, else a throwaway SQLite file.

    PostgreSQL is what the figures are for. On SQLite every write takes the one
    database lock, and concurrent replies currently fail with "database is
    locked" (``docs/benchmarks-streaming.md``): it only shows that a script runs.
    """
    if explicit:
        return explicit
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    path = Path(tempfile.mkdtemp(prefix="parley-bench-")) / "bench.sqlite3"
    return f"sqlite:///{path}"


def is_postgres(url: str) -> bool:
    return url.split(":", 1)[0] in {"postgres", "postgresql", "pgsql", "postgis"}


def prepare_database(url: str, env: dict[str, str]) -> None:
    """Create the PostgreSQL database if it does not exist, then migrate it."""
    if is_postgres(url):
        import psycopg  # the project's own driver, in the same virtualenv

        parts = urlsplit(url)
        name = parts.path.lstrip("/")
        admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
                print(f"created database {name}")
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


def server_env(database_url: str, upstream: str, **extra: Any) -> dict[str, str]:
    """The environment of the server and of the Django helpers: what a deployment sets."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-only-not-a-secret-" + "x" * 40,
            "DEBUG": "false",
            "LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": upstream,
            "OPENAI_API_KEY": "bench",
            "LLM_MAX_TOKENS": "256",
            "INITIAL_WALLET_BALANCE": str(10**12),
            "AUTH_THROTTLE_RATE": "100000/min",
            "JWT_ACCESS_MINUTES": "600",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update({name: str(value) for name, value in extra.items()})
    return env


# --- processes -------------------------------------------------------------------


class FakeUpstream:
    """The fake OpenAI server in a subprocess; ``base_url`` once started."""

    def __init__(self, scenario: dict[str, Any]) -> None:
        self.scenario = scenario
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> FakeUpstream:
        self.process = subprocess.Popen(
            [PYTHON, "-c", _FAKE_LAUNCHER, str(ROOT), json.dumps(self.scenario)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        port = int(self.process.stdout.readline())
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    def configure(self, **scenario: Any) -> None:
        """Replace the scenario (``POST /fake/scenario``); later requests use it."""
        control = self.base_url.removesuffix("/v1") + "/fake/scenario"
        httpx.post(control, json=scenario, timeout=10).raise_for_status()

    def __exit__(self, *exc_info: object) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Server:
    """``uvicorn config.asgi:application``: one worker, in this subprocess, stopped on exit."""

    def __init__(self, env: dict[str, str], *, backlog: int = 2048) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backlog = backlog
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def command(self) -> list[str]:
        return [
            PYTHON,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host=127.0.0.1",
            f"--port={self.port}",
            f"--backlog={self.backlog}",
            "--no-access-log",
            "--log-level=warning",
        ]

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with status {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("uvicorn did not answer /healthz within 30 s")
            time.sleep(0.1)

    def __exit__(self, *exc_info: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_django(code: str, *args: str, env: dict[str, str]) -> str:
    """Run ``code`` in a Python subprocess with the project importable; its stdout."""
    done = subprocess.run(
        [PYTHON, "-c", code, *args], cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True
    )
    return done.stdout


def audit(env: dict[str, str]) -> tuple[bool, str]:
    """``manage.py audit_wallets``: (passed, its output)."""
    done = subprocess.run(
        [PYTHON, "manage.py", "audit_wallets"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return done.returncode == 0, done.stdout.strip()


# --- clients ----------------------------------------------------------------------


@dataclass
class Account:
    token: str
    session: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def run_id() -> str:
    return f"{time.strftime('%H%M%S')}-{secrets.token_hex(3)}"


async def register_users(base_url: str, count: int, prefix: str, *, parallel: int = 4) -> list[Account]:
    """``POST /auth/register`` then ``POST /api/sessions/`` for each of ``count`` users."""
    semaphore = asyncio.Semaphore(parallel)

    async def one(client: httpx.AsyncClient, index: int) -> Account:
        async with semaphore:
            body = {"login_id": f"{prefix}-{index}", "password": secrets.token_urlsafe(18)}
            answer = await client.post("/auth/register", json=body)
            answer.raise_for_status()
            token = answer.json()["access"]
            account = Account(token=token, session="")
            account.session = await create_session(client, account)
            return account

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        return list(await asyncio.gather(*(one(client, index) for index in range(count))))


async def create_session(client: httpx.AsyncClient, account: Account) -> str:
    answer = await client.post("/api/sessions/", json={"category": "general"}, headers=account.headers)
    answer.raise_for_status()
    return answer.json()["id"]


def seed_users(env: dict[str, str], count: int, prefix: str) -> list[Account]:
    """``count`` users with a wallet and a session each, written by a Django subprocess.

    Registering through the API hashes a password (PBKDF2, about half a
    second of CPU each), which is not what the capacity benchmark measures.
    """
    lines = run_django(_SEEDER, prefix, str(count), env=env).splitlines()
    return [Account(**json.loads(line)) for line in lines if line.startswith("{")]


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, bytes]]:
    """``(event name, data)`` for each server-sent event of ``response``, as it arrives."""
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        while (end := buffer.find(b"\n\n")) >= 0:
            block, buffer = buffer[:end], buffer[end + 2 :]
            name, data = "message", []
            for line in block.split(b"\n"):
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data.append(line[5:].removeprefix(b" "))
            if data:
                yield name, b"\n".join(data)
