"""export_ohlcv: the store goes out in the import layout and comes back exactly."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from market.importing import import_paths
from market.models import Candle, FundingRate, ImportRecord, Market, MarketType, PriceSeries
from tests.factories import MarketFactory

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

pytestmark = pytest.mark.django_db

# Floats whose shortest text is long or unusual: a lossy export would change them.
AWKWARD = [0.1 + 0.2, 1e-08, 12345.678901234567, 3.0000000000000004, 7.0]


def spot(symbol: str = "BTC/USDT") -> Market:
    base, quote = symbol.split("/")
    return MarketFactory(symbol=symbol, base=base, quote=quote)


def perpetual(symbol: str = "BTC/USDT:USDT") -> Market:
    base, _, rest = symbol.partition("/")
    return MarketFactory(
        symbol=symbol, base=base, quote=rest.split(":")[0], market_type=MarketType.FUTURES
    )


def add_candles(
    market: Market,
    count: int,
    *,
    series: str = PriceSeries.TRADES,
    start: datetime = START,
    taker: bool = False,
    skip: tuple[int, ...] = (),
) -> None:
    candles = []
    for i in range(count):
        if i in skip:
            continue
        a, b = AWKWARD[i % len(AWKWARD)], AWKWARD[(i + 1) % len(AWKWARD)]
        open_, close = 20_000 + a, 20_000 + b
        candles.append(
            Candle(
                market=market,
                timeframe="1h",
                series=series,
                open_time=start + i * HOUR,
                open=open_,
                high=max(open_, close) + a,
                low=min(open_, close) - b,
                close=close,
                volume=a * 1000,
                taker_buy_volume=(i * 0.1 if i % 2 else None) if taker else None,
            )
        )
    Candle.objects.bulk_create(candles)


def snapshot() -> dict[str, list[tuple]]:
    """Everything a round trip must preserve, keyed independent of database ids."""
    return {
        "markets": list(
            Market.objects.order_by("symbol").values_list(
                "exchange", "symbol", "base", "quote", "market_type"
            )
        ),
        "candles": list(
            Candle.objects.order_by("market__symbol", "series", "open_time").values_list(
                "market__symbol",
                "timeframe",
                "series",
                "open_time",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "taker_buy_volume",
            )
        ),
        "funding": list(
            FundingRate.objects.order_by("market__symbol", "funding_time").values_list(
                "market__symbol", "funding_time", "rate"
            )
        ),
    }


def export(outdir: Path, *args: str) -> str:
    out = StringIO()
    call_command("export_ohlcv", str(outdir), *args, stdout=out)
    return out.getvalue()


def read_lines(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode().splitlines()


def test_export_then_import_round_trips_every_row_exactly(tmp_path):
    add_candles(spot(), 30, skip=(7, 8, 20))
    btc_perp = perpetual()
    add_candles(btc_perp, 12, taker=True)
    add_candles(btc_perp, 12, series=PriceSeries.MARK)
    FundingRate.objects.bulk_create(
        FundingRate(market=btc_perp, funding_time=START + i * 8 * HOUR, rate=rate)
        for i, rate in enumerate([1e-05, -0.00012345678901234, 0.0, 0.1 + 0.2])
    )
    before = snapshot()
    export(tmp_path, "--funding")

    Market.objects.all().delete()
    summary = import_paths([tmp_path], exchange="binance")

    assert not summary.rejected
    assert snapshot() == before


def test_a_real_file_exported_again_is_byte_for_byte_the_original_csv(tmp_path):
    original = Path(__file__).resolve().parent / "data" / "spot-1h" / "WIF_USDT-1h.csv.gz"
    import_paths([original], exchange="binance")
    export(tmp_path)
    assert read_lines(tmp_path / "WIF_USDT-1h.csv.gz") == read_lines(original)


def test_export_names_files_in_the_import_layout(tmp_path):
    add_candles(spot(), 2)
    perp = perpetual()
    add_candles(perp, 2)
    add_candles(perp, 2, series=PriceSeries.MARK)
    FundingRate.objects.create(market=perp, funding_time=START, rate=0.0001)
    export(tmp_path, "--funding")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "BTC_USDT-1h.csv.gz",
        "BTC_USDT_USDT-1h-futures.csv.gz",
        "BTC_USDT_USDT-1h-mark.csv.gz",
        "BTC_USDT_USDT-8h-funding_rate.csv.gz",
    ]


def test_a_file_has_the_taker_column_only_when_a_candle_has_a_taker_volume(tmp_path):
    add_candles(spot("BTC/USDT"), 2, taker=True)
    add_candles(spot("ETH/USDT"), 2)
    export(tmp_path)
    with_taker = read_lines(tmp_path / "BTC_USDT-1h.csv.gz")
    assert with_taker[0] == "timestamp_ms,open,high,low,close,volume,taker_buy_volume"
    assert with_taker[1].endswith(",")  # the first candle has none: an empty value, not 0
    assert read_lines(tmp_path / "ETH_USDT-1h.csv.gz")[0] == (
        "timestamp_ms,open,high,low,close,volume"
    )


def test_times_are_millisecond_open_times_and_floats_keep_full_precision(tmp_path):
    Candle.objects.create(
        market=spot(),
        timeframe="1h",
        open_time=START,
        open=0.1 + 0.2,
        high=12345.678901234567,
        low=1e-08,
        close=3.0000000000000004,
        volume=7.0,
    )
    export(tmp_path)
    assert read_lines(tmp_path / "BTC_USDT-1h.csv.gz")[1] == (
        "1704067200000,0.30000000000000004,12345.678901234567,1e-08,3.0000000000000004,7.0"
    )


def test_since_and_until_keep_only_the_window_since_inclusive_until_exclusive(tmp_path):
    add_candles(spot(), 10)
    export(tmp_path, "--since", "2024-01-01T02:00Z", "--until", "2024-01-01T05:00")
    times = [line.split(",")[0] for line in read_lines(tmp_path / "BTC_USDT-1h.csv.gz")[1:]]
    hour_ms = 3_600_000
    assert times == [str(1_704_067_200_000 + h * hour_ms) for h in (2, 3, 4)]


def test_symbols_and_market_type_select_what_is_exported(tmp_path):
    add_candles(spot("BTC/USDT"), 2)
    add_candles(spot("ETH/USDT"), 2)
    add_candles(perpetual("BTC/USDT:USDT"), 2)
    export(tmp_path / "one", "--symbols", "ETH/USDT")
    export(tmp_path / "spot", "--market-type", "spot")
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["ETH_USDT-1h.csv.gz"]
    assert sorted(p.name for p in (tmp_path / "spot").iterdir()) == [
        "BTC_USDT-1h.csv.gz",
        "ETH_USDT-1h.csv.gz",
    ]


def test_an_unknown_symbol_is_an_error_and_writes_nothing(tmp_path):
    add_candles(spot(), 2)
    with pytest.raises(CommandError, match="no market DOGE/USDT on binance"):
        export(tmp_path, "--symbols", "BTC/USDT,DOGE/USDT")
    assert not list(tmp_path.iterdir())


def test_exporting_twice_gives_identical_bytes(tmp_path):
    add_candles(spot(), 5)
    export(tmp_path / "a")
    export(tmp_path / "b")
    name = "BTC_USDT-1h.csv.gz"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_reimporting_an_export_into_the_same_store_adds_nothing(tmp_path):
    add_candles(spot(), 5)
    export(tmp_path)
    summary = import_paths([tmp_path], exchange="binance")
    assert (summary.candles_read, summary.candles_added) == (5, 0)
    assert ImportRecord.objects.get().inserted == 0


def test_the_command_reports_each_file_and_the_totals(tmp_path):
    add_candles(spot(), 3)
    output = export(tmp_path)
    assert output.splitlines() == [
        "BTC_USDT-1h.csv.gz: 3 candles",
        f"1 files written to {tmp_path}: 3 candles, 0 funding rates",
    ]
