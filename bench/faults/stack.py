"""The drill's private services: a PostgreSQL cluster, a Redis, the fake upstream, two workers.

Everything here is the drill's own (its own ports, a temp directory) so that
killing and restarting it disturbs nothing shared: not the machine's
PostgreSQL on 5432, not its Redis on 6379. Every process is started in a
session of its own (a Ctrl-C reaches the drill, which then stops them in
order) and is stopped on exit whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from _common import PYTHON, ROOT, free_port  # bench/ is on sys.path

from faults import CHUNK_DELAY, CHUNKS

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_PORT = 55432
REDIS_PORT = 56379


class StackError(RuntimeError):
    """The drill could not set up or restore a service: it cannot go on (exit status 2)."""


def port_free(port: int) -> bool:
    """Nobody listens on ``port`` (connections of a server just stopped, in TIME_WAIT, don't count:
    the servers set SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_http(url: str, seconds: float, process: subprocess.Popen | None = None) -> float:
    """Seconds until ``url`` answers 200; StackError after ``seconds`` or if ``process`` exits."""
    started = time.monotonic()
    while True:
        if process is not None and process.poll() is not None:
            raise StackError(f"{url}: its process exited with status {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        if time.monotonic() - started > seconds:
            raise StackError(f"{url} did not answer within {seconds:.0f} s")
        time.sleep(0.1)


def run(command: list[str], *, timeout: float, env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
    """A command's output (stdout and stderr); StackError when it fails or outlasts ``timeout``."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{' '.join(command[:4])} did not end within {timeout:.0f} s") from exc
    if done.returncode:
        raise StackError(f"{' '.join(command[:4])} exited {done.returncode}: {done.stdout.strip()[-800:]}")
    return done.stdout


class Postgres:
    """A PostgreSQL 15 cluster in ``workdir/pg``, trust auth, on ``PG_PORT``.

    initdb refuses to run as root: then the cluster belongs to the ``postgres``
    user and every ``pg_ctl`` runs through ``runuser -u postgres --``.
    """

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "pg"
        self.data = self.root / "data"
        self.log = workdir / "postgres.log"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.url = f"postgres://postgres@127.0.0.1:{PG_PORT}/parley"
        self.started = False

    def init(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise StackError(f"no PostgreSQL 15 at {PG_BIN}")
        if not port_free(PG_PORT):
            raise StackError(f"port {PG_PORT} is taken: another drill running, or something else")
        self.root.mkdir()
        self.log.touch()
        if self.as_user:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.log, "postgres")
        initdb = [
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ]
        run([*self.as_user, *initdb], timeout=120, cwd=self.root)
        # The socket goes into our directory: /var/run/postgresql belongs to the machine's server.
        options = (
            f"-p {PG_PORT} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c fsync=off -c max_connections=100"
        )
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"# the fault drill's options\n# {options}\n")
        self.options = options

    def pg_ctl(self, *args: str, timeout: float = 60) -> str:
        command = [*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]
        return run(command, timeout=timeout, cwd=self.root)

    def start(self) -> None:
        self.pg_ctl("start", "-w", "-t", "30", "-l", str(self.log), "-o", self.options)
        self.started = True
        run(
            [
                *self.as_user,
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(PG_PORT),
                "-U",
                "postgres",
                "parley",
            ],
            timeout=30,
            cwd=self.root,
        )

    def restart_fast(self) -> float:
        """``pg_ctl restart -m fast`` (every connection cut); the seconds it took."""
        started = time.monotonic()
        self.pg_ctl("restart", "-m", "fast", "-w", "-t", "30", "-l", str(self.log), "-o", self.options)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(StackError):
                self.pg_ctl("stop", "-m", "immediate", "-w", "-t", "20", timeout=30)
            self.started = False


class Redis:
    """``redis-server`` on ``REDIS_PORT``, nothing saved: a restart comes back empty, as a
    production Redis without persistence does (docs/operations.md: none is needed)."""

    def __init__(self, workdir: Path) -> None:
        self.log = workdir / "redis.log"
        self.url = f"redis://127.0.0.1:{REDIS_PORT}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if not port_free(REDIS_PORT):
            raise StackError(f"port {REDIS_PORT} is taken")
        command = [
            "redis-server",
            "--port",
            str(REDIS_PORT),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", REDIS_PORT), 1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"redis-server did not start (log: {self.log})")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: Redis exits at once (nothing to save); its clients' connections are closed."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


class FakeUpstream:
    """``python -m tests.fakes.openai_upstream`` on a fixed port (a restart keeps the URL the
    workers were given), streaming ``CHUNKS`` at ``CHUNK_DELAY`` seconds each."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = workdir / "fake-upstream.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        # The standard asyncio loop, not uvloop: on uvloop a write after the client hung up raises
        # an error the fake does not expect (bench/soak/fake.py says the same).
        command = [PYTHON, "-m", "tests.fakes.openai_upstream", f"--port={self.port}"]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_http(f"http://127.0.0.1:{self.port}/fake/stats", 30, self.process)
        scenario = {"chunks": CHUNKS, "chunk_delay": CHUNK_DELAY, "first_chunk_delay": CHUNK_DELAY}
        control = f"http://127.0.0.1:{self.port}/fake/scenario"
        httpx.post(control, json=scenario, timeout=10).raise_for_status()

    def kill(self) -> None:
        """SIGKILL: every stream it was sending is cut without an end."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    stop = kill


class Worker:
    """One ``uvicorn config.asgi:application`` process (one worker: its pid is the worker's) on a
    port of its own, so that the drill picks which worker a request goes to."""

    def __init__(self, number: int, env: dict[str, str], workdir: Path) -> None:
        self.number = number
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"uvicorn-{number}.log"
        self.process: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return "AB"[self.number] if self.number < 2 else str(self.number)

    def start(self) -> float:
        """Start it; the seconds until ``/healthz`` answers."""
        command = [
            PYTHON,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host=127.0.0.1",
            f"--port={self.port}",
            "--workers=1",
            "--no-access-log",
            "--backlog=2048",
            "--timeout-graceful-shutdown=5",
        ]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return wait_http(f"{self.base}/healthz", 60, self.process)

    def kill(self) -> int:
        """SIGKILL, as the OOM killer or a lost host would: nothing runs after it. Its pid."""
        assert self.process is not None
        pid = self.process.pid
        os.kill(pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None
        return pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


def drill_env(
    database_url: str, redis_url: str, upstream: str, *, lease: int, max_replies: int
) -> dict[str, str]:
    """Production settings (DEBUG off, PostgreSQL, Redis, an OpenAI-compatible upstream), with a
    short lease so the drill is quick and a small per-user reply limit so slots run out."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        {
            "ENV_FILE": "",  # never a developer's .env (DEBUG=true, the echo model)
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "DATABASE_POOL_MAX": "10",
            "SECRET_KEY": "fault-drill-" + secrets.token_urlsafe(40),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": redis_url,
            "LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": upstream,
            "OPENAI_API_KEY": "fault-drill",
            "LLM_TIMEOUT": "20",
            "LLM_MAX_TOKENS": "256",
            "AUTH_THROTTLE_RATE": "100000/min",  # the trickle signs in often; the throttle is not tested
            "MESSAGE_THROTTLE_RATE": "100000/min",
            "JWT_ACCESS_MINUTES": "600",
            "REPLY_LEASE_SECONDS": str(lease),
            # Scaled with the short lease, as the defaults are (2 s beside 60 s): a dead worker is
            # known three beats after its last one.
            "WORKER_HEARTBEAT_SECONDS": "0.5",
            "MAX_CONCURRENT_REPLIES": str(max_replies),
            "REPLY_SHUTDOWN_GRACE": "5",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


class Stack:
    """All of it, torn down on exit (in reverse order of start) whatever happened."""

    def __init__(self, *, lease: int, max_replies: int, keep: bool) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="parley-fault-drill-"))
        self.workdir.chmod(0o755)  # the postgres user must reach its cluster inside
        self.keep = keep
        self.postgres = Postgres(self.workdir)
        self.redis = Redis(self.workdir)
        self.fake = FakeUpstream(self.workdir)
        self.lease, self.max_replies = lease, max_replies
        self.env: dict[str, str] = {}
        self.workers: list[Worker] = []

    def __enter__(self) -> Stack:
        return self

    def up(self) -> None:
        self.postgres.init()
        self.postgres.start()
        self.redis.start()
        self.fake.start()
        self.env = drill_env(
            self.postgres.url,
            self.redis.url,
            self.fake.base_url,
            lease=self.lease,
            max_replies=self.max_replies,
        )
        run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], timeout=300, env=self.env)
        self.workers = [Worker(number, self.env, self.workdir) for number in range(2)]
        for worker in self.workers:
            worker.start()

    def __exit__(self, *exc_info: object) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.stop()
        for service in (self.fake, self.redis, self.postgres):
            with contextlib.suppress(Exception):
                service.stop()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def logs(self) -> dict[str, Path]:
        return {worker.name: worker.log for worker in self.workers}
