"""GET /api/scan/unified-ranking: each coin's latest unified score, best first, filtered."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scanners.models import WatchlistCoin
from tests.factories import (
    START,
    ScanRunFactory,
    UnifiedRankingFactory,
    UserFactory,
    WatchlistFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/scan/unified-ranking"
BREAKDOWN = {
    "rsi": {
        "label": "technical (RSI)",
        "direction": "LONG",
        "score": 80.0,
        "weight": 0.15,
        "renormalised_weight": 1.0,
        "contribution": 80.0,
        "available": True,
        "missing": None,
        "fired": "LONG",
        "confirms": True,
        "as_of": "2024-01-11T00:00:00+00:00",
    }
}


@pytest.fixture
def ranking():
    """BTC 91 TIER_1 LONG, ETH 74 TIER_2 SHORT, SOL 58 TIER_3 LONG, DOGE 30 TIER_4 LONG; ETH's
    older row (an earlier run) scored 95 and must not count."""
    earlier = ScanRunFactory(scanner="all", as_of=START + timedelta(days=9))
    latest = ScanRunFactory(scanner="all")
    UnifiedRankingFactory(scan_run=earlier, symbol="ETH/USDT", unified_score=95.0, tier="TIER_1")
    rows = {
        "BTC/USDT": {"unified_score": 91.0, "tier": "TIER_1", "recommendation": "MUST BUY"},
        "ETH/USDT": {
            "unified_score": 74.0,
            "tier": "TIER_2",
            "direction": "SHORT",
            "recommendation": "STRONG SELL",
        },
        "SOL/USDT": {"unified_score": 58.0, "tier": "TIER_3"},
        "DOGE/USDT": {"unified_score": 30.0, "tier": "TIER_4", "recommendation": "NEUTRAL"},
    }
    return {
        symbol: UnifiedRankingFactory(scan_run=latest, symbol=symbol, **fields)
        for symbol, fields in rows.items()
    }


def symbols(response) -> list[str]:
    return [row["symbol"] for row in response.json()["data"]["results"]]


def test_the_ranking_is_each_coins_latest_row_best_first(api, ranking):
    body = api.get(URL).json()["data"]
    assert body["count"] == 4
    assert [(row["rank"], row["symbol"]) for row in body["results"]] == [
        (1, "BTC/USDT"),
        (2, "ETH/USDT"),
        (3, "SOL/USDT"),
        (4, "DOGE/USDT"),
    ]
    assert body["results"][1]["unified_score"] == 74.0  # not the older 95


def test_a_row_shows_score_tier_recommendation_confidence_and_breakdown(api):
    UnifiedRankingFactory(
        symbol="BTC/USDT",
        unified_score=88.5,
        tier="TIER_1",
        recommendation="MUST BUY",
        confirmations=2,
        confirmed_by=["rsi", "smart_money"],
        confidence=75,
        completeness=0.85,
        breakdown=BREAKDOWN,
    )
    row = api.get(URL).json()["data"]["results"][0]
    assert row | {"as_of": None, "scan_run": None} == {
        "rank": 1,
        "symbol": "BTC/USDT",
        "unified_score": 88.5,
        "tier": "TIER_1",
        "recommendation": "MUST BUY",
        "direction": "LONG",
        "confidence": 75,
        "confirmations": 2,
        "confirmed_by": ["rsi", "smart_money"],
        "completeness": 0.85,
        "score_long": 88.5,
        "score_short": 20.0,
        "breakdown": BREAKDOWN,
        "reasons": [],
        "notes": [],
        "as_of": None,
        "scan_run": None,
    }
    assert row["as_of"] == "2024-01-11T00:00:00Z"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tier": "TIER_1"}, ["BTC/USDT"]),
        ({"tier": "TIER_3"}, ["SOL/USDT"]),
        ({"direction": "SHORT"}, ["ETH/USDT"]),
        ({"direction": "LONG"}, ["BTC/USDT", "SOL/USDT", "DOGE/USDT"]),
        ({"min_score": "58"}, ["BTC/USDT", "ETH/USDT", "SOL/USDT"]),
        ({"min_score": "74.5"}, ["BTC/USDT"]),
        ({"direction": "LONG", "min_score": 50}, ["BTC/USDT", "SOL/USDT"]),
        ({"tier": "TIER_2", "direction": "LONG"}, []),
    ],
)
def test_the_ranking_filters_by_tier_direction_and_minimum_score(api, ranking, params, expected):
    assert symbols(api.get(URL, params)) == expected


def test_the_ranking_of_your_watchlist_ranks_its_coins_only(api, user, ranking):
    watchlist = WatchlistFactory(owner=user)
    for symbol in ("DOGE/USDT", "ETH/USDT"):
        WatchlistCoin.objects.create(watchlist=watchlist, symbol=symbol)
    body = api.get(URL, {"watchlist": watchlist.pk}).json()["data"]
    assert [(row["rank"], row["symbol"]) for row in body["results"]] == [
        (1, "ETH/USDT"),
        (2, "DOGE/USDT"),
    ]


def test_an_empty_watchlist_ranks_nothing(api, user, ranking):
    watchlist = WatchlistFactory(owner=user)
    assert symbols(api.get(URL, {"watchlist": watchlist.pk})) == []


def test_another_users_watchlist_is_refused_as_a_filter(api, ranking):
    theirs = WatchlistFactory(owner=UserFactory(username="bob"))
    WatchlistCoin.objects.create(watchlist=theirs, symbol="BTC/USDT")
    response = api.get(URL, {"watchlist": theirs.pk})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["watchlist"]


def test_ranks_continue_across_pages(api, ranking):
    body = api.get(URL, {"limit": 2, "offset": 2}).json()["data"]
    assert [(row["rank"], row["symbol"]) for row in body["results"]] == [
        (3, "SOL/USDT"),
        (4, "DOGE/USDT"),
    ]
    assert body["count"] == 4
    assert body["next"] is None


def test_limit_caps_the_ranking(api, ranking):
    assert symbols(api.get(URL, {"limit": 1})) == ["BTC/USDT"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tier": "TIER_9"}, "tier"),
        ({"tier": "tier_1"}, "tier"),
        ({"direction": "UP"}, "direction"),
        ({"min_score": "high"}, "min_score"),
        ({"min_score": "101"}, "min_score"),
        ({"min_score": "-1"}, "min_score"),
        ({"watchlist": "majors"}, "watchlist"),
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(api, ranking, params, field):
    response = api.get(URL, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == [field]
    assert error["message"].startswith(f"{field}: ")


def test_an_empty_ranking_is_an_empty_page(api):
    assert api.get(URL).json() == {
        "ok": True,
        "data": {"count": 0, "next": None, "previous": None, "results": []},
    }
