"""Watchlists as the plan names them: `PUT /api/watchlists/{id}/coins` (replace the list),
`GET /api/watchlists/{id}/alerts` (alerts on its coins), `GET /api/watchlists/{id}/scan` (its
latest results), the `watchlist` filter by id or by name, a signal's detail with its outcome
checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from alerts.models import Alert
from scanners.models import WatchlistCoin
from tests.factories import (
    START,
    ScanResultFactory,
    ScanRunFactory,
    SignalAlertFactory,
    SignalFactory,
    UnifiedRankingFactory,
    WatchlistFactory,
)
from tests.watchlist_fixtures import coins_of
from tracking.outcomes import checks_create_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("markets")]

HOUR = timedelta(hours=1)


def results(response) -> list[dict]:
    assert response.status_code == 200, response.json()
    return response.json()["data"]["results"]


def alert_on(symbol: str, hours: int = 0) -> Alert:
    return SignalAlertFactory(
        signal=SignalFactory(symbol=symbol, as_of=START + hours * HOUR),
        created_at=START + hours * HOUR,
    )


# --- PUT /api/watchlists/{id}/coins -----------------------------------------------------------


def test_putting_coins_replaces_the_whole_list(api, majors):
    response = api.put(
        f"/api/watchlists/{majors.pk}/coins", {"coins": ["sol", "ETHUSDT"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["data"]["coins"] == ["ETH/USDT", "SOL/USDT"]
    assert coins_of(majors) == ["ETH/USDT", "SOL/USDT"]


def test_putting_no_coins_empties_the_watchlist(api, majors):
    response = api.put(f"/api/watchlists/{majors.pk}/coins", {"coins": []}, format="json")
    assert response.status_code == 200
    assert coins_of(majors) == []


def test_putting_an_unknown_coin_is_a_400_naming_it_and_changes_nothing(api, majors):
    response = api.put(
        f"/api/watchlists/{majors.pk}/coins", {"coins": ["SOL", "MOON"]}, format="json"
    )
    assert response.status_code == 400
    assert "MOON/USDT" in response.json()["error"]["fields"]["coins"][0]
    assert coins_of(majors) == ["BTC/USDT", "ETH/USDT"]


def test_putting_without_a_coins_list_is_a_400_naming_coins(api, majors):
    response = api.put(f"/api/watchlists/{majors.pk}/coins", {}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["coins"]


# --- who may call the new endpoints ------------------------------------------------------------

NEW_ENDPOINTS = [
    ("put", "/coins", {"coins": ["BTC"]}),
    ("get", "/alerts", None),
    ("get", "/scan", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), NEW_ENDPOINTS)
def test_the_owner_may_call_each_new_endpoint(api, majors, method, suffix, body):
    response = getattr(api, method)(f"/api/watchlists/{majors.pk}{suffix}", body, format="json")
    assert response.status_code == 200
    assert response.json()["ok"] is True


@pytest.mark.parametrize(("method", "suffix", "body"), NEW_ENDPOINTS)
def test_another_users_watchlist_is_a_404_on_each_new_endpoint(api, theirs, method, suffix, body):
    alert_on("DOGE/USDT")
    response = getattr(api, method)(f"/api/watchlists/{theirs.pk}{suffix}", body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert coins_of(theirs) == ["DOGE/USDT"]


@pytest.mark.parametrize(("method", "suffix", "body"), NEW_ENDPOINTS)
def test_an_anonymous_caller_is_a_401_on_each_new_endpoint(majors, method, suffix, body):
    response = getattr(APIClient(), method)(
        f"/api/watchlists/{majors.pk}{suffix}", body, format="json"
    )
    assert response.status_code == 401
    assert coins_of(majors) == ["BTC/USDT", "ETH/USDT"]


# --- GET /api/watchlists/{id}/alerts -----------------------------------------------------------


def test_the_alerts_of_a_watchlist_are_only_alerts_on_its_coins(api, majors):
    btc, eth = alert_on("BTC/USDT", 1), alert_on("ETH/USDT", 2)
    alert_on("SOL/USDT", 3)
    Alert.objects.create(channel="console", tier=1, kind="digest", text="digest")
    rows = results(api.get(f"/api/watchlists/{majors.pk}/alerts"))
    assert [row["id"] for row in rows] == [eth.pk, btc.pk]  # newest first
    assert {row["symbol"] for row in rows} == {"BTC/USDT", "ETH/USDT"}


def test_the_alerts_of_a_watchlist_take_the_alert_filters(api, majors):
    alert_on("BTC/USDT", 1)
    eth = alert_on("ETH/USDT", 2)
    Alert.objects.filter(pk=eth.pk).update(tier=1)
    rows = results(api.get(f"/api/watchlists/{majors.pk}/alerts", {"tier": "1"}))
    assert [row["id"] for row in rows] == [eth.pk]


# --- GET /api/watchlists/{id}/scan -------------------------------------------------------------


def test_the_latest_results_of_a_watchlist_are_each_scanners_newest_per_coin(api, majors):
    old = ScanRunFactory(scanner="all", as_of=START)
    new = ScanRunFactory(scanner="rsi", as_of=START + HOUR)
    for scanner in ("rsi", "smart_money"):
        ScanResultFactory(run=old, scanner=scanner, symbol="BTC/USDT")
    newest_rsi = ScanResultFactory(run=new, scanner="rsi", symbol="BTC/USDT")
    ScanResultFactory(run=new, scanner="rsi", symbol="SOL/USDT")  # not in the watchlist
    rows = results(api.get(f"/api/watchlists/{majors.pk}/scan"))
    assert [(row["symbol"], row["scanner"], row["run"]) for row in rows] == [
        ("BTC/USDT", "rsi", new.pk),
        ("BTC/USDT", "smart_money", old.pk),
    ]
    assert rows[0]["id"] == newest_rsi.pk


def test_the_latest_results_of_a_watchlist_stop_at_the_market_time_now(api, majors, settings):
    from market.models import ReplayClock
    from market.replay_clock import CLOCK_PK

    settings.MARKET_SOURCE = "replay"
    ReplayClock.objects.create(
        pk=CLOCK_PK, market_time=START + HOUR, start=START, end=START + 99 * HOUR, step=HOUR
    )
    seen = ScanResultFactory(run=ScanRunFactory(as_of=START), symbol="ETH/USDT")
    ScanResultFactory(run=ScanRunFactory(as_of=START + 2 * HOUR), symbol="ETH/USDT")
    assert [row["id"] for row in results(api.get(f"/api/watchlists/{majors.pk}/scan"))] == [seen.pk]


# --- the watchlist filter: by id or by name, your own only -------------------------------------


@pytest.mark.parametrize("ref", ["id", "name"])
def test_alerts_filter_by_a_watchlist_id_or_name(api, majors, ref):
    btc = alert_on("BTC/USDT", 1)
    alert_on("SOL/USDT", 2)
    value = majors.pk if ref == "id" else "majors"
    assert [row["id"] for row in results(api.get("/api/alerts/", {"watchlist": value}))] == [btc.pk]


@pytest.mark.parametrize("which", ["theirs", "unknown"])
def test_another_users_or_an_unknown_watchlist_is_a_400_naming_the_parameter(api, theirs, which):
    alert_on("DOGE/USDT")
    value = {"theirs": "bob's", "unknown": "nope"}[which]
    for url in ("/api/alerts/", "/api/scan/unified-ranking"):
        response = api.get(url, {"watchlist": value})
        assert response.status_code == 400, url
        assert list(response.json()["error"]["fields"]) == ["watchlist"]


def test_the_unified_ranking_filters_by_a_watchlist_name(api, majors):
    run = ScanRunFactory(scanner="all")
    UnifiedRankingFactory(scan_run=run, symbol="BTC/USDT")
    UnifiedRankingFactory(scan_run=run, symbol="SOL/USDT")
    response = api.get("/api/scan/unified-ranking", {"watchlist": "majors"})
    assert response.status_code == 200, response.json()
    assert [row["symbol"] for row in response.json()["data"]["results"]] == ["BTC/USDT"]


def test_a_numeric_name_is_found_when_no_id_matches(api, user):
    numbered = WatchlistFactory(owner=user, name="2024")
    WatchlistCoin.objects.create(watchlist=numbered, symbol="SOL/USDT")
    sol = alert_on("SOL/USDT")
    alert_on("BTC/USDT")
    rows = results(api.get("/api/alerts/", {"watchlist": "2024"}))
    assert [row["id"] for row in rows] == [sol.pk]


# --- a signal's detail, and the API root ---------------------------------------------------------


def test_a_signals_detail_includes_its_five_outcome_checks(api):
    signal = SignalFactory(symbol="BTC/USDT", as_of=START)
    checks_create_for(signal)
    response = api.get(f"/api/signals/{signal.pk}/")
    assert response.status_code == 200
    checks = response.json()["data"]["outcome_checks"]
    assert [check["horizon"] for check in checks] == ["1h", "4h", "24h", "7d", "30d"]
    assert checks[0]["status"] == "pending"
    assert checks[0]["outcome"] is None
    assert checks[0]["due_at"] == "2024-01-01T01:00:00Z"
    # the list stays light: no checks there
    listed = results(api.get("/api/signals/"))
    assert "outcome_checks" not in listed[0]
