"""Virtualenvs of their own for the clients whose pins clash with the project's.

instructor 1.17 pins ``jiter<0.15`` while the ``openai`` that Parley serves with needs
``jiter>=0.16``: it cannot live in ``.venv``. Such a client gets a virtualenv built once, from
this interpreter, with exactly its requirement line, and kept under
``~/.cache/parley-test-clients/<name>-<hash>`` (``PARLEY_CLIENT_VENVS`` moves it). The hash covers
the requirement line and the Python version, so a changed pin builds a new one beside the old.
A test runs the client as a script in it (:func:`run_client`) and asserts the JSON it prints.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).parent / "scripts"
_COMPLETE = ".parley-complete"


def cache_root() -> Path:
    configured = os.environ.get("PARLEY_CLIENT_VENVS")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "parley-test-clients"


def venv_path(name: str, requirements: list[str]) -> Path:
    line = " ".join(requirements)
    fingerprint = f"{line}\n{sys.version_info[:3]}\n{sys.implementation.name}"
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
    return cache_root() / f"{name}-{digest}"


def client_venv(name: str, requirements: list[str]) -> Path:
    """The python of a virtualenv with ``requirements`` installed, built on first use.

    A lock file makes parallel runs (pytest-xdist, two checkouts) wait for one build; a build
    that died half-way (no completion marker) is thrown away and redone.
    """
    path = venv_path(name, requirements)
    python = path / "bin" / "python"
    if (path / _COMPLETE).exists():
        return python
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (path / _COMPLETE).exists():
            return python
        shutil.rmtree(path, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        _build_step([base, "-m", "venv", str(path)], what=f"creating the {name} virtualenv")
        _build_step(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
            what=f"installing {' '.join(requirements)}",
        )
        (path / _COMPLETE).write_text(" ".join(requirements) + "\n")
    return python


def _build_step(command: list[str], *, what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode:
        pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


def run_client(python: Path, script: str, *args: str, timeout: float = 120) -> dict[str, Any]:
    """Run ``scripts/<script>`` with ``python``; the one JSON object it printed last on stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DJANGO_", "PYTHON"))}
    done = subprocess.run(
        [str(python), str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if done.returncode:
        pytest.fail(f"{script} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"{script} printed nothing; stderr:\n{done.stderr[-4000:]}"
    return json.loads(lines[-1])
