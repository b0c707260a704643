"""The scans API: runs with their progress, a run's results, and starting a scan."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from scanners.models import CoinFailure, RunStatus, ScanRun, WatchlistCoin
from tests.factories import (
    START,
    MarketFactory,
    ScanResultFactory,
    ScanRunFactory,
    UserFactory,
    WatchlistFactory,
    hourly_candles,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def markets():
    return [MarketFactory(base=base) for base in ("BTC", "ETH", "SOL")]


def started_at(run: ScanRun) -> None:
    run.started_at = timezone.now() - timedelta(seconds=90)
    run.finished_at = run.started_at + timedelta(seconds=42.5)
    run.save()


# --- listing and reading runs ------------------------------------------------------------------


def test_runs_are_listed_newest_first_with_status_counts_and_duration(api):
    older = ScanRunFactory(symbols=["BTC/USDT", "ETH/USDT"], coins_failed=1, coins_done=1)
    started_at(older)
    newer = ScanRunFactory(scanner="mss", status=RunStatus.RUNNING, symbols=["BTC/USDT"])
    runs = api.get("/api/scans/").json()["data"]["results"]
    assert [run["id"] for run in runs] == [newer.pk, older.pk]
    assert runs[1] | {
        "created_at": None,
        "started_at": None,
        "finished_at": None,
        "progressed_at": None,
    } == {
        "id": older.pk,
        "scanner": "rsi",
        "status": "finished",
        "trigger": "manual",
        "as_of": "2024-01-11T00:00:00Z",
        "created_at": None,
        "started_at": None,
        "finished_at": None,
        "duration_seconds": 42.5,
        "coins_total": 2,
        "coins_done": 1,
        "coins_failed": 1,
        "batches_total": 1,
        "batches_done": 1,
        "signals_recorded": 0,
        "watchlist": None,
        "error": "",
        "progressed_at": None,
        "watchdog_stalls": 0,
        "watchdog_resends": 0,
        "watchdog_finishes": 0,
        "watchdog_log": "",
    }
    assert runs[0]["duration_seconds"] is None  # still running


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"scanner": "mss"}, ["mss"]), ({"status": "failed"}, ["social"]), ({}, None)],
)
def test_runs_filter_by_scanner_and_status(api, params, expected):
    ScanRunFactory(scanner="mss")
    ScanRunFactory(scanner="social", status=RunStatus.FAILED)
    runs = api.get("/api/scans/", params).json()["data"]["results"]
    assert [run["scanner"] for run in runs] == (expected or ["social", "mss"])


def test_a_run_shows_its_coins_and_the_coins_that_failed(api):
    run = ScanRunFactory(symbols=["BTC/USDT", "ETH/USDT"], coins_done=1, coins_failed=1)
    CoinFailure.objects.create(run=run, symbol="ETH/USDT", error="no candles before as_of")
    body = api.get(f"/api/scans/{run.pk}/").json()["data"]
    assert body["symbols"] == ["BTC/USDT", "ETH/USDT"]
    assert body["failures"] == [{"symbol": "ETH/USDT", "error": "no candles before as_of"}]


def test_a_run_of_your_watchlist_names_it(api, user):
    mine = ScanRunFactory(watchlist=WatchlistFactory(owner=user, name="majors"))
    assert api.get(f"/api/scans/{mine.pk}/").json()["data"]["watchlist"] == {
        "id": mine.watchlist_id,
        "name": "majors",
    }


def test_another_users_watchlist_run_is_a_404_everywhere(api):
    theirs = ScanRunFactory(
        watchlist=WatchlistFactory(name="secret plans"), symbols=["PEPE/USDT", "WIF/USDT"]
    )
    ScanResultFactory(run=theirs, symbol="PEPE/USDT")
    assert api.get(f"/api/scans/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/scans/{theirs.pk}/results").status_code == 404
    assert api.get("/api/scans/").json()["data"]["results"] == []


def test_another_users_scan_of_coins_they_named_is_theirs_but_the_universe_is_everyones(api, user):
    bob = UserFactory(username="bob")
    named = ScanRunFactory(requested_by=bob, symbols=["PEPE/USDT"])
    universe = ScanRunFactory(symbols=["BTC/USDT"])  # the schedule's: nobody requested it
    by_staff = ScanRunFactory(requested_by=UserFactory(username="root", is_staff=True))
    own = ScanRunFactory(requested_by=user, symbols=["SOL/USDT"])
    listed = [run["id"] for run in api.get("/api/scans/").json()["data"]["results"]]
    assert sorted(listed) == sorted([universe.pk, by_staff.pk, own.pk])
    assert api.get(f"/api/scans/{named.pk}/").status_code == 404


def test_an_unknown_run_is_a_404(api):
    assert api.get("/api/scans/4242/").status_code == 404
    assert api.get("/api/scans/4242/results").status_code == 404
    assert api.get("/api/scans/nope/results").status_code == 404


# --- a run's results ---------------------------------------------------------------------------


@pytest.fixture
def results():
    run = ScanRunFactory(scanner="all", symbols=["BTC/USDT", "ETH/USDT"])
    ScanResultFactory(run=run, scanner="rsi", symbol="BTC/USDT", direction="LONG")
    ScanResultFactory(run=run, scanner="smart_money", symbol="BTC/USDT")
    ScanResultFactory(run=run, scanner="rsi", symbol="ETH/USDT", direction="SHORT")
    ScanResultFactory(run=ScanRunFactory(), scanner="rsi", symbol="BTC/USDT")  # another run
    return run


def test_a_runs_results_are_its_own_by_symbol_and_scanner(api, results):
    rows = api.get(f"/api/scans/{results.pk}/results").json()["data"]["results"]
    assert [(row["symbol"], row["scanner"]) for row in rows] == [
        ("BTC/USDT", "rsi"),
        ("BTC/USDT", "smart_money"),
        ("ETH/USDT", "rsi"),
    ]
    assert set(rows[0]) == {
        "id",
        "run",
        "scanner",
        "symbol",
        "as_of",
        "direction",
        "scores",
        "component",
        "completeness",
        "reasons",
        "inputs",
    }
    assert rows[0]["component"] == {"LONG": 50.0, "SHORT": 50.0}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"scanner": "smart_money"}, [("BTC/USDT", "smart_money")]),
        ({"symbol": "eth"}, [("ETH/USDT", "rsi")]),
        ({"symbol": "BTCUSDT", "scanner": "rsi"}, [("BTC/USDT", "rsi")]),
        ({"direction": "SHORT"}, [("ETH/USDT", "rsi")]),
        ({"direction": "none"}, [("BTC/USDT", "smart_money")]),
    ],
)
def test_a_runs_results_filter_by_scanner_symbol_and_direction(api, results, params, expected):
    rows = api.get(f"/api/scans/{results.pk}/results", params).json()["data"]["results"]
    assert [(row["symbol"], row["scanner"]) for row in rows] == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [({"scanner": "tea"}, "scanner"), ({"direction": "UP"}, "direction"), ({"limit": 0}, "limit")],
)
def test_a_bad_results_filter_is_a_400_naming_it(api, results, params, field):
    response = api.get(f"/api/scans/{results.pk}/results", params)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


# --- starting a scan ---------------------------------------------------------------------------


def test_starting_a_scan_of_symbols_answers_202_with_the_queued_run(api, user, markets):
    response = api.post(
        "/api/scans/", {"scanner": "rsi", "symbols": ["btc", "ETHUSDT"]}, format="json"
    )
    assert response.status_code == 202
    data = response.json()["data"]
    run = ScanRun.objects.get(pk=data["id"])
    assert response["Location"].endswith(f"/api/scans/{run.pk}/")
    assert (data["scanner"], data["status"], data["coins_total"]) == ("rsi", "queued", 2)
    assert run.symbols == ["BTC/USDT", "ETH/USDT"]
    assert run.requested_by == user


def test_a_scan_can_be_started_as_of_a_past_time(api, markets):
    response = api.post(
        "/api/scans/",
        {"scanner": "all", "symbols": ["SOL"], "as_of": "2024-01-05T12:00"},
        format="json",
    )
    assert response.status_code == 202
    assert response.json()["data"]["as_of"] == "2024-01-05T12:00:00Z"
    assert ScanRun.objects.get().as_of == START + timedelta(days=4, hours=12)


def test_starting_a_scan_of_your_watchlist_scans_its_coins(api, user, markets):
    watchlist = WatchlistFactory(owner=user)
    WatchlistCoin.objects.create(watchlist=watchlist, symbol="SOL/USDT")
    response = api.post("/api/scans/", {"scanner": "mss", "watchlist": watchlist.pk})
    assert response.status_code == 202
    run = ScanRun.objects.get()
    assert (run.watchlist, run.symbols) == (watchlist, ["SOL/USDT"])


def test_a_second_scan_of_the_same_scanner_is_refused_with_409_while_one_runs(api, markets):
    first = api.post("/api/scans/", {"scanner": "rsi", "symbols": ["BTC"]}, format="json")
    assert first.status_code == 202
    second = api.post("/api/scans/", {"scanner": "rsi", "symbols": ["ETH"]}, format="json")
    assert second.status_code == 409
    error = second.json()["error"]
    assert error["code"] == "conflict"
    assert f"run #{first.json()['data']['id']}" in error["message"]
    assert "already queued" in error["message"]
    assert ScanRun.objects.count() == 1


def test_a_scan_of_another_scanner_may_run_beside_it(api, markets):
    assert api.post("/api/scans/", {"scanner": "rsi", "symbols": ["BTC"]}).status_code == 202
    assert api.post("/api/scans/", {"scanner": "mss", "symbols": ["BTC"]}).status_code == 202


def test_unknown_symbols_are_a_400_listing_every_one(api, markets):
    response = api.post(
        "/api/scans/", {"scanner": "rsi", "symbols": ["BTC", "NOPE", "ZZZ/USDT"]}, format="json"
    )
    assert response.status_code == 400
    message = response.json()["error"]["fields"]["symbols"][0]
    assert "NOPE/USDT" in message
    assert "ZZZ/USDT" in message
    assert "BTC/USDT" not in message
    assert not ScanRun.objects.exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"scanner"}),
        ({"scanner": "tarot"}, {"scanner"}),
        ({"scanner": "rsi", "symbols": []}, {"symbols"}),
        ({"scanner": "rsi", "symbols": "BTC"}, {"symbols"}),
        ({"scanner": "rsi", "coins": 0}, {"coins"}),
        ({"scanner": "rsi", "watchlist": 999}, {"watchlist"}),
        ({"scanner": "rsi", "as_of": "soon"}, {"as_of"}),
        ({"scanner": "rsi", "as_of": "2999-01-01T00:00:00Z"}, {"as_of"}),
        ({"scanner": "rsi", "symbols": ["BTC"], "coins": 5}, {"symbols", "coins"}),
    ],
    ids=[
        "no-scanner",
        "unknown-scanner",
        "empty-symbols",
        "symbols-not-a-list",
        "coins-0",
        "unknown-watchlist",
        "bad-as_of",
        "future-as_of",
        "two-scopes",
    ],
)
def test_a_bad_scan_request_is_a_400_naming_the_fields(api, markets, body, fields):
    response = api.post("/api/scans/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == fields
    assert not ScanRun.objects.exists()


def test_another_users_watchlist_cannot_be_scanned(api, markets):
    theirs = WatchlistFactory(owner=UserFactory(username="bob"))
    WatchlistCoin.objects.create(watchlist=theirs, symbol="BTC/USDT")
    response = api.post("/api/scans/", {"scanner": "rsi", "watchlist": theirs.pk})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["watchlist"]
    assert api.post(f"/api/watchlists/{theirs.pk}/scan").status_code == 404
    assert not ScanRun.objects.exists()


def test_scanning_a_watchlist_by_its_own_url_starts_all_four_scanners_by_default(
    api, user, markets
):
    watchlist = WatchlistFactory(owner=user)
    WatchlistCoin.objects.create(watchlist=watchlist, symbol="ETH/USDT")
    response = api.post(f"/api/watchlists/{watchlist.pk}/scan")
    assert response.status_code == 202
    data = response.json()["data"]
    assert data["scanner"] == "all"
    assert data["watchlist"] == {"id": watchlist.pk, "name": watchlist.name}


def test_scanning_an_empty_watchlist_is_refused_with_the_reason(api, user):
    watchlist = WatchlistFactory(owner=user, name="empty")
    response = api.post(f"/api/watchlists/{watchlist.pk}/scan", {"scanner": "rsi"})
    assert response.status_code == 409
    assert "no coins" in response.json()["error"]["message"]


def test_a_scan_of_the_top_coins_takes_them_by_24h_volume(staff_api, settings):
    api = staff_api
    settings.MARKET_SOURCE = "replay"
    hourly_candles(MarketFactory(base="BIG"), [100.0] * 30)
    hourly_candles(MarketFactory(base="SMALL"), [1.0] * 30)
    response = api.post(
        "/api/scans/",
        {"scanner": "rsi", "coins": 1, "as_of": "2024-01-02T06:00:00Z"},
        format="json",
    )
    assert response.status_code == 202, response.json()
    assert ScanRun.objects.get().symbols == ["BIG/USDT"]


def test_a_universe_scan_with_no_market_data_is_refused_with_the_reason(staff_api, settings):
    api = staff_api
    settings.MARKET_SOURCE = "replay"
    response = api.post("/api/scans/", {"scanner": "social", "as_of": "2024-01-02T06:00:00Z"})
    assert response.status_code == 409
    assert "nothing to scan" in response.json()["error"]["message"]
