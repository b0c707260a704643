"""The market models moved from scanners/ to market/ without touching their tables: a database
made before the move keeps its rows, and permissions granted on the models stay granted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

LAST_BEFORE_THE_MOVE = ("scanners", "0005_scanrun_scan_universe_permission")


def migrate(targets: list[tuple[str, str | None]]):
    """Migrate to `targets`; the models as they stand there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


def latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture
def database_before_the_move():
    apps = migrate([LAST_BEFORE_THE_MOVE, ("market", None)])
    yield apps
    migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_candles_stored_before_the_move_are_read_by_the_market_app(database_before_the_move):
    old_market = database_before_the_move.get_model("scanners", "Market")
    old_candle = database_before_the_move.get_model("scanners", "Candle")
    market = old_market.objects.create(
        exchange="binance", symbol="BTC/USDT", base="BTC", quote="USDT", market_type="spot"
    )
    old_candle.objects.create(
        market=market,
        timeframe="1h",
        open_time=datetime(2024, 1, 1, tzinfo=UTC),
        open=1.0,
        high=2.0,
        low=0.5,
        close=1.5,
        volume=10.0,
    )

    apps = migrate(latest())

    candle = apps.get_model("market", "Candle").objects.get()
    assert (candle.market.symbol, candle.close) == ("BTC/USDT", 1.5)


@pytest.mark.django_db(transaction=True)
def test_a_permission_granted_before_the_move_stays_granted(database_before_the_move):
    # auth and contenttypes are not part of the move: their models of today serve.
    candles = ContentType.objects.get_or_create(app_label="scanners", model="candle")[0]
    viewers = Group.objects.create(name="candle viewers")
    viewers.permissions.add(
        Permission.objects.get_or_create(
            content_type=candles, codename="view_candle", defaults={"name": "Can view candle"}
        )[0]
    )
    ContentType.objects.clear_cache()

    migrate(latest())

    ContentType.objects.clear_cache()
    granted = Group.objects.get(name="candle viewers").permissions.get()
    assert (granted.content_type.app_label, granted.codename) == ("market", "view_candle")
