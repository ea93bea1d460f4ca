"""The operator's commands and the drill's reads of the books, run as subprocesses with timeouts.

Each runs in a thread (``asyncio.to_thread``) so that the clients' load goes
on while it does; none may hang the drill.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import PYTHON, ROOT  # bench/ is on sys.path

DJANGO_SIDE = str(Path(__file__).resolve().parent / "django_side.py")


@dataclass
class Command:
    status: int | None  # None: it timed out
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0


def _run(env: dict[str, str], args: list[str], stdin: str | None, timeout: float) -> Command:
    try:
        done = subprocess.run(
            args,
            cwd=ROOT,
            env=env,
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if stdin is None else subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return Command(None, f"timed out after {timeout:.0f} s")
    return Command(done.returncode, done.stdout.strip())


async def manage(env: dict[str, str], *args: str, timeout: float = 120) -> Command:
    """``manage.py ARGS``: its exit status and output (stdout and stderr together)."""
    return await asyncio.to_thread(_run, env, [PYTHON, "manage.py", *args], None, timeout)


async def topup(env: dict[str, str], login: str, amount: int) -> Command:
    return await manage(env, "topup_wallet", login, str(amount), "--reason", "fault drill")


async def stored(env: dict[str, str], ids: list[str]) -> dict[str, Any]:
    """Each reply as the database holds it (``django_side.stored``); {} if that could not be read."""
    if not ids:
        return {}
    done = await asyncio.to_thread(_run, env, [PYTHON, DJANGO_SIDE, "stored"], json.dumps(ids), 120)
    return json.loads(done.output) if done.ok else {"_error": done.output}


async def leftovers(env: dict[str, str]) -> dict[str, Any]:
    done = await asyncio.to_thread(_run, env, [PYTHON, DJANGO_SIDE, "leftovers"], "", 60)
    return json.loads(done.output) if done.ok else {"_error": done.output}
