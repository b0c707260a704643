"""What the bench scripts share: the local PostgreSQL they create their databases in, and free
loopback ports for the servers they start. Imported by name: a bench script runs as
`python bench/NAME.py`, so this folder is first on its path."""

from __future__ import annotations

import socket

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pg_admin(sql: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the server's `postgres` database."""
    import psycopg2

    connection = psycopg2.connect(dbname="postgres", **PG)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()
