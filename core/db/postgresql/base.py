"""Django's PostgreSQL backend, saying why it cannot connect instead of timing out.

With a connection pool, a connection that cannot be made is retried in the
pool's background workers, and the caller only learns, after
``DATABASE_POOL_TIMEOUT`` seconds, "couldn't get a connection". So before a
process opens its pool, it connects once directly: the pool then starts from
a database known to answer, and otherwise the real reason comes out at once (a
refused connection, a wrong password), a missing database with the
``createdb`` command that makes it.
"""

from __future__ import annotations

import shlex
from typing import Any

import psycopg
from django.db.backends.postgresql import base

from config.env import SettingError


class DatabaseMissing(SettingError):
    """``DATABASE_URL`` names a database that does not exist on a server that answers."""


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]):
        pool = self.pool
        if pool is not None and pool.closed:  # not opened yet in this process
            self._connect_once(conn_params)
        return super().get_new_connection(conn_params)

    def _connect_once(self, conn_params: dict[str, Any]) -> None:
        pool_timeout = self.settings_dict["OPTIONS"]["pool"].get("timeout", 30)
        params = {"connect_timeout": max(1, round(pool_timeout)), **conn_params}
        try:
            psycopg.connect(**params).close()
        except psycopg.OperationalError as exc:
            if _database_is_missing(params):
                raise DatabaseMissing(_missing_message(params)) from exc
            raise


def _database_is_missing(params: dict[str, Any]) -> bool:
    """Whether the server answers but has no such database (asked in its maintenance database,
    so that the answer does not depend on the language of the server's messages)."""
    name = params.get("dbname")
    if not name:
        return False
    try:
        with psycopg.connect(**{**params, "dbname": "postgres"}) as maintenance:
            found = maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    except psycopg.Error:
        return False  # the server itself is the problem: its own error says it better
    return found is None


def _missing_message(params: dict[str, Any]) -> str:
    name = params["dbname"]
    where = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
    command = ["createdb"]
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if params.get(key):
            command += [flag, str(params[key])]
    command.append(name)
    return (
        f"DATABASE_URL names the database {name!r}, which does not exist on {where}: "
        f"create it with `{shlex.join(command)}`, then run migrate."
    )
