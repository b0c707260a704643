"""GET /api/signals/: recorded signals, newest first, filtered by scanner, tier, direction, coin
and market time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from tests.factories import START, ScanRunFactory, SignalFactory, UserFactory

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(username="alice"))
    return client


@pytest.fixture
def signals():
    """At 01:00 an RSI LONG on BTC, at 02:00 a unified TIER_1 LONG on BTC, at 03:00 a smart-money
    SHORT on ETH (TIER_2), at 04:00 a unified TIER_2 SHORT on ETH."""
    return [
        SignalFactory(scanner="rsi", symbol="BTC/USDT", as_of=START + HOUR),
        SignalFactory(scanner="unified", symbol="BTC/USDT", as_of=START + 2 * HOUR, tier="TIER_1"),
        SignalFactory(
            scanner="smart_money",
            symbol="ETH/USDT",
            direction="SHORT",
            as_of=START + 3 * HOUR,
            tier="TIER_2",
        ),
        SignalFactory(
            scanner="unified",
            symbol="ETH/USDT",
            direction="SHORT",
            as_of=START + 4 * HOUR,
            tier="TIER_2",
        ),
    ]


def hours(response) -> list[int]:
    """The signals' as_of as hours after START, in the order listed."""
    assert response.status_code == 200, response.json()
    return [int(row["as_of"][11:13]) for row in response.json()["data"]["results"]]


def test_signals_are_listed_newest_first(api, signals):
    assert hours(api.get("/api/signals/")) == [4, 3, 2, 1]


def test_a_signal_shows_what_was_said_and_at_what_price(api):
    run = ScanRunFactory()
    SignalFactory(
        scanner="unified",
        symbol="SOL/USDT",
        as_of=START,
        entry_price=101.5,
        scanner_score=None,
        unified_score=86.0,
        tier="TIER_1",
        confidence=75,
        completeness=0.85,
        reasons=["entered TIER_1"],
        scan_run=run,
    )
    row = api.get("/api/signals/").json()["data"]["results"][0]
    assert row | {"id": None} == {
        "id": None,
        "scanner": "unified",
        "symbol": "SOL/USDT",
        "direction": "LONG",
        "as_of": "2024-01-01T00:00:00Z",
        "entry_price": 101.5,
        "scanner_score": None,
        "scores": {},
        "unified_score": 86.0,
        "tier": "TIER_1",
        "confidence": 75,
        "completeness": 0.85,
        "reasons": ["entered TIER_1"],
        "scan_run": run.pk,
    }


def test_a_signal_without_a_tier_shows_null(api):
    signal = SignalFactory(tier="")
    assert api.get(f"/api/signals/{signal.pk}/").json()["data"]["tier"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"scanner": "unified"}, [4, 2]),
        ({"scanner": "rsi"}, [1]),
        ({"tier": "TIER_2"}, [4, 3]),
        ({"direction": "LONG"}, [2, 1]),
        ({"symbol": "ETH/USDT"}, [4, 3]),
        ({"symbol": "eth"}, [4, 3]),
        ({"symbol": "BTCUSDT"}, [2, 1]),
        ({"since": "2024-01-01T02:00:00Z"}, [4, 3, 2]),
        ({"until": "2024-01-01T02:00:00Z"}, [2, 1]),
        ({"since": "2024-01-01T02:00", "until": "2024-01-01T03:00"}, [3, 2]),
        ({"since": "2024-01-01", "until": "2024-01-01"}, []),
        ({"scanner": "unified", "direction": "SHORT", "symbol": "ETH"}, [4]),
    ],
)
def test_signals_filter_by_scanner_tier_direction_symbol_and_time(api, signals, params, expected):
    assert hours(api.get("/api/signals/", params)) == expected


def test_an_equal_since_and_until_is_one_instant(api, signals):
    params = {"since": "2024-01-01T03:00:00Z", "until": "2024-01-01T03:00:00Z"}
    assert hours(api.get("/api/signals/", params)) == [3]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"scanner": "horoscope"}, "scanner"),
        ({"tier": "TIER_0"}, "tier"),
        ({"direction": "SIDEWAYS"}, "direction"),
        ({"since": "last week"}, "since"),
        ({"until": "2024-13-01"}, "until"),
        ({"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "until"),
        ({"limit": "1001"}, "limit"),
    ],
    ids=[
        "unknown-scanner",
        "unknown-tier",
        "unknown-direction",
        "bad-since",
        "bad-until",
        "reversed-range",
        "limit-too-big",
    ],
)
def test_a_bad_signal_filter_is_a_400_naming_it(api, signals, params, field):
    response = api.get("/api/signals/", params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == [field]
    assert error["message"].startswith(f"{field}: ")


def test_a_reversed_date_range_says_what_is_wrong(api):
    response = api.get(
        "/api/signals/", {"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"}
    )
    assert response.json()["error"]["fields"]["until"] == [
        "must not be before since (2024-01-02T00:00:00+00:00)"
    ]


def test_signals_are_read_only(api, signals):
    signal = signals[0]
    assert api.post("/api/signals/", {}).status_code == 405
    assert api.patch(f"/api/signals/{signal.pk}/", {"entry_price": 1}).status_code == 405
    assert api.delete(f"/api/signals/{signal.pk}/").status_code == 405
