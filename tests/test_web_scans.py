"""The scans pages (/scans/, /scans/<id>/): runs with their status, duration, coins and failures,
a run's failed coins and results, filters and pages, in a real browser, and who may open them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from playwright.sync_api import expect

from scanners.models import CoinFailure, ScanRun
from tests.factories import (
    ScanResultFactory,
    ScanRunFactory,
    WatchlistFactory,
)
from tests.web_roles import LOGIN, answered, client_as, role_cases

pytestmark = pytest.mark.django_db(transaction=True)


def finished_in(run: ScanRun, seconds: float) -> ScanRun:
    run.started_at = timezone.now() - timedelta(minutes=5)
    run.finished_at = run.started_at + timedelta(seconds=seconds)
    run.save()
    return run


def failed_coin(run: ScanRun, symbol: str, error: str) -> CoinFailure:
    return CoinFailure.objects.create(run=run, symbol=symbol, error=error)


# --- who may --------------------------------------------------------------------------------------


@pytest.fixture
def world(user) -> dict[str, int]:
    watchlist = WatchlistFactory(owner=user, name="majors")
    return {
        "own_run": ScanRunFactory(watchlist=watchlist, requested_by=user, symbols=["BTC/USDT"]).pk,
        "universe_run": ScanRunFactory(symbols=["BTC/USDT", "ETH/USDT"]).pk,
    }


# fmt: off
MATRIX = [
    #  method  path                     anon   user  owner  staff
    ("GET",  "/scans/",                 LOGIN, 200,  200,   200),
    ("POST", "/scans/",                 LOGIN, 405,  405,   405),
    ("GET",  "/scans/{universe_run}/",  LOGIN, 200,  200,   200),
    ("GET",  "/scans/{own_run}/",       LOGIN, 404,  200,   200),
    ("POST", "/scans/{own_run}/",       LOGIN, 405,  405,   405),
    ("GET",  "/scans/999999/",          LOGIN, 404,  404,   404),
]
# fmt: on


@pytest.mark.parametrize(("method", "path", "role", "expected"), role_cases(MATRIX))
def test_who_may_open_the_scans_pages(world, user, method, path, role, expected) -> None:
    client = client_as(role, user)
    response = getattr(client, method.lower())(path.format(**world))
    assert answered(response, expected), (response.status_code, response.get("Location"))


def test_the_runs_list_leaves_out_another_users_watchlist_run(user) -> None:
    theirs = ScanRunFactory(watchlist=WatchlistFactory(), symbols=["BTC/USDT"])
    shared = ScanRunFactory(symbols=["BTC/USDT"])
    response = client_as("owner", user).get("/scans/")
    assert [run.pk for run, _shown in response.context["rows"]] == [shared.pk]
    assert theirs.pk not in [run.pk for run, _shown in response.context["rows"]]


# --- the list ---------------------------------------------------------------------------------


def test_runs_are_listed_newest_first_with_duration_coins_and_failures(user) -> None:
    older = finished_in(
        ScanRunFactory(symbols=["BTC/USDT", "ETH/USDT"], coins_done=1, coins_failed=1), 42.5
    )
    newer = ScanRunFactory(scanner="mss", status="running", symbols=["SOL/USDT"], coins_done=0)
    response = client_as("owner", user).get("/scans/")
    assert [run.pk for run, _shown in response.context["rows"]] == [newer.pk, older.pk]
    row = response.content.decode().split(f'data-run="{older.pk}"')[1].split("</tr>")[0]
    assert "42.5 s" in row
    assert "1/2" in row
    assert 'class="num down">1<' in row


@pytest.mark.parametrize(
    ("query", "expected"),
    [("scanner=mss", ["mss-finished"]), ("status=failed", ["rsi-failed"]), ("", None)],
)
def test_runs_filter_by_scanner_and_status(user, query, expected) -> None:
    runs = {
        "rsi-failed": ScanRunFactory(scanner="rsi", status="failed"),
        "mss-finished": ScanRunFactory(scanner="mss", status="finished"),
        "rsi-finished": ScanRunFactory(scanner="rsi", status="finished"),
    }
    response = client_as("owner", user).get(f"/scans/?{query}")
    shown = {run.pk for run, _shown in response.context["rows"]}
    wanted = set(expected or runs)
    assert shown == {runs[name].pk for name in wanted}


def test_an_unknown_filter_value_is_a_400_naming_the_parameter(user) -> None:
    response = client_as("owner", user).get("/scans/?status=exploded")
    assert response.status_code == 400
    assert "status: Select a valid choice" in response.content.decode()


def test_a_page_number_that_is_not_a_whole_number_is_a_400(user) -> None:
    response = client_as("owner", user).get("/scans/?page=two")
    assert response.status_code == 400
    assert "page: Enter a whole number." in response.content.decode()


def test_runs_come_25_a_page(user) -> None:
    for _ in range(30):
        ScanRunFactory()
    client = client_as("owner", user)
    assert len(client.get("/scans/").context["rows"]) == 25
    second = client.get("/scans/?page=2")
    assert len(second.context["rows"]) == 5
    assert "page 2 of 2 (30 in all)" in second.content.decode()


def test_the_runs_list_reads_as_many_queries_for_a_full_page_as_for_one_run(user) -> None:
    client = client_as("owner", user)
    watchlist = WatchlistFactory(owner=user)
    ScanRunFactory(watchlist=watchlist, requested_by=user)
    with CaptureQueriesContext(connection) as one:
        client.get("/scans/")
    for _ in range(30):
        ScanRunFactory(watchlist=watchlist, requested_by=user)
    with CaptureQueriesContext(connection) as full:
        client.get("/scans/")
    assert len(full) == len(one)


# --- one run ----------------------------------------------------------------------------------


def test_a_run_shows_each_failed_coin_with_its_error(user) -> None:
    run = ScanRunFactory(symbols=["BTC/USDT", "ETH/USDT", "XYZ/USDT"], coins_failed=2)
    failed_coin(run, "XYZ/USDT", "no candles before 2024-01-11")
    failed_coin(run, "ETH/USDT", "exchange answered 418")
    response = client_as("owner", user).get(f"/scans/{run.pk}/")
    assert response.context["failures"] == [
        {"symbol": "ETH/USDT", "error": "exchange answered 418"},
        {"symbol": "XYZ/USDT", "error": "no candles before 2024-01-11"},
    ]


def test_a_run_counts_its_results_per_scanner(user) -> None:
    run = ScanRunFactory(scanner="all", symbols=["BTC/USDT", "ETH/USDT"])
    ScanResultFactory(run=run, scanner="rsi", symbol="BTC/USDT", direction="LONG")
    ScanResultFactory(run=run, scanner="rsi", symbol="ETH/USDT", completeness=0.5)
    ScanResultFactory(run=run, scanner="mss", symbol="BTC/USDT", direction="SHORT")
    response = client_as("owner", user).get(f"/scans/{run.pk}/")
    assert response.context["by_scanner"] == [
        {"scanner": "mss", "results": 1, "long": 0, "short": 1, "complete": 1},
        {"scanner": "rsi", "results": 2, "long": 1, "short": 0, "complete": 1},
    ]


def test_a_runs_results_filter_by_scanner_and_coin(user) -> None:
    run = ScanRunFactory(scanner="all", symbols=["BTC/USDT", "ETH/USDT"])
    ScanResultFactory(run=run, scanner="rsi", symbol="BTC/USDT")
    wanted = ScanResultFactory(run=run, scanner="rsi", symbol="ETH/USDT")
    ScanResultFactory(run=run, scanner="mss", symbol="ETH/USDT")
    response = client_as("owner", user).get(f"/scans/{run.pk}/?scanner=rsi&symbol=eth")
    assert list(response.context["page"].object_list) == [wanted]


# --- in the browser -------------------------------------------------------------------------


def test_the_scans_page_renders_and_its_status_filter_changes_the_list(
    signed_in_page, user
) -> None:
    failed = finished_in(ScanRunFactory(status="failed", symbols=["BTC/USDT"]), 3)
    ScanRunFactory(scanner="mss", symbols=["ETH/USDT"])
    page = signed_in_page(user)
    page.goto("/scans/")
    expect(page.locator("[data-testid=runs] tbody tr")).to_have_count(2)
    page.select_option("#id_status", "failed")
    expect(page.locator("[data-testid=runs] tbody tr")).to_have_count(1)
    expect(page.locator("[data-testid=runs] tbody tr")).to_have_attribute(
        "data-run", str(failed.pk)
    )
    page.wait_for_url("**/scans/?*status=failed*")


def test_a_run_page_lists_its_failures_on_a_phone_without_page_scroll(signed_in_page, user) -> None:
    run = ScanRunFactory(symbols=["BTC/USDT", "XYZ/USDT"], coins_failed=1)
    failed_coin(run, "XYZ/USDT", "no spot market " + "very long error text " * 20)
    page = signed_in_page(user, width=390)
    page.goto("/scans/")
    page.get_by_role("link", name=f"#{run.pk}").click()
    page.wait_for_url(f"**/scans/{run.pk}/")
    expect(page.locator("[data-testid=failures] tbody tr")).to_have_count(1)
    expect(page.locator("[data-testid=failures]")).to_contain_text("XYZ/USDT")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_running_runs_page_follows_it_until_it_ends_without_a_reload(
    signed_in_page, user
) -> None:
    run = ScanRunFactory(status="running", symbols=["BTC/USDT", "XYZ/USDT"], coins_done=0)
    page = signed_in_page(user)
    page.emulate_media(color_scheme="dark")
    page.goto(f"/scans/{run.pk}/")
    page.evaluate("window.sameDocument = true")  # gone if the page were loaded again
    expect(page.get_by_test_id("run-polling")).to_be_visible()
    failed_coin(run, "XYZ/USDT", "no candles")
    ScanRun.objects.filter(pk=run.pk).update(status="finished", coins_done=1, coins_failed=1)
    facts = page.get_by_test_id("run-facts")
    expect(facts).to_contain_text("finished", timeout=20_000)  # the next poll, every 5 s
    expect(page.get_by_test_id("failures")).to_contain_text("no candles")
    expect(page.get_by_test_id("run-polling")).to_have_count(0)  # polling stopped
    assert page.evaluate("window.sameDocument") is True
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 22)"  # the dark palette's --bg
