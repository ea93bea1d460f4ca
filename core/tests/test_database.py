"""A PostgreSQL ``DATABASE_URL`` that cannot be used says why at once, not as a pool timeout.

Each case runs ``manage.py migrate`` in a fresh process, as a new user would.
"""

import socket
import sys
import time
import uuid

import pytest
from django.db import connection

from core.db.postgresql.base import _missing_message
from tests.helpers.processes import run

POOL_TIMEOUT = 30  # seconds: what the old failure took to show; the answers below come before it


def postgres_url(name: str) -> str:
    params = connection.settings_dict
    credentials = params["USER"] + (f":{params['PASSWORD']}" if params["PASSWORD"] else "")
    return f"postgres://{credentials}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{name}"


def migrate(database_url: str):
    started = time.monotonic()
    result = run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        DATABASE_URL=database_url,
        DATABASE_POOL_TIMEOUT=str(POOL_TIMEOUT),
    )
    return result, time.monotonic() - started


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs a PostgreSQL server to ask for a missing database (set DATABASE_URL=postgres://...)",
)
def test_missing_database_says_so_and_how_to_create_it():
    name = f"parley_missing_{uuid.uuid4().hex[:8]}"

    result, elapsed = migrate(postgres_url(name))

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert f"'{name}', which does not exist" in last_line
    assert "createdb" in last_line and name in last_line
    assert "couldn't get a connection" not in result.stderr
    assert elapsed < POOL_TIMEOUT


def test_refused_connection_says_so_not_a_pool_timeout():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result, elapsed = migrate(f"postgres://parley@127.0.0.1:{port}/parley")

    assert result.returncode == 1
    assert "couldn't get a connection" not in result.stderr
    assert "connection failed" in result.stderr
    assert elapsed < POOL_TIMEOUT


def test_createdb_command_names_only_what_the_url_gives():
    assert _missing_message({"dbname": "parley"}) == (
        "DATABASE_URL names the database 'parley', which does not exist on localhost:5432: "
        "create it with `createdb parley`, then run migrate."
    )
    assert "`createdb -h db.internal -p 6543 -U app 'my db'`" in _missing_message(
        {"dbname": "my db", "host": "db.internal", "port": 6543, "user": "app", "password": "secret"}
    )
