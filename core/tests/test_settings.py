"""Settings come from the environment and a bad value stops the process, naming the variable.

Each case starts a fresh Python process, because settings are read once, at import.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.processes import BASE_DIR, CONFIG_VARIABLES, run

# Reading a setting imports config.settings, which is where the validation runs.
LOAD_SETTINGS = "from django.conf import settings; print(settings.{name})"


def load(name: str, **env: str) -> subprocess.CompletedProcess:
    return run(LOAD_SETTINGS.format(name=name), **env)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INITIAL_WALLET_BALANCE", "abc"),
        ("INITIAL_WALLET_BALANCE", "-5"),
        ("LLM_PROVIDER", "nope"),
        ("DEBUG", "maybe"),
        ("JWT_ACCESS_MINUTES", "0"),
        ("JWT_REFRESH_DAYS", "soon"),
        ("LLM_TIMEOUT", "abc"),
        ("LLM_MAX_TOKENS", "1.5"),
        ("DATABASE_URL", "nonsense://x"),
        ("DATABASE_URL", "garbage"),
        ("REDIS_URL", "localhost:6379"),
        ("AUTH_THROTTLE_RATE", "often"),
        ("SECURE_SSL_REDIRECT", "maybe"),
        ("SECURE_HSTS_SECONDS", "a year"),
        ("MAX_REQUEST_BYTES", "10"),
        ("ECHO_TOKEN_DELAY_MS", "-1"),
        ("ECHO_TOKEN_DELAY_MS", "30ms"),
        ("LOG_LEVEL", "loud"),
    ],
)
def test_bad_value_stops_manage_py_with_one_line_naming_the_variable(variable, value):
    result = run([sys.executable, "manage.py", "check"], **{variable: value})

    assert result.returncode == 1
    assert result.stderr.startswith(f"Configuration error: {variable}=")
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback


def test_a_number_that_does_not_parse_is_explained():
    """django-environ alone says "could not convert string to float: ''" for ``abc``."""
    result = run([sys.executable, "manage.py", "check"], LLM_TIMEOUT="abc")

    assert result.stderr == "Configuration error: LLM_TIMEOUT='abc' is not valid: use a number.\n"


def test_bad_value_stops_the_asgi_server_with_one_line():
    """What `make run` and production start: uvicorn importing config.asgi."""
    result = run(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", "0", "--log-level", "warning"],
        LLM_TIMEOUT="abc",
    )

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Configuration error: LLM_TIMEOUT='abc' is not valid: use a number."
    ]


def test_bad_value_in_plain_python_is_a_setting_error():
    result = load("DEBUG", LLM_TIMEOUT="abc")

    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("config.env.SettingError: LLM_TIMEOUT=")


def test_other_errors_keep_their_traceback():
    from config.env import exit_on_setting_error

    with pytest.raises(RuntimeError), exit_on_setting_error():
        raise RuntimeError("not a setting")


def test_missing_secret_key_with_debug_off_stops_start_up():
    result = run([sys.executable, "manage.py", "check"], SECRET_KEY="", DEBUG="false")

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Configuration error: Set the SECRET_KEY environment variable (or DEBUG=true for local development)."
    ]


def test_missing_secret_key_with_debug_on_uses_a_development_key():
    result = load("SECRET_KEY", SECRET_KEY="", DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert "insecure" in result.stdout


def test_openai_provider_needs_a_key_or_a_base_url():
    result = run([sys.executable, "manage.py", "check"], LLM_PROVIDER="openai")

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "OPENAI_API_KEY" in result.stderr


def test_openai_compatible_server_needs_no_key():
    result = load("OPENAI_BASE_URL", LLM_PROVIDER="openai", OPENAI_BASE_URL="http://127.0.0.1:11434/v1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://127.0.0.1:11434/v1"


def test_defaults_start_on_a_fresh_machine():
    code = (
        "import django; from django.conf import settings; django.setup();"
        "print(settings.DEBUG, settings.INITIAL_WALLET_BALANCE, settings.LLM_PROVIDER,"
        " settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'],"
        " settings.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME'].total_seconds(), settings.ECHO_TOKEN_DELAY_MS)"
    )

    result = run(code)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "100",
        "echo",
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
        "900.0",
        "0",
    ]


def test_lists_and_numbers_are_read():
    code = (
        "import django; from django.conf import settings; django.setup();"
        "print(settings.GOOGLE_CLIENT_ID, settings.ALLOWED_HOSTS, settings.INITIAL_WALLET_BALANCE,"
        " settings.CACHES['default']['BACKEND'], settings.DATABASES['default']['ENGINE'])"
    )

    result = run(
        code,
        GOOGLE_CLIENT_ID="web.apps.googleusercontent.com,ios.apps.googleusercontent.com",
        ALLOWED_HOSTS="api.example.com,.example.org",
        INITIAL_WALLET_BALANCE="250",
        REDIS_URL="redis://127.0.0.1:6379/0",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/parley",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "['web.apps.googleusercontent.com', 'ios.apps.googleusercontent.com']"
        " ['api.example.com', '.example.org'] 250"
        " django.core.cache.backends.redis.RedisCache core.db.postgresql"
    )


def test_manage_py_check_passes_with_a_good_environment():
    result = run([sys.executable, "manage.py", "check"])

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_is_clean_with_production_settings():
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        ALLOWED_HOSTS="api.example.com",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- .env: read by `make run`, never by the tests ------------------------------------------

# What `make run` writes (Makefile), and a .env a developer may have left in a worse state.
MAKE_RUN_DOTENV = "DEBUG=true\nSECRET_KEY=from-the-dotenv-file\nECHO_TOKEN_DELAY_MS=30\n"
HOSTILE_DOTENV = (
    "DEBUG=true\nSECRET_KEY=from-the-dotenv-file\nLLM_PROVIDER=openai\nECHO_TOKEN_DELAY_MS=500\n"
    "INITIAL_WALLET_BALANCE=7\nREDIS_URL=redis://203.0.113.1:6379/0\nDATABASE_URL=garbage\n"
)
# The two tests the .env of `make run` used to break (the second's name says how many thread hops).
DOTENV_SENSITIVE_TESTS = [
    "core/tests/test_settings.py",
    "core/tests/test_request_threads.py",
    "-k",
    "test_defaults_start_on_a_fresh_machine or (test_a_sync_api_view_costs and thread_hops)",
]


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    """The project in a directory of its own, where a test may write a ``.env`` beside manage.py
    (the one config/env.py looks for) without touching the developer's."""
    copy = tmp_path_factory.mktemp("project") / "parley"
    ignored = shutil.ignore_patterns(".venv", ".git", ".env", "*.sqlite3*", "staticfiles", "__pycache__")
    shutil.copytree(BASE_DIR, copy, ignore=ignored)
    return copy


def a_developers_shell() -> dict[str, str]:
    """This environment without what pytest.ini, pytest and coverage set: a shell's."""
    dropped = (*CONFIG_VARIABLES, "ENV_FILE", "DJANGO_SETTINGS_MODULE")
    return {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith(("PYTEST_", "COV_", "COVERAGE_"))
    }


def test_the_tests_read_no_dotenv_whatever_it_holds(project_copy):
    """`make run` then `make test`: pytest, from a shell that sets nothing, in a tree whose .env
    would stop Django at start-up (DATABASE_URL) and otherwise turn DEBUG on and slow the echo model."""
    (project_copy / ".env").write_text(HOSTILE_DOTENV)

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--no-migrations", *DOTENV_SENSITIVE_TESTS],
        cwd=project_copy,
        env=a_developers_shell(),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout


def test_without_env_file_set_the_same_dotenv_is_read(project_copy):
    """The proof above is not vacuous: outside the tests that .env is read, and its DATABASE_URL stops
    start-up."""
    (project_copy / ".env").write_text(HOSTILE_DOTENV)

    result = run([sys.executable, "manage.py", "check"], cwd=project_copy, ENV_FILE=None, DATABASE_URL=None)

    assert result.returncode == 1
    assert result.stderr.startswith("Configuration error: DATABASE_URL='garbage'")


def test_make_runs_dotenv_is_read_and_the_environment_wins(project_copy):
    (project_copy / ".env").write_text(MAKE_RUN_DOTENV)
    code = LOAD_SETTINGS.format(name="DEBUG, settings.SECRET_KEY, settings.ECHO_TOKEN_DELAY_MS")

    result = run(code, cwd=project_copy, ENV_FILE=None, DEBUG=None, SECRET_KEY=None, ECHO_TOKEN_DELAY_MS="5")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "from-the-dotenv-file", "5"]


def test_env_file_names_the_file_to_read(tmp_path):
    settings_file = tmp_path / "parley.env"
    settings_file.write_text("INITIAL_WALLET_BALANCE=250\n")

    result = load("INITIAL_WALLET_BALANCE", ENV_FILE=str(settings_file))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "250"


def test_env_file_naming_a_missing_file_stops_start_up(tmp_path):
    missing = tmp_path / "nowhere.env"

    result = run([sys.executable, "manage.py", "check"], ENV_FILE=str(missing))

    assert result.returncode == 1
    assert (
        result.stderr
        == f"Configuration error: ENV_FILE={str(missing)!r} is not valid: there is no such file.\n"
    )


def test_the_test_run_itself_reads_no_dotenv():
    """pytest.ini's ``ENV_FILE=``: set for this process, and so for every process a test starts."""
    assert os.environ["ENV_FILE"] == ""
