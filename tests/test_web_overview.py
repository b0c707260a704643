"""The overview page in a real browser, and who may open it: the unified ranking (filters, and a
refresh when a scan finishes), the latest signals, the market time and the health."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from market.models import ReplayClock
from scanners.models import RunStatus, WatchlistCoin
from tests.factories import (
    START,
    CheckedOutcomeFactory,
    ScanResultFactory,
    ScanRunFactory,
    SignalFactory,
    UnifiedRankingFactory,
    UserFactory,
    WatchlistFactory,
)
from tracking import services
from web.views.overview import POLL_SECONDS

pytestmark = pytest.mark.django_db(transaction=True)

AS_OF = START + timedelta(days=10)


@pytest.fixture
def ranked() -> None:
    """Three coins ranked by one finished scan: A TIER_1 LONG, B TIER_2 SHORT, C TIER_3 LONG."""
    run = ScanRunFactory(scanner="all", as_of=AS_OF, finished_at=timezone.now())
    for symbol, tier, direction, score in (
        ("A/USDT", "TIER_1", "LONG", 90.0),
        ("B/USDT", "TIER_2", "SHORT", 75.0),
        ("C/USDT", "TIER_3", "LONG", 60.0),
    ):
        UnifiedRankingFactory(
            scan_run=run,
            symbol=symbol,
            tier=tier,
            direction=direction,
            unified_score=score,
            confirmations=2,
            confirmed_by=["rsi", "smart_money"],
            completeness=0.85,
        )


def symbols_in(page: str) -> list[str]:
    """The coins of the ranking table, in the order shown."""
    table = page.split('data-testid="ranking-table"')[1].split("</table>")[0]
    return [part.split('"')[0] for part in table.split('data-symbol="')[1:]]


def test_anonymous_visitor_of_the_overview_is_sent_to_sign_in(client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")


def test_anonymous_poll_of_the_ranking_is_sent_to_sign_in(client) -> None:
    response = client.get("/partials/ranking")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/partials/ranking")


def test_user_signs_in_on_the_sign_in_page_and_lands_on_the_overview(signed_in_page) -> None:
    bob = UserFactory(username="bob")
    bob.set_password("a-long-password-1")
    bob.save()
    page = signed_in_page(None)
    page.goto("/login/")
    page.fill("#id_username", "bob")
    page.fill("#id_password", "a-long-password-1")
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    assert page.locator("h1").inner_text() == "Overview"


def test_overview_shows_the_health_status_to_a_signed_in_user(signed_in_page) -> None:
    page = signed_in_page(UserFactory())
    page.goto("/")
    assert page.get_by_test_id("health-status").inner_text() in {"ok", "waiting", "error"}
    assert page.get_by_role("navigation", name="Main").get_by_role("link").count() >= 1


# --- the ranking ------------------------------------------------------------------------------


@pytest.mark.usefixtures("ranked")
def test_overview_ranks_the_coins_best_first_with_tier_direction_and_confirmations(
    client,
) -> None:
    client.force_login(UserFactory())
    page = client.get("/").content.decode()
    assert symbols_in(page) == ["A/USDT", "B/USDT", "C/USDT"]
    first = page.split('data-symbol="A/USDT"')[1].split("</tr>")[0]
    assert 'class="badge tier-1">TIER_1<' in first
    assert ">LONG<" in first
    assert ">90.0<" in first
    assert "(rsi, smart_money)" in first
    assert "85 %" in first  # completeness


@pytest.mark.usefixtures("ranked")
def test_filtering_the_ranking_by_tier_in_the_browser_leaves_that_tier(signed_in_page) -> None:
    page = signed_in_page(UserFactory())
    page.goto("/")
    page.get_by_label("Tier").select_option("TIER_2")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/?tier=TIER_2*")
    rows = page.locator("[data-testid=ranking-table] tbody tr")
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.symbol)") == ["B/USDT"]


@pytest.mark.usefixtures("ranked")
def test_filtering_the_ranking_by_direction_leaves_that_direction(client) -> None:
    client.force_login(UserFactory())
    page = client.get("/", {"direction": "LONG"}).content.decode()
    assert symbols_in(page) == ["A/USDT", "C/USDT"]


@pytest.mark.usefixtures("ranked")
def test_filtering_the_ranking_by_ones_own_watchlist_leaves_its_coins(client) -> None:
    alice = UserFactory()
    watchlist = WatchlistFactory(owner=alice, name="mine")
    WatchlistCoin.objects.create(watchlist=watchlist, symbol="C/USDT")
    client.force_login(alice)
    page = client.get("/", {"watchlist": watchlist.pk}).content.decode()
    assert symbols_in(page) == ["C/USDT"]
    assert "of the watchlist “mine”" in page


@pytest.mark.usefixtures("ranked")
def test_another_users_watchlist_cannot_be_used_as_a_ranking_filter(client) -> None:
    theirs = WatchlistFactory(owner=UserFactory(username="bob"), name="bob's")
    WatchlistCoin.objects.create(watchlist=theirs, symbol="A/USDT")
    client.force_login(UserFactory(username="alice"))
    response = client.get("/", {"watchlist": theirs.pk})
    assert response.status_code == 400
    page = response.content.decode()
    assert "watchlist: Select a valid choice." in page
    assert 'data-testid="ranking-table"' not in page
    assert "bob&#x27;s" not in page  # not even offered as a choice
    assert client.get("/partials/ranking", {"watchlist": theirs.pk}).status_code == 400


def test_an_unknown_tier_is_refused_with_a_clear_message(client) -> None:
    client.force_login(UserFactory())
    response = client.get("/", {"tier": "TIER_9"})
    assert response.status_code == 400
    assert "tier: Select a valid choice. TIER_9 is not one of the available choices." in (
        response.content.decode()
    )


@pytest.mark.usefixtures("ranked")
def test_ranking_poll_answers_no_content_while_the_shown_scan_is_still_the_newest(client) -> None:
    client.force_login(UserFactory())
    page = client.get("/").content.decode()
    shown = page.split('data-shown-scan="')[1].split('"')[0]
    response = client.get("/partials/ranking", {"shown": shown})
    assert response.status_code == 204


@pytest.mark.usefixtures("ranked")
def test_ranking_poll_answers_the_new_table_once_a_newer_scan_has_finished(client) -> None:
    client.force_login(UserFactory())
    page = client.get("/").content.decode()
    shown = page.split('data-shown-scan="')[1].split('"')[0]
    finish_a_scan_ranking("D/USDT")
    response = client.get("/partials/ranking", {"shown": shown})
    assert response.status_code == 200
    assert "D/USDT" in symbols_in(response.content.decode())


def finish_a_scan_ranking(symbol: str) -> None:
    """An RSI scan of `symbol` finished through the pipeline's final step (scan_finish)."""
    run = ScanRunFactory(
        scanner="rsi", as_of=AS_OF + timedelta(hours=1), symbols=[symbol], status=RunStatus.RUNNING
    )
    ScanResultFactory(run=run, scanner="rsi", symbol=symbol, component={"LONG": 95.0, "SHORT": 5.0})
    services.scan_finish(run.pk)


@pytest.mark.usefixtures("ranked")
def test_ranking_updates_without_a_reload_when_a_scan_finishes(signed_in_page) -> None:
    page = signed_in_page(UserFactory())
    page.clock.install()
    page.goto("/")
    page.locator('tr[data-symbol="A/USDT"]').wait_for()
    page.evaluate("window.notReloaded = true")
    finish_a_scan_ranking("NEW/USDT")
    page.clock.fast_forward(POLL_SECONDS * 1000)
    page.locator('tr[data-symbol="NEW/USDT"]').wait_for()
    assert page.evaluate("window.notReloaded") is True


# --- the latest signals, the market time -------------------------------------------------------


def test_latest_signals_link_to_their_pages_and_leave_out_other_users_manual_ones(client) -> None:
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    shared = SignalFactory(symbol="S/USDT")
    own = SignalFactory(scanner="manual", owner=alice, symbol="OWN/USDT")
    SignalFactory(scanner="manual", owner=bob, symbol="BOBS/USDT")
    client.force_login(alice)
    page = client.get("/").content.decode()
    latest = page.split('data-testid="latest-signals"')[1].split("</table>")[0]
    assert f'href="/signals/{shared.pk}/"' in latest
    assert f'href="/signals/{own.pk}/"' in latest
    assert "BOBS/USDT" not in latest


def test_overview_shows_the_replay_clock_and_how_far_it_has_come(client, settings) -> None:
    settings.MARKET_SOURCE = "replay"
    ReplayClock.objects.create(
        pk=1,
        market_time=START + timedelta(days=3),
        start=START,
        end=START + timedelta(days=4),
        step=timedelta(minutes=5),
    )
    client.force_login(UserFactory())
    page = client.get("/").content.decode()
    status = page.split('data-testid="market-status"')[1].split("</section>")[0]
    assert "2024-01-04 00:00 UTC" in status
    assert "Replay progress: 75.0 %" in status


def test_overview_says_live_when_the_market_data_is_live(client, settings) -> None:
    settings.MARKET_SOURCE = "binance"
    client.force_login(UserFactory())
    page = client.get("/").content.decode()
    status = page.split('data-testid="market-status"')[1].split("</section>")[0]
    assert "Live (binance): market time is the wall clock" in status


@pytest.mark.usefixtures("ranked")
def test_overview_fits_a_phone_screen_without_sideways_scrolling(signed_in_page) -> None:
    page = signed_in_page(UserFactory(), width=390, height=844)
    page.goto("/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.fixture
def rsi_outcomes(settings) -> None:
    """On a replay clock at day 40: rsi, 4 BTC longs in the last 30 days (3 wins, 1 loss);
    smart_money, 1 ETH short (too few to judge at a minimum sample of 3)."""
    settings.MARKET_SOURCE = "replay"
    settings.ANALYTICS_MIN_SAMPLE = 3
    now = START + timedelta(days=40)
    ReplayClock.objects.create(
        pk=1, market_time=now, start=START, end=now + timedelta(days=1), step=timedelta(hours=1)
    )
    for scanner, symbol, direction, return_pct, days_ago in (
        ("rsi", "BTC/USDT", "LONG", 6.0, 9),
        ("rsi", "BTC/USDT", "LONG", 6.0, 8),
        ("rsi", "BTC/USDT", "LONG", 6.0, 7),
        ("rsi", "BTC/USDT", "LONG", -4.0, 6),
        ("smart_money", "ETH/USDT", "SHORT", -6.0, 5),
    ):
        signal = SignalFactory(
            scanner=scanner,
            symbol=symbol,
            direction=direction,
            as_of=now - timedelta(days=days_ago),
        )
        CheckedOutcomeFactory(signal=signal, return_pct=return_pct)


@pytest.mark.usefixtures("rsi_outcomes")
def test_overview_tables_the_scanners_win_rate_as_the_performance_api_gives_it(client) -> None:
    user = UserFactory()
    client.force_login(user)
    table = client.get("/").context["by_scanner_table"]
    report = client.get("/api/performance/by-scanner").json()["data"]
    assert [row[0] for row in table.rows] == [group["group"] for group in report["groups"]]
    rsi = next(row for row in table.rows if row[0] == "rsi")
    assert rsi[1:4] == ("4", "3", "1")  # n, wins, losses
    rsi_reported = next(group for group in report["groups"] if group["group"] == "rsi")
    assert rsi[5] == f"{rsi_reported['win_rate']:.2f}"


@pytest.mark.usefixtures("rsi_outcomes")
def test_overview_draws_the_scanners_win_rate_with_error_bars(signed_in_page) -> None:
    page = signed_in_page(UserFactory())
    page.goto("/")
    page.wait_for_function("() => Chart.getChart(document.querySelector('#chart-scanner canvas'))")
    found = page.evaluate(
        """() => {
          const chart = Chart.getChart(document.querySelector('#chart-scanner canvas'));
          return {type: chart.config.type, labels: chart.data.labels.map(String),
                  data: chart.data.datasets[0].data};
        }"""
    )
    assert found["type"] == "barWithErrorBars"
    by_label = dict(zip(found["labels"], found["data"], strict=True))
    assert by_label["rsi"]["yMin"] < by_label["rsi"]["y"] == 75.0 < by_label["rsi"]["yMax"]
    assert by_label["smart_money,too few to judge (n = 1)"]["y"] is None
