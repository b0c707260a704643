"""python manage.py performance_report: the API's report, as text or (--json) as the same data."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from market.models import ReplayClock
from tests.factories import START, CheckedOutcomeFactory, SignalFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = START + timedelta(days=40)
DAY = timedelta(days=1)


@pytest.fixture
def signals(settings):
    """35 rsi signals of the last 5 days (30 at +6 %, 5 at −4 %), 10 mss ones 20 days old."""
    settings.MARKET_SOURCE = "replay"
    ReplayClock.objects.create(
        pk=1, market_time=NOW, start=START, end=NOW + DAY, step=timedelta(hours=1)
    )
    for i in range(35):
        signal = SignalFactory(
            scanner="rsi",
            symbol="BTC/USDT",
            tier="TIER_1",
            as_of=NOW - 5 * DAY + i * timedelta(hours=1),
        )
        CheckedOutcomeFactory(signal=signal, return_pct=6.0 if i < 30 else -4.0)
        CheckedOutcomeFactory(signal=signal, horizon="1h", return_pct=0.5)
    for i in range(10):
        signal = SignalFactory(
            scanner="mss", symbol="ETH/USDT", as_of=NOW - 20 * DAY + i * timedelta(hours=1)
        )
        CheckedOutcomeFactory(signal=signal, return_pct=-4.0)


def run(*args: str) -> str:
    out = StringIO()
    call_command("performance_report", *args, stdout=out)
    return out.getvalue()


def api_data(path: str, params: dict | None = None) -> dict:
    client = APIClient()
    client.force_authenticate(UserFactory(username="alice"))
    response = client.get(path, params or {})
    assert response.status_code == 200, response.json()
    return response.json()["data"]


def test_json_equals_the_apis_report(signals):
    assert json.loads(run("--json")) == api_data("/api/performance/report")


def test_json_with_days_equals_the_apis_report_and_stats(signals):
    report = json.loads(run("--json", "--days", "30"))
    assert report == api_data("/api/performance/report", {"days": "30"})
    assert report["summary"] == api_data("/api/performance/stats", {"days": "30"})
    assert report["summary"]["n"] == 45


def test_json_with_a_horizon(signals):
    report = json.loads(run("--json", "--horizon", "1h"))
    assert report == api_data("/api/performance/report", {"horizon": "1h"})
    assert report["summary"]["horizon"] == "1h"
    assert report["summary"]["n"] == 35


def test_the_text_report_shows_rates_with_intervals_and_advice(signals):
    text = run()
    assert "Performance of the last 7 days to 2024-02-10 00:00 UTC" in text
    assert "outcomes checked 35" in text
    # 30 of 35 wins: 85.71 %, Wilson 70.6–93.7.
    assert "win rate          85.71 % [70.6–93.7]" in text
    assert "By scanner" in text
    assert "By interval" in text
    assert "[HIGH] Excellent: the win rate is 85.7 %" in text
    assert "[MEDIUM] TIER_1 signals win at least 75 %" not in text  # 70.6 < 75: not supported
    assert "withheld (tier_1)" in text


def test_the_text_report_of_an_empty_database(settings):
    settings.MARKET_SOURCE = "replay"
    text = run("--days", "3")
    assert "Performance of the last 3 days" in text
    assert "outcomes checked 0" in text
    assert "too few to judge" in text
    assert "(none)" in text


@pytest.mark.parametrize("days", ["0", "-1", "week"])
def test_days_must_be_a_positive_whole_number(days):
    with pytest.raises(CommandError, match="--days"):
        run("--days", days)


# --- the window: --since and --until ------------------------------------------------------------


def test_json_with_since_and_until_equals_the_apis_report(signals):
    window = {"since": "2024-01-21", "until": "2024-02-05T06:00"}
    report = json.loads(run("--json", "--since", window["since"], "--until", window["until"]))
    assert report == api_data("/api/performance/report", window)
    # The ten mss signals of 2024-01-21 00:00 … 09:00 and the rsi ones up to 06:00, both ends in.
    assert report["summary"]["n"] == 10 + 7


def test_the_text_report_names_its_since_and_until(signals):
    text = run("--since", "2024-02-05T00:00", "--until", "2024-02-06")
    assert "Performance of 2024-02-05T00:00:00Z to 2024-02-06T00:00:00Z, both included" in text
    assert "outcomes checked 25" in text  # 00:00 … 23:00 and the one at midnight


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--days", "7", "--since", "2024-02-01"], "--days"),
        (["--days", "7", "--until", "2024-02-01"], "--days"),
        (["--since", "2024-02-02", "--until", "2024-02-01"], "--since"),
        (["--since", "soon"], "--since"),
        (["--until", "2024-02-30"], "--until"),
    ],
)
def test_a_bad_window_is_refused_naming_the_option(args, named):
    with pytest.raises(CommandError, match=f"^{named}: "):
        run(*args)
