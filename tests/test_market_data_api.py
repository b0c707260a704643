"""The read-only market-data API: markets, point-in-time candles, the replay clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from market.models import MarketType, ReplayClock
from tests.factories import START, CandleFactory, MarketFactory, hourly_candles

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)
ENDPOINTS = ["/api/", "/api/markets/", "/api/candles/?symbol=BTC/USDT", "/api/replay-clock/"]


@pytest.fixture
def api(django_user_model) -> APIClient:
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("reader"))
    return client


@pytest.fixture
def btc():
    market = MarketFactory(base="BTC")
    hourly_candles(market, [100.0 + i for i in range(10)])
    return market


@pytest.fixture
def clock(settings):
    settings.MARKET_SOURCE = "replay"
    return ReplayClock.objects.create(
        pk=1, market_time=START + 6 * HOUR, start=START, end=START + 10 * HOUR, step=HOUR
    )


@pytest.mark.parametrize("url", ENDPOINTS)
def test_unauthenticated_requests_are_refused_in_the_envelope(url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response.json()["ok"] is False
    assert response.json()["error"]["code"] == "not_authenticated"


def test_the_api_root_lists_markets_candles_and_the_replay_clock(api):
    names = set(api.get("/api/").json()["data"])
    assert {"markets", "candles", "replay-clock"} <= names


def test_markets_filter_by_type_and_search_by_symbol(api):
    MarketFactory(base="BTC")
    MarketFactory(base="ETH")
    MarketFactory(base="BTC", symbol="BTC/USDT:USDT", market_type=MarketType.FUTURES)
    spot = api.get("/api/markets/", {"market_type": "spot", "search": "btc"}).json()["data"]
    assert [market["symbol"] for market in spot["results"]] == ["BTC/USDT"]


def test_markets_filter_by_active(api):
    MarketFactory(base="OLD", active=False)
    MarketFactory(base="NEW")
    body = api.get("/api/markets/", {"active": "false"}).json()["data"]
    assert [market["symbol"] for market in body["results"]] == ["OLD/USDT"]


def test_candles_are_the_closed_candles_as_of_the_given_time(api, btc, clock):
    body = api.get(
        "/api/candles/", {"symbol": "BTC/USDT", "as_of": "2024-01-01T03:30:00Z", "limit": 2}
    ).json()["data"]
    assert body["as_of"] == "2024-01-01T03:30:00Z"
    assert [c["open_time"] for c in body["candles"]] == [
        "2024-01-01T01:00:00Z",
        "2024-01-01T02:00:00Z",
    ]
    assert body["candles"][-1]["close_time"] == "2024-01-01T03:00:00Z"
    assert body["candles"][-1]["close"] == 102.0


def test_candles_default_to_the_current_market_time(api, btc, clock):
    body = api.get("/api/candles/", {"symbol": "BTC/USDT"}).json()["data"]
    assert body["as_of"] == "2024-01-01T06:00:00Z"
    assert len(body["candles"]) == 6


def test_candles_are_never_read_after_the_current_market_time(api, btc, clock):
    body = api.get("/api/candles/", {"symbol": "BTC/USDT", "as_of": "2030-01-01T00:00Z"})
    body = body.json()["data"]
    assert body["as_of"] == "2024-01-01T06:00:00Z"
    assert body["candles"][-1]["close_time"] == "2024-01-01T06:00:00Z"


def test_an_as_of_without_offset_is_utc(api, btc, clock):
    body = api.get("/api/candles/", {"symbol": "BTC/USDT", "as_of": "2024-01-01T02:00"})
    body = body.json()["data"]
    assert body["as_of"] == "2024-01-01T02:00:00Z"


def test_unknown_taker_volume_is_null(api, clock):
    CandleFactory(market=MarketFactory(base="TKR"), open_time=START, taker_buy_volume=None)
    body = api.get("/api/candles/", {"symbol": "TKR/USDT"}).json()["data"]
    assert body["candles"][0]["taker_buy_volume"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "symbol"),
        ({"symbol": "NOPE/USDT"}, "symbol"),
        ({"symbol": "BTC/USDT", "timeframe": "7m"}, "timeframe"),
        ({"symbol": "BTC/USDT", "as_of": "yesterday"}, "as_of"),
        ({"symbol": "BTC/USDT", "limit": 0}, "limit"),
        ({"symbol": "BTC/USDT", "limit": 1001}, "limit"),
        ({"symbol": "BTC/USDT", "limit": "many"}, "limit"),
    ],
    ids=[
        "missing-symbol",
        "unknown-symbol",
        "bad-timeframe",
        "bad-as_of",
        "limit-0",
        "limit-1001",
        "limit-not-a-number",
    ],
)
def test_a_bad_candles_request_is_a_400_naming_the_field(api, btc, clock, params, field):
    response = api.get("/api/candles/", params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == [field]
    assert field in error["message"]


def test_the_replay_clock_shows_time_range_step_and_progress(api, clock):
    body = api.get("/api/replay-clock/").json()["data"]
    assert body["market_time"] == "2024-01-01T06:00:00Z"
    assert body["start"] == "2024-01-01T00:00:00Z"
    assert body["end"] == "2024-01-01T10:00:00Z"
    assert body["step_seconds"] == 3600.0
    assert body["ticks"] == 0
    assert body["finished"] is False


def test_the_replay_clock_is_404_before_it_exists(api):
    response = api.get("/api/replay-clock/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "store" in response.json()["error"]["message"]


def test_the_openapi_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", tmp_path / "schema.yml")
    schema = (tmp_path / "schema.yml").read_text()
    assert "/api/candles/:" in schema
    assert "/api/replay-clock/:" in schema


# --- the admin shows market history without letting anyone edit it ------------------------------


@pytest.mark.parametrize(
    "model", ["market", "candle", "fundingrate", "openinterest", "importrecord", "replayclock"]
)
def test_the_admin_lists_market_data(admin_client, btc, clock, model):
    assert admin_client.get(f"/admin/market/{model}/").status_code == 200


def test_market_history_cannot_be_edited_in_the_admin(admin_client, btc):
    candle = btc.candles.first()
    assert admin_client.get("/admin/market/candle/add/").status_code == 403
    assert admin_client.post(f"/admin/market/candle/{candle.pk}/change/", {}).status_code == 403
    assert admin_client.post(f"/admin/market/candle/{candle.pk}/delete/").status_code == 403
