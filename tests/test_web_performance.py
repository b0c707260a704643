"""The performance page (/performance/) and its CSV downloads: who may open them, the numbers the
API's services give (window, watchlist), "too few to judge" shown as such, every table equal to its
CSV, and the charts drawn in a real browser with their error bars."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from market.models import ReplayClock
from tests.factories import (
    START,
    CheckedOutcomeFactory,
    MarketFactory,
    SignalFactory,
    UserFactory,
    WatchlistFactory,
)
from tracking import analytics
from tracking.performance_filters import PerformanceFilters

pytestmark = pytest.mark.django_db(transaction=True)

NOW = START + timedelta(days=40)  # 2024-02-10: the last 30 days span January and February
DAY = timedelta(days=1)
URL = "/performance/"


@pytest.fixture
def clock(settings):
    settings.MARKET_SOURCE = "replay"
    settings.ANALYTICS_MIN_SAMPLE = 3
    return ReplayClock.objects.create(
        pk=1, market_time=NOW, start=START, end=NOW + 10 * DAY, step=timedelta(hours=1)
    )


@pytest.fixture
def outcomes(clock):
    """rsi: 6 BTC longs (4 wins, 2 losses), 3 in January and 3 in February; smart_money: 4 ETH
    shorts (1 win, 3 losses) in February; mss: 1 BTC long (too few to judge)."""
    for symbol in ("BTC/USDT", "ETH/USDT"):
        MarketFactory(symbol=symbol, base=symbol.split("/")[0])
    rows = [
        ("rsi", "BTC/USDT", "LONG", "TIER_1", 6.0, 25),
        ("rsi", "BTC/USDT", "LONG", "TIER_1", 6.0, 24),
        ("rsi", "BTC/USDT", "LONG", "TIER_1", -4.0, 23),
        ("rsi", "BTC/USDT", "LONG", "TIER_2", 6.0, 5),
        ("rsi", "BTC/USDT", "LONG", "TIER_2", 6.0, 4),
        ("rsi", "BTC/USDT", "LONG", "TIER_2", -4.0, 3),
        ("smart_money", "ETH/USDT", "SHORT", "TIER_2", -6.0, 6),
        ("smart_money", "ETH/USDT", "SHORT", "TIER_2", 4.0, 5),
        ("smart_money", "ETH/USDT", "SHORT", "TIER_2", 4.0, 4),
        ("smart_money", "ETH/USDT", "SHORT", "TIER_2", 4.0, 3),
        ("mss", "BTC/USDT", "LONG", "TIER_1", 7.0, 2),
    ]
    for scanner, symbol, direction, tier, return_pct, days_ago in rows:
        signal = SignalFactory(
            scanner=scanner,
            symbol=symbol,
            direction=direction,
            tier=tier,
            as_of=NOW - days_ago * DAY,
        )
        adjusted = return_pct if direction == "LONG" else -return_pct
        btc_adjusted = 1.0 if direction == "LONG" else -1.0  # BTC rose 1 % over each
        CheckedOutcomeFactory(
            signal=signal,
            return_pct=return_pct,
            btc_return_pct=1.0,
            excess_return_pct=adjusted - btc_adjusted,
        )


class TableParser(HTMLParser):
    """The text cells of the table marked data-testid=<testid>, header row first."""

    def __init__(self, testid: str) -> None:
        super().__init__()
        self.testid, self.depth, self.rows, self.cell = testid, 0, [], None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table" and ("data-testid", self.testid) in attrs:
            self.depth = 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag in ("td", "th"):
            self.rows[-1].append(self.cell.strip())
            self.cell = None
        elif tag == "table":
            self.depth = 0

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell += data


def page_table(html: str, name: str) -> list[list[str]]:
    parser = TableParser(f"table-{name}")
    parser.feed(html)
    return parser.rows


def chart(response, dimension: str) -> dict:
    return response.context["charts"][dimension]


# --- who may open it ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [URL, "/performance/csv/scanner/"])
def test_anonymous_visitor_of_the_performance_page_is_sent_to_sign_in(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/login/?next={path}")


@pytest.mark.parametrize("staff", [False, True])
def test_signed_in_user_and_staff_see_the_performance_page(client, outcomes, staff) -> None:
    client.force_login(UserFactory(is_staff=staff))
    response = client.get(URL)
    assert response.status_code == 200
    assert response.context["summary"]["outcomes_checked"] == 11


def test_another_users_watchlist_is_refused_and_its_numbers_never_shown(client, outcomes) -> None:
    theirs = WatchlistFactory(owner=UserFactory(), name="theirs")
    theirs.coins.create(symbol="ETH/USDT")
    client.force_login(UserFactory())
    response = client.get(URL, {"watchlist": theirs.pk})
    assert response.status_code == 400
    assert "watchlist: no watchlist of yours" in response.content.decode()
    assert "summary" not in response.context
    assert "theirs" not in response.content.decode()


def test_another_users_watchlist_is_refused_for_the_csv_too(client, outcomes) -> None:
    theirs = WatchlistFactory(owner=UserFactory())
    client.force_login(UserFactory())
    response = client.get("/performance/csv/scanner/", {"watchlist": theirs.pk})
    assert response.status_code == 400
    assert response.content.decode().startswith("watchlist: no watchlist of yours")


# --- the numbers --------------------------------------------------------------------------------


def test_page_shows_the_numbers_of_the_apis_report(client, outcomes) -> None:
    user = UserFactory()
    client.force_login(user)
    response = client.get(URL)
    filters = PerformanceFilters(days=30, owner_id=user.pk)
    report = analytics.performance_report(filters)
    assert response.context["report"]["by_scanner"] == report["by_scanner"]
    assert response.context["summary"]["win_rate"] == report["summary"]["win_rate"]


def test_a_window_changes_the_numbers(client, outcomes) -> None:
    client.force_login(UserFactory())
    everything = client.get(URL).context["summary"]
    february = client.get(URL, {"since": "2024-02-01", "until": "2024-02-10T00:00"})
    assert february.status_code == 200
    assert everything["outcomes_checked"] == 11
    assert february.context["summary"]["outcomes_checked"] == 8


def test_a_watchlist_of_ones_own_changes_the_numbers(client, outcomes) -> None:
    user = UserFactory()
    mine = WatchlistFactory(owner=user, name="eth only")
    mine.coins.create(symbol="ETH/USDT")
    client.force_login(user)
    response = client.get(URL, {"watchlist": mine.pk})
    assert response.status_code == 200
    assert response.context["summary"]["outcomes_checked"] == 4
    assert [row["group"] for row in response.context["report"]["by_scanner"]] == ["smart_money"]


def test_a_group_with_too_few_outcomes_is_shown_as_too_few_to_judge_not_as_a_bar(
    client, outcomes
) -> None:
    client.force_login(UserFactory())
    response = client.get(URL)
    mss = next(p for p in chart(response, "scanner")["points"] if p["label"] == "mss")
    assert mss == {
        "label": "mss",
        "n": 1,
        "too_few": True,
        "value": None,
        "low": None,
        "high": None,
    }
    row = next(r for r in page_table(response.content.decode(), "scanner") if r[0] == "mss")
    assert row[-1] == "too few to judge"


def test_a_judged_group_carries_its_wilson_interval(client, outcomes) -> None:
    client.force_login(UserFactory())
    response = client.get(URL)
    rsi = next(p for p in chart(response, "scanner")["points"] if p["label"] == "rsi")
    assert rsi["too_few"] is False
    assert rsi["low"] < rsi["value"] < rsi["high"]
    assert rsi["value"] == pytest.approx(100 * 4 / 6, abs=1e-3)


def test_month_by_month_numbers_add_up_to_the_windows(client, outcomes) -> None:
    client.force_login(UserFactory())
    response = client.get(URL)
    months = response.context["months"]
    assert [month["month"] for month in months] == ["2024-01", "2024-02"]
    assert [month["n"] for month in months] == [3, 8]
    assert sum(month["n"] for month in months) == response.context["summary"]["n"]


def test_a_month_is_what_the_api_reports_for_that_month(client, outcomes) -> None:
    user = UserFactory()
    client.force_login(user)
    january = client.get(URL).context["months"][0]
    response = client.get(
        "/api/performance/stats",
        {"since": "2024-01-11T00:00:00.000001", "until": "2024-01-31T23:59:59.999999"},
    )
    api = response.json()["data"]
    assert (january["n"], january["win_rate"]) == (api["n"], api["win_rate"])


def test_a_window_without_a_start_counts_its_months_from_the_first_signal(client, outcomes) -> None:
    client.force_login(UserFactory())
    response = client.get(URL, {"until": "2024-02-10"})
    months = response.context["months"]
    assert [month["month"] for month in months] == ["2024-01", "2024-02"]
    assert sum(month["n"] for month in months) == 11


@pytest.mark.parametrize(
    "name", ["scanner", "tier", "direction", "horizon", "monthly", "excess", "best", "worst"]
)
def test_each_csv_download_equals_the_table_on_the_page(client, outcomes, name) -> None:
    client.force_login(UserFactory())
    page = client.get(URL, {"days": 60}).content.decode()
    response = client.get(f"/performance/csv/{name}/", {"days": 60})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert len(rows) > 1
    assert rows == page_table(page, name)


def test_excess_over_btc_is_shown_month_by_month(client, outcomes) -> None:
    client.force_login(UserFactory())
    response = client.get(URL)
    rows = page_table(response.content.decode(), "excess")
    assert rows[0] == ["month", "excess over BTC %", "excess n"]
    assert [row[2] for row in rows[1:]] == ["3", "8"]


def test_best_and_worst_signals_are_listed(client, outcomes) -> None:
    client.force_login(UserFactory())
    html = client.get(URL).content.decode()
    assert page_table(html, "best")[1][6] == "7.00"  # the mss long's +7 %
    assert page_table(html, "worst")[1][7] == "-4.00"


def test_best_and_worst_signals_link_to_their_signal_pages(client, outcomes) -> None:
    client.force_login(UserFactory())
    html = client.get(URL).content.decode()
    best_id = page_table(html, "best")[1][0]
    assert f'href="/signals/{best_id}/"' in html


def test_bad_filters_are_a_400_naming_the_parameter(client, outcomes) -> None:
    client.force_login(UserFactory())
    response = client.get(URL, {"days": "7", "since": "2024-01-01"})
    assert response.status_code == 400
    assert "days: days cannot be combined with since or until" in response.content.decode()


def test_an_unknown_csv_table_is_a_404(client, outcomes) -> None:
    client.force_login(UserFactory())
    assert client.get("/performance/csv/nonsense/").status_code == 404


# --- in the browser -----------------------------------------------------------------------------

DATASETS = (
    """id => Chart.getChart(document.querySelector('#' + id + ' canvas')).data.datasets.length"""
)
PAINTED = """id => {
  const canvas = document.querySelector('#' + id + ' canvas');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
  return false;
}"""


def test_performance_charts_are_drawn_with_their_datasets(signed_in_page, outcomes) -> None:
    page = signed_in_page(UserFactory())
    page.goto(URL)
    page.wait_for_function("() => Chart.getChart(document.querySelector('#chart-excess canvas'))")
    expected = {
        "chart-scanner": 1,
        "chart-tier": 1,
        "chart-direction": 1,
        "chart-horizon": 1,
        "chart-monthly": 2,
        "chart-excess": 1,
    }
    assert {name: page.evaluate(DATASETS, name) for name in expected} == expected
    assert all(page.evaluate(PAINTED, name) for name in expected)


def test_win_rate_bars_have_error_bars_and_too_few_has_no_bar(signed_in_page, outcomes) -> None:
    page = signed_in_page(UserFactory())
    page.goto(URL)
    page.wait_for_function("() => Chart.getChart(document.querySelector('#chart-scanner canvas'))")
    found = page.evaluate(
        """() => {
          const chart = Chart.getChart(document.querySelector('#chart-scanner canvas'));
          return {type: chart.config.type, labels: chart.data.labels,
                  data: chart.data.datasets[0].data};
        }"""
    )
    assert found["type"] == "barWithErrorBars"
    by_label = {
        str(label): point for label, point in zip(found["labels"], found["data"], strict=True)
    }
    rsi = by_label["rsi"]
    assert rsi["yMin"] < rsi["y"] < rsi["yMax"]
    assert by_label["['mss', 'too few to judge (n = 1)']"]["y"] is None


def test_performance_page_fits_a_phone_screen(signed_in_page, outcomes) -> None:
    page = signed_in_page(UserFactory(), width=390, height=844)
    page.goto(URL)
    page.wait_for_function("() => Chart.getChart(document.querySelector('#chart-excess canvas'))")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_choosing_a_watchlist_in_the_form_changes_the_numbers(signed_in_page, outcomes) -> None:
    user = UserFactory()
    mine = WatchlistFactory(owner=user, name="eth only")
    mine.coins.create(symbol="ETH/USDT")
    page = signed_in_page(user)
    page.goto(URL)
    assert page.get_by_test_id("outcomes-checked").inner_text() == "11"
    page.get_by_label("Watchlist").select_option(label="eth only")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(f"**watchlist={mine.pk}**")
    assert page.get_by_test_id("outcomes-checked").inner_text() == "4"


def test_performance_page_without_any_signal_draws_empty_charts(signed_in_page, clock) -> None:
    page = signed_in_page(UserFactory())
    page.goto(URL)
    page.wait_for_function("() => Chart.getChart(document.querySelector('#chart-excess canvas'))")
    assert page.get_by_test_id("judgement").inner_text() == "too few to judge"
    assert page.evaluate(DATASETS, "chart-horizon") == 1


def test_a_window_given_as_dates_is_kept_in_the_forms_time_inputs(client, outcomes) -> None:
    client.force_login(UserFactory())
    html = client.get(URL, {"since": "2024-02-01", "until": "2024-02-09T12:00+02:00"}).content
    assert 'name="since" type="datetime-local" step="1" value="2024-02-01T00:00"' in html.decode()
    assert 'name="until" type="datetime-local" step="1" value="2024-02-09T10:00"' in html.decode()


@pytest.mark.parametrize(("query", "shown"), [({}, "24h"), ({"horizon": "4h"}, "4h")])
def test_the_forms_horizon_is_24h_unless_another_is_chosen(client, outcomes, query, shown) -> None:
    client.force_login(UserFactory())
    html = client.get(URL, query).content.decode()
    assert re.findall(r'<option value="(\w+)" selected>', html) == [shown]


def test_recommendations_are_shown_with_their_evidence_and_as_csv(client, outcomes) -> None:
    for days_ago in range(1, 11):
        signal = SignalFactory(scanner="social", symbol="BTC/USDT", as_of=NOW - days_ago * DAY)
        CheckedOutcomeFactory(signal=signal, return_pct=-4.0)
    client.force_login(UserFactory())
    response = client.get(URL, {"scanner": "social"})
    rows = page_table(response.content.decode(), "recommendations")
    assert rows[1][:4] == ["URGENT", "overall", rows[1][2], "all signals"]
    assert rows[1][2].startswith("The win rate is below 55 %")
    assert rows[1][4:] == ["0.00", "0.00", "27.75", "10"]
    assert "evidence: all signals, win rate 0.0 % (95 %: 0.0–27.8, n = 10)" in (
        response.content.decode()
    )
    download = client.get("/performance/csv/recommendations/", {"scanner": "social"})
    assert list(csv.reader(io.StringIO(download.content.decode()))) == rows


def test_the_performance_page_shows_a_new_outcome_at_once_though_its_numbers_are_cached(
    client, outcomes
) -> None:
    client.force_login(UserFactory())
    before = client.get(URL).context["summary"]["n"]
    signal = SignalFactory(scanner="rsi", symbol="BTC/USDT", as_of=NOW - 2 * DAY)
    CheckedOutcomeFactory(signal=signal, return_pct=6.0)
    assert client.get(URL).context["summary"]["n"] == before + 1
