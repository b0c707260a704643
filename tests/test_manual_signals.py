"""Signals tracked by hand (POST /api/performance/track-signal): they are their user's, filed
under `manual`, priced at the market (or close to it), take no scanner's cooldown slot and count
in no statistic unless asked for with scanner=manual (tracking/services.py, tracking/analytics.py,
tracking/rollups.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from market.models import ReplayClock
from tests.factories import (
    START,
    CheckedOutcomeFactory,
    MarketFactory,
    SignalFactory,
    UserFactory,
    hourly_candles,
)
from tracking.models import OutcomeRollup, Signal
from tracking.performance_filters import PerformanceFilters
from tracking.rollups import rollup_rows, rollups_rebuild
from tracking.services import SignalCandidate, signal_record
from tracking.window_aggregates import window

pytestmark = pytest.mark.django_db

NOW = START + timedelta(days=40)
TRACK = "/api/performance/track-signal"


@pytest.fixture
def btc(settings):
    """The market at NOW: BTC/USDT closing at 100 every hour, each hour's low 99 and high 101."""
    settings.MARKET_SOURCE = "replay"
    ReplayClock.objects.create(
        pk=1, market_time=NOW, start=START, end=NOW + timedelta(days=10), step=timedelta(hours=1)
    )
    market = MarketFactory(symbol="BTC/USDT", base="BTC")
    hourly_candles(market, [100.0] * 3, start=NOW - timedelta(hours=3))
    return market


@pytest.fixture
def alice():
    return UserFactory(username="alice")


def api_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def track(user, **body):
    return api_of(user).post(TRACK, {"symbol": "BTC", "direction": "LONG", **body}, format="json")


def price_error(response) -> str:
    assert response.status_code == 400, response.json()
    fields = response.json()["error"]["fields"]
    assert list(fields) == ["price"]
    return fields["price"][0]


# --- what is stored ------------------------------------------------------------------------------


def test_a_tracked_signal_is_stored_as_manual_and_belongs_to_its_user(btc, alice):
    response = track(alice)
    assert response.status_code == 201, response.json()
    signal = Signal.objects.get()
    assert (signal.scanner, signal.owner, signal.as_of) == ("manual", alice, NOW)


def test_without_a_price_the_entry_is_the_market_price_at_its_time(btc, alice):
    track(alice)
    assert Signal.objects.get().entry_price == 100.0


def test_a_price_within_the_hours_range_widened_by_the_tolerance_is_taken(btc, alice):
    assert track(alice, price=121.0).status_code == 201  # high 101 + 20 % = 121.2
    assert Signal.objects.get().entry_price == 121.0


@pytest.mark.parametrize("price", [1e308, 122.0, 79.0, 0.5])
def test_a_price_far_from_the_market_is_refused_with_the_reason(btc, alice, price):
    message = price_error(track(alice, price=price))
    assert "far from the market" in message
    assert "99–101" in message
    assert "MANUAL_PRICE_TOLERANCE_PCT" in message
    assert not Signal.objects.exists()


def test_the_tolerance_is_a_setting(btc, alice, settings):
    settings.MANUAL_PRICE_TOLERANCE_PCT = 50.0
    assert track(alice, price=150.0).status_code == 201


@pytest.mark.parametrize("price", [0, -1, "NaN", "Infinity"])
def test_a_non_positive_or_non_finite_price_is_refused(btc, alice, price):
    price_error(track(alice, price=price))
    assert not Signal.objects.exists()


def test_without_market_data_there_is_no_price_to_take_and_it_says_why(btc, alice, settings):
    btc.candles.all().delete()
    assert "no market price to take" in price_error(track(alice))
    assert "cannot be checked" in price_error(track(alice, price=100))


# --- cooldown ---------------------------------------------------------------------------------


def test_a_manual_signal_takes_no_scanners_cooldown_slot(btc, alice):
    assert track(alice).status_code == 201
    rsi = SignalCandidate(
        scanner="rsi", symbol="BTC/USDT", direction="LONG", as_of=NOW, completeness=1.0
    )
    assert signal_record(rsi, entry_price=100.0) is not None


def test_a_scanners_signal_does_not_hold_back_a_manual_one(btc, alice):
    SignalFactory(scanner="rsi", symbol="BTC/USDT", direction="LONG", as_of=NOW)
    assert track(alice).status_code == 201


def test_the_manual_cooldown_is_each_users_own(btc, alice):
    assert track(alice).status_code == 201
    assert track(alice).status_code == 409
    assert track(UserFactory(username="bob")).status_code == 201


# --- who sees it ------------------------------------------------------------------------------


def test_another_users_manual_signal_is_neither_listed_nor_found(btc, alice):
    track(alice)
    signal = Signal.objects.get()
    scanners = SignalFactory(scanner="rsi", as_of=NOW - timedelta(days=1))
    bob = api_of(UserFactory(username="bob"))
    listed = [row["id"] for row in bob.get("/api/signals/").json()["data"]["results"]]
    assert listed == [scanners.pk]
    assert bob.get(f"/api/signals/{signal.pk}/").status_code == 404
    own = api_of(alice).get("/api/signals/", {"scanner": "manual"}).json()["data"]["results"]
    assert [row["id"] for row in own] == [signal.pk]


# --- statistics -------------------------------------------------------------------------------


@pytest.fixture
def outcomes(btc, alice):
    """An RSI signal that lost, alice's manual signal that won and bob's that won too (24h)."""
    rsi = SignalFactory(scanner="rsi", tier="TIER_1", as_of=NOW - timedelta(days=3))
    CheckedOutcomeFactory(signal=rsi, return_pct=-4.0)
    for owner in (alice, UserFactory(username="bob")):
        manual = SignalFactory(
            scanner="manual", owner=owner, tier="TIER_1", as_of=NOW - timedelta(days=2)
        )
        CheckedOutcomeFactory(signal=manual, return_pct=10.0)
    return rsi


def stats(user, path: str, **params) -> dict:
    response = api_of(user).get(f"/api/performance/{path}", params)
    assert response.status_code == 200, response.json()
    return response.json()["data"]


def test_manual_signals_are_in_no_overall_statistic(outcomes, alice):
    summary = stats(alice, "stats")
    assert (summary["total_signals"], summary["n"], summary["wins"]) == (1, 1, 0)


def test_manual_signals_are_in_no_scanner_tier_or_symbol_group(outcomes, alice):
    assert [g["group"] for g in stats(alice, "by-scanner")["groups"]] == ["rsi"]
    assert [(g["group"], g["n"]) for g in stats(alice, "by-tier")["groups"]] == [("TIER_1", 1)]
    assert [(g["group"], g["n"]) for g in stats(alice, "by-symbol")["groups"]] == [("BTC/USDT", 1)]
    report = stats(alice, "report", days=30)
    assert report["summary"]["n"] == 1
    best = report["top_performers"]["best_signals"]
    assert [row["scanner"] for row in best] == ["rsi"]


def test_scanner_manual_asks_for_your_own_manual_signals_only(outcomes, alice):
    summary = stats(alice, "stats", scanner="manual")
    assert (summary["total_signals"], summary["n"], summary["wins"]) == (1, 1, 1)
    by_symbol = stats(alice, "by-symbol", scanner="manual")["groups"]
    assert [(g["group"], g["wins"]) for g in by_symbol] == [("BTC/USDT", 1)]


def test_the_rollups_hold_no_manual_signal(outcomes):
    def manual_free(rows: list[dict]) -> bool:
        return all(row["scanner"] != "manual" for row in rows)

    kept_by_triggers = rollup_rows()
    totals = [row for row in kept_by_triggers if row["level"] == 0 and row["horizon"] == ""]
    assert sum(row["signals"] for row in totals) == 1
    assert manual_free(kept_by_triggers)
    rollups_rebuild()
    assert rollup_rows() == kept_by_triggers
    assert OutcomeRollup.objects.exists()


def test_the_analytics_from_the_rollups_equal_those_from_the_rows_with_manual_signals(outcomes):
    for scanner in (None, "manual"):
        filters = PerformanceFilters(days=30, scanner=scanner, now=NOW)
        assert window(filters) == window(filters, from_rows=True)


# --- the embedded default's triggers (SQLite) -----------------------------------------------------


@pytest.fixture
def sqlite(tmp_path, django_db_blocker):
    """A SQLite file with the signal, check and rollup tables and the rollup triggers (the suite's
    own database is PostgreSQL; its `connections` are left alone)."""
    from django.db.utils import ConnectionHandler

    from tracking import rollups
    from tracking.models import OutcomeCheck

    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "x.db")}}
    )
    connection = handler["default"]
    with django_db_blocker.unblock():
        with connection.schema_editor(atomic=False) as editor:
            for model in (Signal, OutcomeCheck, OutcomeRollup):
                editor.create_model(model)
            rollups.triggers_install(editor)
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = OFF")  # no user or scan-run tables here
        yield connection
        connection.close()


def insert(connection, instance) -> None:
    fields = [field for field in type(instance)._meta.concrete_fields if not field.primary_key]
    names = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    values = [
        field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields
    ]
    table = type(instance)._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(values))})",
            values,
        )
        instance.pk = cursor.lastrowid


def test_the_sqlite_triggers_roll_up_scanner_signals_and_skip_manual_ones(sqlite):
    from tracking.models import OutcomeCheck

    as_of = NOW - timedelta(days=1)
    made = {}
    for scanner, owner_id in (("rsi", None), ("manual", 7)):
        signal = Signal(
            scanner=scanner, symbol="BTC/USDT", direction="LONG", as_of=as_of, entry_price=100.0,
            completeness=1.0, owner_id=owner_id,
        )  # fmt: skip
        insert(sqlite, signal)
        check = OutcomeCheck(
            signal_id=signal.pk, horizon="24h", due_at=as_of + timedelta(days=1),
            run_at=as_of + timedelta(days=1),
        )  # fmt: skip
        insert(sqlite, check)
        made[scanner] = check
    with sqlite.cursor() as cursor:
        for check in made.values():  # both checks complete: a win
            cursor.execute(
                "UPDATE tracking_outcomecheck SET status = 'done', outcome = 'WIN', "
                "adjusted_return_pct = 6.0 WHERE id = %s",
                [check.pk],
            )
        cursor.execute(
            "SELECT level, scanner, SUM(signals), SUM(n), SUM(wins) FROM tracking_outcomerollup "
            "GROUP BY level, scanner ORDER BY level, scanner"
        )
        rows = cursor.fetchall()
    assert rows == [(0, "", 1, 1, 1), (1, "rsi", 1, 1, 1), (2, "", 1, 1, 1)]
