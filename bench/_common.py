"""Shared plumbing of the benchmarks: numbers, the machine, processes, the database, HTTP clients
(their server-sent events are read by ``_sse``).

Nothing here imports Django or the project: the load generators are plain
asyncio + httpx, and Parley runs in subprocesses (``uvicorn``, ``manage.py``)
driven over HTTP and the command line, so the scripts outlive refactorings of
the application's internals. Each server can run from another git worktree
(``tree=``), which lets a script compare two versions of the code in one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# --- numbers -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median_range(values: Sequence[float]) -> str:
    """``median (min-max)`` of a few runs' figures, for the reports."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


# --- the machine ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, kernel, Python, its speed and the load average now: for the record."""
    import timeit

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    speed = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(total_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_sum_range_1000_us": round(speed, 1),  # lower is faster; latencies scale with it
        "load_average": loadavg(),
        "commit": commit.stdout.strip(),
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other guests, all CPUs together (what makes runs differ)."""
    with open("/proc/stat") as stat:
        return int(stat.readline().split()[8]) / CLOCK_TICKS


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads of a process, from ``/proc/<pid>/status``."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM", "Threads"}:
            found[name] = int(value.split()[0])
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the database --------------------------------------------------------------------------------


def _admin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme not in {"postgres", "postgresql"} or not name.replace("_", "").isalnum():
        raise SystemExit(f"a PostgreSQL database URL is needed, not {url!r}")
    return urlunsplit(parts._replace(scheme="postgresql", path="/postgres")), name


def reset_database(url: str) -> None:
    """Drop (forcing out old sessions) and create the PostgreSQL database ``url`` names."""
    import psycopg

    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_cpu(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to ``url``'s database.

    Only that database's backends: other programs may share the server. A
    backend that ends between two readings loses its share (the pools keep theirs).
    """
    import psycopg

    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        pids = [
            pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))
        ]
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def server_env(database_url: str, upstream: str = "", **extra: Any) -> dict[str, str]:
    """The environment of Parley's processes: production settings, as a deployment sets them."""
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-only-not-a-secret-" + "x" * 40,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LLM_PROVIDER": "openai" if upstream else "echo",
            "OPENAI_BASE_URL": upstream,
            "OPENAI_API_KEY": "bench",
            "LLM_MAX_TOKENS": "256",
            "INITIAL_WALLET_BALANCE": str(10**12),  # no run may stop for lack of credit
            "AUTH_THROTTLE_RATE": "100000/min",
            "MESSAGE_THROTTLE_RATE": "1000000/min",  # what a benchmark measures is not the throttle
            "JWT_ACCESS_MINUTES": "600",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update({name: str(value) for name, value in extra.items()})
    return env


def manage(
    env: dict[str, str], *args: str, tree: Path = ROOT, check: bool = True
) -> subprocess.CompletedProcess:
    """``manage.py ARGS`` in ``tree``, its output (stdout and stderr together) captured."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if check and done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}")
    return done


# --- processes -----------------------------------------------------------------------------------


class Process:
    """A subprocess answering ``ready_url``, stopped (TERM, then KILL) on exit."""

    def __init__(self, command: list[str], ready_url: str, *, log: Path | None = None, **popen: Any) -> None:
        self.command, self.ready_url, self.log, self.popen = command, ready_url, log, popen
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self):
        output = self.log.open("w") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT, **self.popen)
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.command[:4]} exited with {self.process.returncode} (log: {self.log})"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"{self.ready_url} did not answer within 90 s")
            time.sleep(0.1)

    def __exit__(self, *exc_info: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class FakeUpstream(Process):
    """``python -m tests.fakes.openai_upstream`` on uvloop, answering with ``chunks``; ``base_url``."""

    def __init__(
        self, chunks: list[str], *, chunk_delay: float, first_chunk_delay: float | None = None
    ) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.scenario = {
            "chunks": chunks,
            "chunk_delay": chunk_delay,
            "first_chunk_delay": chunk_delay if first_chunk_delay is None else first_chunk_delay,
        }
        command = [PYTHON, "-m", "tests.fakes.openai_upstream", f"--port={port}", "--uvloop"]
        super().__init__(command, f"http://127.0.0.1:{port}/fake/stats", cwd=ROOT)

    def __enter__(self) -> FakeUpstream:
        super().__enter__()
        self.configure(**self.scenario)
        return self

    def configure(self, **scenario: Any) -> None:
        """Replace the scenario (``POST /fake/scenario``); later requests use it."""
        control = self.base_url.removesuffix("/v1") + "/fake/scenario"
        httpx.post(control, json=scenario, timeout=10).raise_for_status()


class Server(Process):
    """``uvicorn config.asgi:application`` (or ``app``) from ``tree``: one worker unless told,
    ready once ``ready_path`` answers, stopped on exit.

    With one worker the ``Popen`` pid *is* the worker, so ``/proc/<pid>`` is its CPU and memory.
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        tree: Path = ROOT,
        workers: int = 1,
        backlog: int = 2048,
        log: Path | None = None,
        app: str = "config.asgi:application",
        ready_path: str = "/healthz",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            PYTHON,
            "-m",
            "uvicorn",
            app,
            "--host=127.0.0.1",
            f"--port={self.port}",
        ]
        command += [f"--workers={workers}", f"--backlog={backlog}", "--no-access-log", "--log-level=warning"]
        super().__init__(command, f"{self.url}{ready_path}", log=log, cwd=tree, env=env)

    def __enter__(self) -> Server:
        return super().__enter__()


# --- clients -------------------------------------------------------------------------------------


def register(base_url: str, login: str) -> str:
    """``POST /auth/register`` (the sign-up bonus is the wallet's credit); the access token."""
    answer = httpx.post(
        f"{base_url}/auth/register",
        json={"login_id": login, "password": secrets.token_urlsafe(18)},
        timeout=60,
    )
    answer.raise_for_status()
    return answer.json()["access"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_session(client: httpx.AsyncClient, token: str) -> str:
    answer = await client.post("/api/sessions/", json={"category": "general"}, headers=bearer(token))
    answer.raise_for_status()
    return answer.json()["id"]


def many_streams_client(url: str, clients: int) -> httpx.AsyncClient:
    """One client holding a connection per concurrent stream, with no pool wait."""
    limits = httpx.Limits(max_connections=clients + 16, max_keepalive_connections=clients + 16)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(300, pool=None))


async def create_sessions(client: httpx.AsyncClient, tokens: list[str], *, at_once: int = 16) -> list[str]:
    """A session for each token, ``at_once`` at a time."""
    creating = asyncio.Semaphore(at_once)

    async def one(token: str) -> str:
        async with creating:
            return await create_session(client, token)

    return await asyncio.gather(*(one(token) for token in tokens))


# Users (the post_save signal grants their wallet, as for any user) and an access token each,
# written by a Django subprocess: registering thousands through the API would hash passwords
# for minutes, which is not what is measured.
_SEEDER = """
import sys
import django
django.setup()
from rest_framework_simplejwt.tokens import AccessToken
from accounts.models import User
for index in range(int(sys.argv[2])):
    print(AccessToken.for_user(User.objects.create_user(f"{sys.argv[1]}-{index}", password=None)), flush=True)
"""


def seed_tokens(env: dict[str, str], count: int, prefix: str) -> list[str]:
    done = subprocess.run(
        [PYTHON, "-c", _SEEDER, prefix, str(count)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return done.stdout.split()


def write_json(path: Path | None, figures: Any) -> None:
    if path is not None:
        path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
