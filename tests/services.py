"""Which real services this test run may use.

`scripts/run_tests.py` (what `make test` calls) probes PostgreSQL and Redis, starts them when they
are installed but down, and exports what it found. Run plainly with `pytest`, the probe below
decides. With CI=true a missing service is an error, never a skip.
"""

from __future__ import annotations

import os
import socket

POSTGRES_ADDRESS = ("127.0.0.1", 5432)
REDIS_ADDRESS = ("127.0.0.1", 6379)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def database_is_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def redis_available() -> bool:
    return reachable(REDIS_ADDRESS)


# The browser tests drive Debian's chromium with Playwright (no browser download).
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM)
