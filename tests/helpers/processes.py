"""A fresh Python process with a known environment: settings are read once, at import."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


SECRET = "k3J9-x8Qv!2mZr7Lp0sWc4Yt6Nh1Bd5Fg8Uj3Ke7Ra9Ve2Xo4Ti6Mq1Sn5Pb0Lw"


# Everything a developer's shell (or the pytest run) may have set, cleared for a known start.
CONFIG_VARIABLES = [
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "INITIAL_WALLET_BALANCE",
    "LLM_PROVIDER",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "LLM_MODEL",
    "LLM_TIMEOUT",
    "LLM_MAX_TOKENS",
    "JWT_ACCESS_MINUTES",
    "JWT_REFRESH_DAYS",
    "GOOGLE_CLIENT_ID",
    "AUTH_THROTTLE_RATE",
    "NUM_PROXIES",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD",
    "MAX_REQUEST_BYTES",
    "ECHO_TOKEN_DELAY_MS",
    "LOG_LEVEL",
]


def run(
    code_or_args: str | list[str], *, cwd: Path = BASE_DIR, **env: str | None
) -> subprocess.CompletedProcess:
    """``code_or_args`` run in ``cwd`` with the known environment and ``env`` (``None`` unsets one)."""
    environment = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    # Set explicitly, so that neither the caller's shell nor a developer's .env decides.
    environment |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ENV_FILE": "",  # no .env either (config/env.py)
        "SECRET_KEY": SECRET,
        "DEBUG": "false",
        "LLM_PROVIDER": "echo",
        "REDIS_URL": "",
        "DATABASE_URL": f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
    }
    environment = {name: value for name, value in (environment | env).items() if value is not None}
    args = [sys.executable, "-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    return subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=60)
