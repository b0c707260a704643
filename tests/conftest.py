"""Shared fixtures and the rule that CI never skips a test for want of PostgreSQL or Redis."""

from __future__ import annotations

import pytest

from tests import services

pytest_plugins = ["tests.watchlist_fixtures", "tests.browser"]


def pytest_report_header(config: pytest.Config) -> list[str]:
    database = "PostgreSQL" if services.database_is_postgres() else "SQLite"
    redis = "available" if services.redis_available() else "NOT available"
    return [f"cryptosatx: database {database}, Redis {redis}, CI={services.in_ci()}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing: dict[str, str] = {}
    if not services.database_is_postgres():
        missing["postgres"] = "needs PostgreSQL (DATABASE_URL=postgres://...); this run used SQLite"
    if not services.redis_available():
        missing["redis"] = "needs Redis on 127.0.0.1:6379"
    if not services.chromium_available():
        missing["browser"] = f"needs Chromium at {services.CHROMIUM} (Debian's chromium package)"
    if missing and services.in_ci():
        # A skipped service or browser test in CI would hide the failures CI exists to catch.
        pytest.exit("CI=true and " + "; ".join(missing.values()), returncode=3)
    for item in items:
        for marker, reason in missing.items():
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Every test starts with empty process-wide market-data caches (they outlive sources)."""
    from market.sources.cache import clear_process_caches

    clear_process_caches()
    yield
    clear_process_caches()


@pytest.fixture(autouse=True)
def _fresh_read_cache():
    """Every test starts with no cached answers: its database is fresh, and an answer another
    test cached under the same generation would describe that test's data."""
    from core import read_cache

    read_cache.invalidate_all()


@pytest.fixture
def user():
    """Alice, the signed-in user of the API tests (a module may define its own `user`)."""
    from tests.factories import UserFactory

    return UserFactory(username="alice")


@pytest.fixture
def api(user):
    """An API client signed in as `user`."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def replay_settings(settings):
    """A replay with an in-process worker: market data from the store, and one worker thread on
    SQLite, whose pytest-django test database fails on concurrent writers."""
    from django.db import connection

    settings.MARKET_SOURCE = "replay"
    settings.EMBEDDED_WORKER_THREADS = 3 if connection.vendor == "postgresql" else 1
    return settings
