"""The soak's run: fresh stores, the helper processes and the workers, the load, the final check."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import (  # bench/ is on sys.path
    PYTHON,
    ROOT,
    drop_database,
    free_port,
    machine,
    manage,
    register,
    reset_database,
)

from soak.clients import Tally, client_loop, command_topups
from soak.processes import Processes, wait_ready
from soak.report import report

#: The helper processes are the command started again (``--fake``, ``--topper``, ``--verify``):
#: one file to run, whichever part of the soak a process plays.
SCRIPT = str(Path(__file__).resolve().parent.parent / "race_soak.py")


def orchestrate(args: argparse.Namespace) -> int:
    """The whole run, in order; the exit status (1 on a violation, 2 when it could not run)."""
    if urlsplit(args.database_url).scheme not in {"postgres", "postgresql"}:
        print("race_soak needs PostgreSQL (--database-url postgres://...)", file=sys.stderr)
        return 2
    run = f"{time.strftime('%H%M%S')}-{secrets.token_hex(2)}"
    workdir = Path(tempfile.mkdtemp(prefix="parley-soak-"))
    started = time.monotonic()
    print(f"race soak {run}: {args.seconds:g} s, {args.clients} clients, {args.workers} uvicorn worker(s)")
    print("machine:", json.dumps(machine()))

    with Processes() as processes:
        seed = args.seed if args.seed is not None else secrets.randbelow(10**6)
        starting = {"main": start_fake(processes), "flaky": start_fake(processes, args.flaky_ratio, seed)}
        fakes = {name: fake_url(fake) for name, fake in starting.items()}
        env = soak_env(args, fakes["main"])
        if not empty_stores(args, env):
            return 2
        metrics_token = secrets.token_urlsafe(16)
        worker_env = metrics_env(env, metrics_token, workdir)
        routing: dict[str, Any] = {}
        bases, servers, server_logs = start_workers(
            processes,
            worker_env,
            args.workers,
            workdir,
            # While the workers start (no request reaches them before they answer /healthz).
            meanwhile=lambda: routing.update(configure_catalogue(args, env, fakes, workdir)),
        )
        print_setup(args, started, workdir)
        print_routing(args, routing, seed)
        login = f"soak-{run}"
        token = register(bases[0], login)  # the one user every client acts as
        topups_file = workdir / "topups.jsonl"
        topper = start_topper(processes, env, args, login, run, topups_file)
        tally = Tally()
        load_seconds = run_load(args, env, bases, token, login, run, tally)
        stop_topper(processes, topper, tally)
        books = final_check(env, login, args.settle_seconds)
        if books is None:
            print("the final check crashed", file=sys.stderr)
            return 2
        audit = manage(env, "audit_wallets", check=False)
        stale = manage(env, "release_stale_holds", "--minutes", "0", check=False)
        routing.update(read_routing(bases, metrics_token, fakes))  # before the workers stop
        for server in servers:
            processes.stop(server, timeout=30)

    status = report(
        args, tally, books, audit, stale, topups_file, server_logs, load_seconds, started, routing
    )
    clean_up(args, status, workdir)
    return status


def start_fake(processes: Processes, fail_ratio: float = 0.0, seed: int | None = None) -> subprocess.Popen:
    """A fake upstream, started first: the workers' environment and the catalogue need its URL.

    ``fail_ratio`` > 0: the flaky one, failing that share of requests at random (``seed``).
    """
    command = [PYTHON, SCRIPT, "--fake"]
    if fail_ratio:
        command += [f"--fail-ratio={fail_ratio}", f"--seed={seed}"]
    return processes.start(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def fake_url(fake: subprocess.Popen) -> str:
    """A started fake's base URL, once it says its port."""
    return f"http://127.0.0.1:{int(fake.stdout.readline())}/v1"


#: The soak's model is served by two deployments of equal priority, the flaky one weighted 3 to 1:
#: three requests in four try it first (and go over to ``main`` when it fails), one in four try
#: ``main`` first (and go over to ``flaky`` only when ``main`` fails: a ``[soak:fail-before]``).
DEPLOYMENTS = {"flaky": 3, "main": 1}


def configure_catalogue(
    args: argparse.Namespace, env: dict[str, str], fakes: dict[str, str], workdir: Path
) -> dict[str, Any]:
    """The soak's model (the one migrate made of the ``general`` category) on both fakes, by
    ``manage.py llm_config``: exported, its deployments rewritten, applied; what was applied.

    Both providers are named (not the settings' default provider), without retries, so that each
    failure the fakes answer is one failover that Parley counts.
    """
    import yaml

    catalogue = yaml.safe_load(manage(env, "llm_config", "export").stdout) or {}
    models = catalogue.get("models") or []
    if len(models) != 1:
        raise RuntimeError(f"expected the one model migrate makes of the general category, got {models}")
    model = models[0]
    providers = [
        {
            "name": f"soak-{name}",
            "base_url": url,
            "api_key_env": "OPENAI_API_KEY",
            "timeout": 30,
            "retries": 0,
        }
        for name, url in fakes.items()
    ]
    model["deployments"] = [
        {"provider": f"soak-{name}", "model": f"{name}-llm", "priority": 1, "weight": weight}
        for name, weight in DEPLOYMENTS.items()
    ]
    catalogue = {"providers": [*(catalogue.get("providers") or []), *providers], "models": [model]}
    path = workdir / "catalogue.yaml"
    path.write_text(yaml.safe_dump(catalogue, sort_keys=False))
    manage(env, "llm_config", "apply", str(path))
    return {
        "model": model["id"],
        "prices": (model["prompt_price"], model["completion_price"]),
        "deployments": {name: f"soak-{name}/{name}-llm" for name in DEPLOYMENTS},
    }


def print_routing(args: argparse.Namespace, routing: dict[str, Any], seed: int) -> None:
    names = routing["deployments"]
    print(
        f"routing: model {routing['model']} (credits per 1,000 tokens: prompt {routing['prices'][0]}, "
        f"completion {routing['prices'][1]}) on {names['flaky']} (weight {DEPLOYMENTS['flaky']}, fails "
        f"{args.flaky_ratio:.0%} of requests at random before the first token: 502, 504, 429, or the "
        f"connection dropped; seed {seed}) and {names['main']} (weight {DEPLOYMENTS['main']}), priority 1; "
        f"cooldown after {args.cooldown_failures} failures, {args.cooldown_seconds:g} s"
    )


def metrics_env(env: dict[str, str], token: str, workdir: Path) -> dict[str, str]:
    """The workers' environment: ``/metrics`` on, counted across processes in a fresh directory."""
    directory = workdir / "metrics"
    directory.mkdir()
    return {**env, "METRICS_TOKEN": token, "PROMETHEUS_MULTIPROC_DIR": str(directory)}


def read_routing(bases: list[str], token: str, fakes: dict[str, str]) -> dict[str, Any]:
    """What each worker's ``/metrics`` says (every worker's counts, summed) and each fake's stats."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    metrics = []
    for base in bases:
        answer = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        answer.raise_for_status()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(answer.text):
            if family.name in ("parley_failovers", "parley_cooldowns", "parley_replies", "parley_credits"):
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                        samples[f"{sample.name}{{{labels}}}"] = sample.value
        metrics.append(samples)
    stats = {}
    for name, url in fakes.items():
        answer = httpx.get(url.removesuffix("/v1") + "/fake/stats", timeout=30)
        answer.raise_for_status()
        stats[name] = answer.json()
    return {"metrics": metrics, "fakes": stats}


def soak_env(args: argparse.Namespace, upstream: str) -> dict[str, str]:
    """Production settings at the fake upstream, with no limit that would turn a race into a refusal."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": args.database_url,
            "DATABASE_POOL_MAX": "10",
            "SECRET_KEY": "race-soak-" + secrets.token_urlsafe(40),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": args.redis_url,
            "LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": upstream,
            "OPENAI_API_KEY": "soak",
            "LLM_MAX_RETRIES": "1",
            "LLM_TIMEOUT": "30",
            "LLM_MAX_TOKENS": "256",
            "INITIAL_WALLET_BALANCE": str(args.balance),
            "AUTH_THROTTLE_RATE": "1000/min",
            "MESSAGE_THROTTLE_RATE": "1000000/min",  # one user sends every reply: not what a soak tests
            "JWT_ACCESS_MINUTES": "600",
            "LOG_LEVEL": "WARNING",
            "COOLDOWN_SECONDS": str(args.cooldown_seconds),
            "COOLDOWN_FAILURES": str(args.cooldown_failures),
            # One user stands for the 50 clients that share its wallet: no per-user cap here.
            "MAX_CONCURRENT_REPLIES": str(args.max_replies),
        }
    )
    return env


def empty_stores(args: argparse.Namespace, env: dict[str, str]) -> bool:
    """Redis flushed, the database created afresh and migrated: the books must start from nothing.

    False when there is no Redis at ``--redis-url``, said on stderr.
    """
    if args.redis_url:
        try:
            flush_redis(args.redis_url)
        except Exception as exc:
            print(f"no Redis at {args.redis_url} ({exc}); --redis-url '' runs without", file=sys.stderr)
            return False
    reset_database(args.database_url)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    return True


def start_workers(
    processes: Processes, env: dict[str, str], workers: int, workdir: Path, meanwhile: Any = None
) -> tuple[list[str], list[subprocess.Popen], list[Path]]:
    """The workers' base URLs, processes and logs, once every one answers.

    One uvicorn process (one worker) per port, so that a client can pick the worker: a resume
    or a stop sent to the other one must go through Redis.
    """
    bases, servers, server_logs = [], [], []
    for number in range(workers):
        port = free_port()
        server_logs.append(workdir / f"uvicorn-{number}.log")
        uvicorn = [PYTHON, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
        uvicorn += [f"--port={port}", "--workers=1", "--no-access-log", "--backlog=2048"]
        output = server_logs[-1].open("w")
        servers.append(processes.start(uvicorn, env=env, stdout=output, stderr=subprocess.STDOUT))
        bases.append(f"http://127.0.0.1:{port}")
    if meanwhile is not None:
        meanwhile()
    for base, server in zip(bases, servers, strict=True):
        wait_ready(f"{base}/healthz", server)
    return bases, servers, server_logs


def print_setup(args: argparse.Namespace, started: float, workdir: Path) -> None:
    redis_text = f"Redis {args.redis_url}" if args.redis_url else "no Redis"
    print(
        f"setup: {time.monotonic() - started:.1f} s (database {args.database_url}, {redis_text}, "
        f"logs in {workdir})"
    )


def start_topper(
    processes: Processes, env: dict[str, str], args: argparse.Namespace, login: str, run: str, out: Path
) -> subprocess.Popen:
    """Its stdin stays open: closing it is how the run tells it to stop."""
    topper_args = [PYTHON, SCRIPT, "--topper", "--login", login, "--run", run, "--out", str(out)]
    topper_args += [f"--topup-interval={args.topup_interval}", f"--replays={args.replays}"]
    topper_args += [f"--low-water={args.low_water}", f"--refill={args.refill}"]
    return processes.start(topper_args, env=env, stdin=subprocess.PIPE, text=True)


def run_load(
    args: argparse.Namespace,
    env: dict[str, str],
    bases: list[str],
    token: str,
    login: str,
    run: str,
    tally: Tally,
) -> float:
    """Every client and the ``manage.py`` top-ups until the time is up; the seconds it took.

    The clients finish the reply they are reading, so it takes longer than ``--seconds``.
    """
    load_started = time.monotonic()
    deadline = load_started + args.seconds

    async def load() -> None:
        rounds = max(1, int(args.seconds // 60))
        await asyncio.gather(
            *(client_loop(index, bases, token, deadline, args, tally) for index in range(args.clients)),
            command_topups(env, login, run, rounds, args.seconds, tally),
        )

    asyncio.run(load())
    return time.monotonic() - load_started


def stop_topper(processes: Processes, topper: subprocess.Popen, tally: Tally) -> None:
    """The top-up process ends when its stdin closes; any other end is a violation."""
    processes.stop(topper)
    if topper.returncode != 0:
        tally.problem(f"the top-up process exited with status {topper.returncode}")


def final_check(env: dict[str, str], login: str, settle_seconds: float) -> dict[str, Any] | None:
    """Django runs in a process of its own, as for the top-ups: this one stays a plain client.

    The books, as that process reports them; None when it crashed.
    """
    verify = subprocess.run(
        [PYTHON, SCRIPT, "--verify", "--login", login, f"--settle-seconds={settle_seconds}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    if verify.returncode != 0:
        return None
    return json.loads(verify.stdout)


def clean_up(args: argparse.Namespace, status: int, workdir: Path) -> None:
    """A pass leaves nothing behind (unless ``--keep``); a failure keeps everything for a post-mortem."""
    if status == 0 and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
        drop_database(args.database_url)
        if args.redis_url:
            flush_redis(args.redis_url)
    else:
        print(f"kept for a post-mortem: database {args.database_url}, logs in {workdir}")


def flush_redis(url: str) -> None:
    """Empty the soak's Redis database: its user ids restart at 1 with each fresh PostgreSQL one."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()
