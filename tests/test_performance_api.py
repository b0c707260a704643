"""/api/performance/: the analytics endpoints (envelope, filters, 400s naming the parameter), the
outcome tracker's switch and stats, and tracking a signal given by an API client."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient
from rest_framework.utils.encoders import JSONEncoder

from market.models import ReplayClock
from tests.factories import (
    START,
    CheckedOutcomeFactory,
    MarketFactory,
    SignalFactory,
    UserFactory,
    WatchlistFactory,
    hourly_candles,
)
from tracking import analytics, recommendations
from tracking.models import OutcomeCheck, Signal, TrackerState
from tracking.performance_api import (
    BreakdownSerializer,
    RecommendationsSerializer,
    ReportSerializer,
    StatsSerializer,
    TopPerformersSerializer,
    TrackerStatsSerializer,
)
from tracking.performance_filters import PerformanceFilters

pytestmark = pytest.mark.django_db

NOW = START + timedelta(days=40)
DAY = timedelta(days=1)

GET_ENDPOINTS = [
    "stats",
    "report",
    "by-scanner",
    "by-tier",
    "by-interval",
    "by-signal-type",
    "by-symbol",
    "top-performers",
    "recommendations",
    "tracker-stats",
]
POST_ENDPOINTS = ["tracker/start", "tracker/stop", "track-signal"]


def url(name: str) -> str:
    return f"/api/performance/{name}"


@pytest.fixture
def clock(settings):
    settings.MARKET_SOURCE = "replay"
    return ReplayClock.objects.create(
        pk=1, market_time=NOW, start=START, end=NOW + 10 * DAY, step=timedelta(hours=1)
    )


@pytest.fixture
def signals(clock):
    """Signals of three coins in the last 30 days with their 24h outcomes (5 W, 3 L, 2 N), one
    of them 10 days old, and one 20 days old that only the 30-day views see."""
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        MarketFactory(symbol=symbol, base=symbol.split("/")[0])
    rows = [
        ("rsi", "BTC/USDT", "LONG", "TIER_1", 10.0),
        ("rsi", "ETH/USDT", "LONG", "TIER_2", 6.0),
        ("rsi", "BTC/USDT", "SHORT", "TIER_1", -8.0),
        ("smart_money", "ETH/USDT", "LONG", "TIER_1", -4.0),
        ("smart_money", "SOL/USDT", "SHORT", "", 5.0),
        ("smart_money", "SOL/USDT", "LONG", "TIER_2", 2.0),
        ("mss", "BTC/USDT", "LONG", "TIER_1", -1.0),
        ("mss", "ETH/USDT", "LONG", "TIER_3", 20.0),
        ("unified", "SOL/USDT", "LONG", "TIER_1", -3.0),
        ("unified", "ETH/USDT", "SHORT", "TIER_2", -5.0),
    ]
    made = []
    for i, (scanner, symbol, direction, tier, return_pct) in enumerate(rows):
        signal = SignalFactory(
            scanner=scanner,
            symbol=symbol,
            direction=direction,
            tier=tier,
            as_of=NOW - (20 if i == 0 else 3) * DAY + i * timedelta(hours=1),
        )
        CheckedOutcomeFactory(signal=signal, return_pct=return_pct)
        made.append(signal)
    return made


def data(response) -> dict:
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True
    return body["data"]


def as_json(value: object) -> object:
    """What the API's renderer makes of a service's answer."""
    return json.loads(json.dumps(value, cls=JSONEncoder))


def field_error(response, field: str) -> list[str]:
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert list(error["fields"]) == [field]
    assert error["message"].startswith(f"{field}: ")
    return error["fields"][field]


# --- envelope and auth --------------------------------------------------------------------------


@pytest.mark.parametrize("name", GET_ENDPOINTS)
def test_every_endpoint_needs_authentication(name):
    assert APIClient().get(url(name)).status_code == 401


@pytest.mark.parametrize("name", POST_ENDPOINTS)
def test_every_action_needs_authentication(name):
    response = APIClient().post(url(name), {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("name", GET_ENDPOINTS)
def test_every_read_answers_in_the_envelope_even_without_signals(api, clock, name):
    assert isinstance(data(api.get(url(name))), dict)


@pytest.mark.parametrize("name", POST_ENDPOINTS)
def test_actions_are_posts(api, clock, name):
    assert api.get(url(name)).status_code == 405


# --- the numbers are the services' --------------------------------------------------------------

SERVICE_VIEWS = [
    ("stats", {}, lambda f: analytics.performance_summary(f), 30, StatsSerializer),
    ("report", {}, lambda f: analytics.performance_report(f), 7, ReportSerializer),
    ("by-scanner", {}, lambda f: analytics.performance_by("scanner", f), 30, BreakdownSerializer),
    ("by-tier", {}, lambda f: analytics.performance_by("tier", f), 30, BreakdownSerializer),
    (
        "by-interval",
        {},
        lambda f: analytics.performance_by("horizon", f),
        30,
        BreakdownSerializer,
    ),
    (
        "by-signal-type",
        {},
        lambda f: analytics.performance_by("direction", f),
        30,
        BreakdownSerializer,
    ),
    ("by-symbol", {}, lambda f: analytics.performance_by("symbol", f), 30, BreakdownSerializer),
    (
        "top-performers",
        {"limit": "2"},
        lambda f: analytics.top_performers(f, limit=2),
        7,
        TopPerformersSerializer,
    ),
    (
        "recommendations",
        {},
        lambda f: recommendations.recommendations(f),
        30,
        RecommendationsSerializer,
    ),
]


@pytest.mark.parametrize(
    ("name", "params", "service", "days", "serializer"),
    SERVICE_VIEWS,
    ids=[row[0] for row in SERVICE_VIEWS],
)
def test_each_endpoint_returns_its_service_with_the_default_days(
    api, signals, name, params, service, days, serializer
):
    got = data(api.get(url(name), params))
    expected = as_json(service(PerformanceFilters(days=days, now=NOW)))
    assert got == expected
    # The documented schema describes exactly what is returned.
    assert as_json(serializer(got).data) == got


def test_stats_of_the_fixture(api, signals):
    stats = data(api.get(url("stats")))
    picked = {
        key: stats[key]
        for key in (
            "period_days",
            "horizon",
            "as_of",
            "total_signals",
            "outcomes_checked",
            "wins",
            "losses",
            "neutral",
            "win_rate",
            "loss_rate",
            "neutral_rate",
            "decisive_win_rate",
            "avg_win_pct",
            "avg_loss_pct",
            "expectancy_pct",
            "total_pnl_pct",
            "profit_factor",
            "judgement",
        )
    }
    assert picked == {
        "period_days": 30,
        "horizon": "24h",
        "as_of": "2024-02-10T00:00:00Z",
        "total_signals": 10,
        "outcomes_checked": 10,
        "wins": 5,
        "losses": 3,
        "neutral": 2,
        "win_rate": 50.0,
        "loss_rate": 30.0,
        "neutral_rate": 20.0,
        "decisive_win_rate": 62.5,
        "avg_win_pct": 9.8,
        "avg_loss_pct": -4.0,
        "expectancy_pct": 3.8,
        "total_pnl_pct": 38.0,
        "profit_factor": 3.9231,
        "judgement": "too few to judge",
    }
    assert stats["win_rate_ci"] == {"low": 23.659, "high": 76.341, "successes": 5, "n": 10}


def test_the_report_has_the_original_sections(api, signals):
    report = data(api.get(url("report")))
    assert list(report) == [
        "summary",
        "by_scanner",
        "by_tier",
        "by_interval",
        "by_signal_type",
        "top_performers",
        "recommendations",
    ]
    assert report["summary"]["period_days"] == 7
    assert report["summary"]["n"] == 9  # the signal 20 days old is outside the week
    assert [row["group"] for row in report["by_interval"]] == ["1h", "4h", "24h", "7d", "30d"]
    assert report["recommendations"]["recommendations"] == []  # n = 9 < 30


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "n"),
    [
        ({}, 10),
        ({"days": "7"}, 9),
        ({"days": "1"}, 0),
        ({"scanner": "rsi"}, 3),
        ({"scanner": "manual"}, 0),
        ({"tier": "TIER_1"}, 5),
        ({"direction": "SHORT"}, 3),
        ({"symbol": "eth"}, 4),
        ({"symbol": "ETHUSDT"}, 4),
        ({"symbol": "ETH/USDT"}, 4),
        ({"horizon": "7d"}, 0),
        ({"horizon": "24h"}, 10),
        ({"scanner": "rsi", "direction": "LONG", "symbol": "BTC"}, 1),
    ],
)
def test_stats_filter(api, signals, params, n):
    stats = data(api.get(url("stats"), params))
    assert stats["n"] == n


def test_the_filters_are_echoed(api, signals):
    stats = data(api.get(url("stats"), {"symbol": "btc", "days": "12", "horizon": "4h"}))
    assert stats["filters"] == {
        "days": 12,
        "since": None,
        "until": None,
        "horizon": "4h",
        "scanner": None,
        "tier": None,
        "direction": None,
        "symbol": "BTC/USDT",
        "watchlist": None,
    }


def test_a_watchlist_of_yours_filters_to_its_coins(api, user, signals):
    watchlist = WatchlistFactory(owner=user)
    watchlist.coins.create(symbol="SOL/USDT")
    assert data(api.get(url("stats"), {"watchlist": watchlist.pk}))["n"] == 3
    by_symbol = data(api.get(url("by-symbol"), {"watchlist": watchlist.pk}))
    assert [row["group"] for row in by_symbol["groups"]] == ["SOL/USDT"]


def test_a_watchlist_of_yours_may_be_named_instead_of_numbered(api, user, signals):
    watchlist = WatchlistFactory(owner=user, name="alts")
    watchlist.coins.create(symbol="SOL/USDT")
    assert data(api.get(url("stats"), {"watchlist": "alts"}))["n"] == 3
    assert data(api.get(url("stats"), {"watchlist": "alts"}))["filters"]["watchlist"] == (
        watchlist.pk
    )


def test_filters_apply_to_the_breakdowns(api, signals):
    by_scanner = data(api.get(url("by-scanner"), {"direction": "SHORT"}))
    assert {row["group"]: row["n"] for row in by_scanner["groups"]} == {
        "rsi": 1,
        "smart_money": 1,
        "unified": 1,
    }
    by_interval = data(api.get(url("by-interval"), {"scanner": "rsi"}))
    assert by_interval["horizon"] is None
    assert [row["n"] for row in by_interval["groups"]] == [0, 0, 3, 0, 0]


def test_top_performers_take_a_limit(api, signals):
    top = data(api.get(url("top-performers"), {"limit": "1", "days": "30"}))
    assert [row["adjusted_return_pct"] for row in top["best_signals"]] == [20.0]
    assert [row["adjusted_return_pct"] for row in top["worst_signals"]] == [-5.0]
    assert [row["symbol"] for row in top["best_symbols"]] == ["ETH/USDT"]


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("stats", {"days": "0"}, "days"),
        ("stats", {"days": "-3"}, "days"),
        ("stats", {"days": "week"}, "days"),
        ("stats", {"days": "1.5"}, "days"),
        ("stats", {"days": "99999"}, "days"),
        ("stats", {"horizon": "2h"}, "horizon"),
        ("stats", {"tier": "TIER_0"}, "tier"),
        ("stats", {"scanner": "horoscope"}, "scanner"),
        ("stats", {"direction": "UP"}, "direction"),
        ("stats", {"symbol": "NOPE"}, "symbol"),
        ("stats", {"watchlist": "abc"}, "watchlist"),
        ("report", {"days": "0"}, "days"),
        ("by-scanner", {"tier": "TIER_9"}, "tier"),
        ("by-interval", {"symbol": "NOPE"}, "symbol"),
        ("top-performers", {"limit": "0"}, "limit"),
        ("top-performers", {"limit": "101"}, "limit"),
        ("recommendations", {"days": "x"}, "days"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(api, signals, name, params, field):
    field_error(api.get(url(name), params), field)


def test_an_unknown_symbol_says_which(api, signals):
    assert field_error(api.get(url("stats"), {"symbol": "doge"}), "symbol") == [
        "no binance spot market DOGE/USDT"
    ]


def test_another_users_watchlist_is_refused_like_a_missing_one(api, signals):
    theirs = WatchlistFactory(owner=UserFactory(username="bob"))
    theirs.coins.create(symbol="BTC/USDT")
    refused = field_error(api.get(url("stats"), {"watchlist": theirs.pk}), "watchlist")
    missing = field_error(api.get(url("stats"), {"watchlist": 999_999}), "watchlist")
    assert refused == [f"no watchlist of yours has the id or name '{theirs.pk}'"]
    assert missing == ["no watchlist of yours has the id or name '999999'"]


# --- the tracker --------------------------------------------------------------------------------


@pytest.fixture
def staff_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_the_tracker_can_be_stopped_and_started_by_staff(staff_api, clock):
    api = staff_api
    stopped = data(api.post(url("tracker/stop")))
    assert stopped["enabled"] is False
    assert TrackerState.objects.get().enabled is False
    assert data(api.get(url("tracker-stats")))["enabled"] is False
    started = data(api.post(url("tracker/start")))
    assert started["enabled"] is True
    assert TrackerState.objects.get().enabled is True


def test_tracker_stats_count_the_checks(api, signals):
    stats = data(api.get(url("tracker-stats")))
    assert stats["done"] == 10
    assert stats["pending"] == 0
    assert stats["now"] == "2024-02-10T00:00:00Z"
    assert as_json(TrackerStatsSerializer(stats).data) == stats


# --- tracking a signal --------------------------------------------------------------------------


@pytest.fixture
def btc(clock):
    """BTC/USDT at 100 (each hour's low 99, high 101) in the two hours up to the market time."""
    market = MarketFactory(symbol="BTC/USDT", base="BTC")
    hourly_candles(market, [100.0, 100.0], start=NOW - timedelta(hours=2))
    return market


def test_tracking_a_signal_records_it_with_its_outcome_checks(api, btc):
    response = api.post(
        url("track-signal"),
        {"symbol": "btc", "direction": "LONG", "price": 100.5, "score": 88, "tier": "TIER_1"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()["data"]
    signal = Signal.objects.get()
    assert response["Location"].endswith(f"/api/signals/{signal.pk}/")
    assert body | {"id": None} == {
        "id": None,
        "scanner": "manual",
        "symbol": "BTC/USDT",
        "direction": "LONG",
        "as_of": "2024-02-10T00:00:00Z",  # the market time
        "entry_price": 100.5,
        "scanner_score": 88.0,
        "scores": {},
        "unified_score": None,
        "tier": "TIER_1",
        "confidence": None,
        "completeness": 1.0,
        "reasons": ["tracked through the API by alice"],
        "scan_run": None,
    }
    horizons = sorted(OutcomeCheck.objects.filter(signal=signal).values_list("horizon", flat=True))
    assert horizons == sorted(["1h", "4h", "24h", "7d", "30d"])


def test_a_tracked_signal_needs_only_symbol_and_direction_and_enters_at_the_market_price(api, btc):
    response = api.post(url("track-signal"), {"symbol": "BTC/USDT", "direction": "SHORT"})
    assert response.status_code == 201, response.json()
    body = response.json()["data"]
    assert (body["scanner"], body["tier"], body["scanner_score"]) == ("manual", None, None)
    assert body["entry_price"] == 100.0  # the close of the last 1h candle


def test_a_tracked_signal_cannot_be_filed_under_a_scanner(api, btc):
    response = api.post(
        url("track-signal"),
        {"symbol": "BTC", "direction": "LONG", "price": 100, "scanner": "rsi"},
        format="json",
    )
    assert "never under a scanner" in field_error(response, "scanner")[0]
    assert not Signal.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"direction": "LONG", "price": 1}, "symbol"),
        ({"symbol": "NOPE", "direction": "LONG", "price": 1}, "symbol"),
        ({"symbol": "BTC", "price": 1}, "direction"),
        ({"symbol": "BTC", "direction": "BUY", "price": 1}, "direction"),
        ({"symbol": "BTC", "direction": "LONG", "price": 0}, "price"),
        ({"symbol": "BTC", "direction": "LONG", "price": -5}, "price"),
        ({"symbol": "BTC", "direction": "LONG", "price": "cheap"}, "price"),
        ({"symbol": "BTC", "direction": "LONG", "price": 1, "score": 101}, "score"),
        ({"symbol": "BTC", "direction": "LONG", "price": 1, "score": -1}, "score"),
        ({"symbol": "BTC", "direction": "LONG", "price": 1, "tier": "TIER_0"}, "tier"),
        ({"symbol": "BTC", "direction": "LONG", "price": 1, "scanner": "tarot"}, "scanner"),
    ],
)
def test_a_bad_tracked_signal_is_a_400_naming_the_field(api, btc, body, field):
    field_error(api.post(url("track-signal"), body, format="json"), field)
    assert not Signal.objects.exists()


def test_a_tracked_signal_within_the_cooldown_is_a_409(api, btc):
    body = {"symbol": "BTC", "direction": "LONG", "price": 100}
    assert api.post(url("track-signal"), body, format="json").status_code == 201, "first"
    again = api.post(url("track-signal"), body, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert "within 24 h" in again.json()["error"]["message"]
    # The other direction is another signal.
    other = api.post(url("track-signal"), body | {"direction": "SHORT"}, format="json")
    assert other.status_code == 201
    assert Signal.objects.count() == 2


# --- the window: since and until ----------------------------------------------------------------

SINCE, UNTIL = NOW - 3 * DAY + 2 * timedelta(hours=1), NOW - 3 * DAY + 5 * timedelta(hours=1)
WINDOW = {"since": "2024-02-07T02:00:00Z", "until": "2024-02-07T05:00"}


@pytest.mark.parametrize(
    ("name", "params", "service", "days", "serializer"),
    SERVICE_VIEWS,
    ids=[row[0] for row in SERVICE_VIEWS],
)
def test_each_endpoint_takes_since_and_until(api, signals, name, params, service, days, serializer):
    got = data(api.get(url(name), params | WINDOW))
    filters = PerformanceFilters(days=None, since=SINCE, until=UNTIL, now=NOW)
    assert got == as_json(service(filters))
    assert as_json(serializer(got).data) == got


def test_since_and_until_both_include_a_signal_at_exactly_their_time(api, signals):
    # The fixture's signals 2 to 5 lie at NOW − 3 days + 2 h … + 5 h: exactly at since and until.
    stats = data(api.get(url("stats"), WINDOW))
    assert (stats["n"], stats["period_days"]) == (4, None)
    assert (stats["since"], stats["until"], stats["as_of"]) == (
        "2024-02-07T02:00:00Z",
        "2024-02-07T05:00:00Z",
        "2024-02-07T05:00:00Z",
    )
    inside = {"since": "2024-02-07T02:00:00.000001", "until": "2024-02-07T04:59:59.999999"}
    assert data(api.get(url("stats"), inside))["n"] == 2


def test_since_alone_reaches_to_now_and_until_alone_has_no_start(api, signals):
    assert data(api.get(url("stats"), {"since": "2024-02-07T03:00"}))["n"] == 7
    assert data(api.get(url("stats"), {"until": "2024-02-07T03:00"}))["n"] == 4


def test_a_date_means_its_midnight_utc(api, signals):
    # The 20-day-old signal is at 2024-01-21T00:00: until=2024-01-21 takes it, until=2024-01-20 not.
    assert data(api.get(url("stats"), {"until": "2024-01-21"}))["n"] == 1
    assert data(api.get(url("stats"), {"until": "2024-01-20"}))["n"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"days": "7", "since": "2024-02-01"}, "days"),
        ({"days": "7", "until": "2024-02-01"}, "days"),
        ({"since": "2024-02-02", "until": "2024-02-01"}, "since"),
        ({"since": "last week"}, "since"),
        ({"until": "2024-02-31"}, "until"),
    ],
)
@pytest.mark.parametrize("name", ["stats", "report", "by-interval", "top-performers"])
def test_a_bad_window_is_a_400_naming_the_parameter(api, signals, name, params, field):
    messages = field_error(api.get(url(name), params), field)
    if field == "days":
        assert messages == [
            "days cannot be combined with since or until: give either days, or since and/or "
            "until (not days with since or until)"
        ]


def test_the_schema_documents_since_and_until_wherever_days_is(tmp_path):
    path = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(path))
    schema = yaml.safe_load(path.read_text())
    taking_days = 0
    for path_name, operations in schema["paths"].items():
        for operation in operations.values():
            parameters = {p["name"]: p for p in operation.get("parameters", [])}
            if "days" not in parameters:
                continue
            taking_days += 1
            for name in ("since", "until"):
                assert "ISO 8601" in parameters[name]["description"], (path_name, name)
            assert "since" in parameters["days"]["description"]
    assert taking_days == 9
