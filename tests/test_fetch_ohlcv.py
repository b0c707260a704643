"""manage.py fetch_ohlcv against the fake exchange: paging, resuming, gaps, unknown symbols."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from fakes.exchange import FakeExchange
from market.models import Candle, Market, MarketType
from tests.factories import MarketFactory, hourly_candles
from tests.test_binance_source import NOW, SAMPLE, SEED

GAP_START = datetime(2024, 4, 20, tzinfo=UTC)
GAP_HOURS = range(10, 15)  # hours 10..14 of the GAP coin's history are absent on the exchange


@pytest.fixture(scope="module")
def history_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeExchange]:
    folder = tmp_path_factory.mktemp("history") / "spot-1h"
    folder.mkdir()
    shutil.copy(SAMPLE / "BTC_USDT-1h.csv.gz", folder)
    start_ms = int(GAP_START.timestamp() * 1000)
    lines = ["timestamp_ms,open,high,low,close,volume"]
    for hour in range(48):
        if hour not in GAP_HOURS:
            lines.append(f"{start_ms + hour * 3_600_000},10,11,9,10.5,100")
    (folder / "GAP_USDT-1h.csv").write_text("\n".join(lines) + "\n")
    exchange = FakeExchange(folder.parent, now=NOW, synthetic_seed=SEED)
    with exchange.running_in_thread():
        yield exchange


@pytest.fixture
def exchange(history_fake: FakeExchange, settings) -> FakeExchange:
    base = history_fake.base_url
    settings.BINANCE_SPOT_URL = base
    settings.BINANCE_FUTURES_URL = base
    settings.COINGECKO_API_URL = f"{base}/coingecko/api/v3"
    history_fake.reset()
    return history_fake


def fetch(*args: str) -> str:
    out = StringIO()
    call_command("fetch_ohlcv", *args, "--quiet", stdout=out, stderr=StringIO())
    return out.getvalue()


def stored(symbol: str) -> list[datetime]:
    return list(
        Candle.objects.filter(market__symbol=symbol)
        .order_by("open_time")
        .values_list("open_time", flat=True)
    )


@pytest.mark.django_db
def test_history_is_downloaded_into_the_store(exchange):
    output = fetch("--symbols", "BTC/USDT", "--since", "2024-04-01", "--until", "2024-04-03")

    times = stored("BTC/USDT")
    assert len(times) == 48
    assert times[0] == datetime(2024, 4, 1, tzinfo=UTC)
    assert times[-1] == datetime(2024, 4, 2, 23, tzinfo=UTC)
    assert "BTC/USDT 1h: 48 new candles (48 fetched in 1 requests)" in output
    assert "no gaps" in output
    assert Candle.objects.exclude(taker_buy_volume=None).count() == 48


@pytest.mark.django_db
def test_more_than_a_page_is_fetched_in_pages_of_1000(exchange):
    fetch("--symbols", "BTC/USDT", "--since", "2024-01-01", "--until", "2024-03-01")

    assert len(stored("BTC/USDT")) == 60 * 24
    assert exchange.requests["/api/v3/klines"] == 2


@pytest.mark.django_db
def test_a_second_run_fetches_only_what_the_store_lacks(exchange):
    fetch("--symbols", "BTC/USDT", "--since", "2024-04-01", "--until", "2024-04-02")
    output = fetch("--symbols", "BTC/USDT", "--since", "2024-04-01", "--until", "2024-04-03")
    again = fetch("--symbols", "BTC/USDT", "--since", "2024-04-01", "--until", "2024-04-03")

    assert "24 new candles (24 fetched in 1 requests)" in output
    assert "0 new candles (0 fetched in 0 requests)" in again
    assert exchange.requests["/api/v3/klines"] == 2
    assert len(stored("BTC/USDT")) == 48


@pytest.mark.django_db
def test_an_earlier_since_fills_the_history_before_and_the_holes_inside(exchange):
    market = MarketFactory(base="BTC", symbol="BTC/USDT")
    start = datetime(2024, 4, 2, tzinfo=UTC)
    hourly_candles(market, [60000.0] * 5 + [None] * 3 + [60000.0] * 4, start=start)

    output = fetch("--symbols", "BTC/USDT", "--since", "2024-04-01", "--until", "2024-04-02T12:00")

    times = stored("BTC/USDT")
    assert len(times) == 36
    assert times == [datetime(2024, 4, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(36)]
    assert "27 new candles" in output
    # The candles that were already stored are kept as they were.
    assert Candle.objects.get(market=market, open_time=start).close == 60000.0


@pytest.mark.django_db
def test_an_exchange_gap_stays_a_gap_and_is_reported(exchange):
    args = ("--symbols", "GAP/USDT", "--since", "2024-04-20", "--until", "2024-04-22")

    output = fetch(*args)
    again = fetch(*args)

    assert len(stored("GAP/USDT")) == 48 - len(GAP_HOURS)
    assert "1 gaps the exchange has no candles for (5 candles missing; left as gaps)" in output
    assert "gap: 5 candles missing after 2024-04-20 09:00 UTC, resumes 2024-04-20 15:00 UTC" in (
        output
    )
    assert "0 new candles" in again
    assert "5 candles missing" in again


@pytest.mark.django_db
def test_an_unknown_symbol_is_a_clear_error(exchange):
    with pytest.raises(CommandError, match="Binance lists no spot market NOPE/USDT"):
        fetch("--symbols", "NOPE/USDT", "--since", "2024-04-01", "--until", "2024-04-02")


@pytest.mark.django_db
def test_futures_history_goes_to_the_perpetual(exchange):
    fetch(
        "--symbols",
        "BTC/USDT",
        "--market-type",
        "futures",
        "--since",
        "2024-04-01",
        "--until",
        "2024-04-01T06:00",
    )

    market = Market.objects.get(symbol="BTC/USDT:USDT")
    assert market.market_type == MarketType.FUTURES
    assert len(stored("BTC/USDT:USDT")) == 6
    assert exchange.requests["/fapi/v1/klines"] == 1


def test_until_before_since_is_refused(exchange):
    with pytest.raises(CommandError, match="not after --since"):
        fetch("--symbols", "BTC/USDT", "--since", "2024-04-02", "--until", "2024-04-01")


def test_a_bad_date_is_refused():
    with pytest.raises(CommandError, match="is not a date"):
        fetch("--symbols", "BTC/USDT", "--since", "yesterday")
