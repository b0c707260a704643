"""The admin of scans, rankings and signals: everything browsable, computed records never editable,
watchlists editable with their coins inline."""

from __future__ import annotations

import pytest

from scanners.models import CoinFailure, ScanSchedule, Watchlist, WatchlistCoin
from tests.factories import (
    MarketFactory,
    ScanResultFactory,
    ScanRunFactory,
    SignalFactory,
    UnifiedRankingFactory,
    UserFactory,
    WatchlistFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def records():
    run = ScanRunFactory(symbols=["BTC/USDT", "ETH/USDT"], coins_done=1, coins_failed=1)
    result = ScanResultFactory(run=run, symbol="BTC/USDT", direction="LONG", scores={"rsi": 23.1})
    ScanResultFactory(run=run, symbol="ETH/USDT", scanner="smart_money")
    failure = CoinFailure.objects.create(run=run, symbol="ETH/USDT", error="no candles")
    ranking = UnifiedRankingFactory(scan_run=run, symbol="BTC/USDT", tier="TIER_1")
    signal = SignalFactory(scan_run=run, tier="TIER_1")
    watchlist = WatchlistFactory()
    WatchlistCoin.objects.create(watchlist=watchlist, symbol="BTC/USDT")
    schedule = ScanSchedule.objects.create(scanner="rsi", last_run=run)
    return {
        "scanners/scanrun": run,
        "scanners/scanresult": result,
        "scanners/coinfailure": failure,
        "scanners/scanschedule": schedule,
        "scanners/watchlist": watchlist,
        "scoring/unifiedranking": ranking,
        "tracking/signal": signal,
    }


MODELS = [
    "scanners/scanrun",
    "scanners/scanresult",
    "scanners/coinfailure",
    "scanners/scanschedule",
    "scanners/watchlist",
    "scoring/unifiedranking",
    "tracking/signal",
]
READ_ONLY = [model for model in MODELS if model != "scanners/watchlist"]


@pytest.mark.parametrize("model", MODELS)
def test_the_admin_lists_and_shows_every_pipeline_model(admin_client, records, model):
    assert admin_client.get(f"/admin/{model}/").status_code == 200
    assert admin_client.get(f"/admin/{model}/{records[model].pk}/change/").status_code == 200


@pytest.mark.parametrize(
    ("model", "query"),
    [
        ("scanners/scanrun", "scanner=rsi&status=finished&trigger=manual"),
        ("scanners/scanresult", "scanner=rsi&direction=LONG&q=BTC"),
        ("scanners/scanresult", "direction=none&as_of__year=2024"),
        ("scoring/unifiedranking", "tier=TIER_1&direction=LONG&q=BTC"),
        ("tracking/signal", "scanner=rsi&tier=TIER_1&direction=SHORT"),
        ("tracking/signal", "as_of__year=2024&as_of__month=1&q=btc"),
    ],
)
def test_the_admin_lists_filter_by_scanner_tier_direction_date_and_symbol(
    admin_client, records, model, query
):
    assert admin_client.get(f"/admin/{model}/?{query}").status_code == 200


def test_a_run_links_to_its_results_and_shows_its_failures_inline(admin_client, records):
    run = records["scanners/scanrun"]
    page = admin_client.get(f"/admin/scanners/scanrun/{run.pk}/change/").content.decode()
    assert f"/admin/scanners/scanresult/?run__id__exact={run.pk}" in page
    assert "no candles" in page
    results = admin_client.get(f"/admin/scanners/scanresult/?run__id__exact={run.pk}")
    assert results.status_code == 200
    assert "BTC/USDT" in results.content.decode()


def test_the_result_list_shows_direction_in_colour_and_scores_rounded(admin_client, records):
    page = admin_client.get("/admin/scanners/scanresult/").content.decode()
    assert '<b style="color: #1a7f37">LONG</b>' in page
    assert "rsi 23.1" in page
    assert "50.0 / 50.0" in page


@pytest.mark.parametrize("model", READ_ONLY)
def test_computed_records_cannot_be_added_changed_or_deleted(admin_client, records, model):
    pk = records[model].pk
    assert admin_client.get(f"/admin/{model}/add/").status_code == 403
    assert admin_client.post(f"/admin/{model}/{pk}/change/", {}).status_code == 403
    assert admin_client.post(f"/admin/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403
    model_class = type(records[model])
    assert model_class.objects.filter(pk=pk).exists()


def test_a_signals_change_page_has_no_save_button(admin_client, records):
    signal = records["tracking/signal"]
    page = admin_client.get(f"/admin/tracking/signal/{signal.pk}/change/").content.decode()
    assert 'name="_save"' not in page


def inline_form(prefix: str = "coins") -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": "2",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def test_a_watchlist_can_be_created_with_coins_inline(admin_client):
    owner = UserFactory(username="carol")
    MarketFactory(base="BTC")
    MarketFactory(base="ETH")
    response = admin_client.post(
        "/admin/scanners/watchlist/add/",
        {
            "owner": owner.pk,
            "name": "majors",
            **inline_form(),
            "coins-0-symbol": "btc",
            "coins-1-symbol": "ETH/USDT",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    watchlist = Watchlist.objects.get(owner=owner, name="majors")
    assert sorted(watchlist.coins.values_list("symbol", flat=True)) == ["BTC/USDT", "ETH/USDT"]


def test_an_unknown_coin_is_refused_in_the_admin_too(admin_client):
    owner = UserFactory(username="carol")
    MarketFactory(base="BTC")
    response = admin_client.post(
        "/admin/scanners/watchlist/add/",
        {
            "owner": owner.pk,
            "name": "majors",
            **inline_form(),
            "coins-0-symbol": "BTC",
            "coins-1-symbol": "NOPE",
        },
    )
    assert response.status_code == 200
    assert "unknown symbol(s): NOPE/USDT" in response.content.decode()
    assert not Watchlist.objects.exists()
