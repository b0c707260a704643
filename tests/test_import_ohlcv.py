"""import_ohlcv: every format imports, every bad row rejects its whole file, gaps stay gaps."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pytest
from django.core.management import CommandError, ManagementUtility, call_command

from market.file_layouts import ImportFileError
from market.file_validation import parse_file
from market.importing import import_file, import_paths
from market.models import (
    Candle,
    FundingRate,
    ImportKind,
    ImportRecord,
    ListingSource,
    Market,
    MarketType,
    PriceSeries,
)
from tests.factories import MarketFactory

REAL_DATA = Path(__file__).resolve().parent / "data"
HEADER = "timestamp_ms,open,high,low,close,volume"
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000
START = datetime(2024, 1, 1, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def candle_rows(count: int, start: int = T0) -> list[list[float]]:
    """`count` valid hourly rows [ms, open, high, low, close, volume] from `start`."""
    return [
        [start + i * HOUR, 100.0 + i, 102.5 + i, 99.25 + i, 101.0 + i, 10.0 + i]
        for i in range(count)
    ]


def csv_text(rows: list[list], header: str = HEADER) -> str:
    return header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_csv(path: Path, rows: list[list], header: str = HEADER) -> Path:
    return write(path, csv_text(rows, header))


def stored(symbol: str = "BTC/USDT", series: str = PriceSeries.TRADES) -> list[tuple]:
    return list(
        Candle.objects.filter(market__symbol=symbol, series=series)
        .order_by("open_time")
        .values_list("open_time", "open", "high", "low", "close", "volume")
    )


def expected(rows: list[list[float]]) -> list[tuple]:
    return [
        (START + timedelta(milliseconds=row[0] - T0), *(float(v) for v in row[1:6])) for row in rows
    ]


def rejection(path: Path) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        import_file(path, exchange="binance")
    return caught.value


# --- each format imports ------------------------------------------------------------------


def test_a_csv_file_imports_every_candle_with_its_values(tmp_path):
    rows = candle_rows(5)
    import_file(write_csv(tmp_path / "BTC_USDT-1h.csv", rows), exchange="binance")
    assert stored() == expected(rows)


def test_a_gzipped_csv_file_imports(tmp_path):
    rows = candle_rows(5)
    result = import_file(write_csv(tmp_path / "BTC_USDT-1h.csv.gz", rows), exchange="binance")
    assert (result.rows, result.inserted) == (5, 5)
    assert stored() == expected(rows)


def test_a_freqtrade_json_file_imports(tmp_path):
    rows = candle_rows(4)
    import_file(write(tmp_path / "BTC_USDT-1h.json", json.dumps(rows)), exchange="binance")
    assert stored() == expected(rows)


def test_a_gzipped_freqtrade_json_file_imports(tmp_path):
    rows = candle_rows(4)
    import_file(write(tmp_path / "BTC_USDT-1h.json.gz", json.dumps(rows)), exchange="binance")
    assert stored() == expected(rows)


def test_a_freqtrade_feather_file_imports_the_real_wif_history():
    result = import_file(REAL_DATA / "freqtrade-format" / "WIF_USDT-1h.feather", exchange="binance")
    assert (result.rows, result.inserted, result.gaps) == (1999, 1999, 0)
    first = Candle.objects.filter(market__symbol="WIF/USDT").earliest("open_time")
    assert first.open_time == datetime(2024, 3, 5, 14, tzinfo=UTC)
    assert (first.open, first.high, first.low, first.close) == (1.1892, 1.848, 1.1892, 1.4255)


def test_a_feather_file_with_integer_millisecond_dates_imports(tmp_path):
    rows = candle_rows(3)
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {
            "date": pa.array(columns[0], pa.int64()),
            **{name: pa.array(columns[i + 1]) for i, name in enumerate(HEADER.split(",")[1:])},
        }
    )
    feather.write_feather(table, tmp_path / "BTC_USDT-1h.feather")
    import_file(tmp_path / "BTC_USDT-1h.feather", exchange="binance")
    assert stored() == expected(rows)


def test_a_real_spot_csv_gz_imports_whole():
    result = import_file(REAL_DATA / "spot-1h" / "WIF_USDT-1h.csv.gz", exchange="binance")
    assert result.inserted == 1999
    assert Candle.objects.filter(market__symbol="WIF/USDT", timeframe="1h").count() == 1999


def test_a_futures_csv_imports_into_the_perpetual_market(tmp_path):
    import_file(
        write_csv(tmp_path / "BTC_USDT_USDT-1h-futures.csv", candle_rows(3)), exchange="binance"
    )
    market = Market.objects.get()
    assert (market.symbol, market.market_type, market.base, market.quote) == (
        "BTC/USDT:USDT",
        MarketType.FUTURES,
        "BTC",
        "USDT",
    )
    assert market.candles.filter(series=PriceSeries.TRADES).count() == 3


def test_a_mark_price_csv_imports_as_the_mark_series_of_the_perpetual(tmp_path):
    import_file(
        write_csv(tmp_path / "BTC_USDT_USDT-1h-mark.csv", candle_rows(3)), exchange="binance"
    )
    assert (
        Candle.objects.filter(market__symbol="BTC/USDT:USDT", series=PriceSeries.MARK).count() == 3
    )
    assert not Candle.objects.filter(series=PriceSeries.TRADES).exists()


def test_a_taker_buy_volume_column_imports_and_may_be_empty(tmp_path):
    rows = [[*row, 4.5] for row in candle_rows(2)]
    rows[1][6] = ""
    write_csv(tmp_path / "BTC_USDT-1h.csv", rows, header=HEADER + ",taker_buy_volume")
    import_file(tmp_path / "BTC_USDT-1h.csv", exchange="binance")
    takers = list(Candle.objects.order_by("open_time").values_list("taker_buy_volume", flat=True))
    assert takers == [4.5, None]


def test_a_funding_csv_imports_rates_on_the_perpetual(tmp_path):
    path = write(
        tmp_path / "BTC_USDT_USDT-8h-funding_rate.csv",
        f"timestamp_ms,funding_rate\n{T0},5e-05\n{T0 + 8 * HOUR},-8.429e-05\n",
    )
    result = import_file(path, exchange="binance")
    assert result.layout.kind == ImportKind.FUNDING
    rates = list(
        FundingRate.objects.filter(market__symbol="BTC/USDT:USDT")
        .order_by("funding_time")
        .values_list("funding_time", "rate")
    )
    assert rates == [(START, 5e-05), (START + timedelta(hours=8), -8.429e-05)]


def test_a_funding_file_name_timeframe_is_not_the_settlement_interval(tmp_path):
    # A "-1h-" funding file holds 8-hourly settlements; neither is a gap or misalignment.
    path = write(
        tmp_path / "BTC_USDT_USDT-1h-funding_rate.csv",
        f"timestamp_ms,funding_rate\n{T0}, 0.0001\n{T0 + 8 * HOUR},0.0002\n",
    )
    assert import_file(path, exchange="binance").inserted == 2


def test_a_freqtrade_funding_json_takes_the_rate_from_the_open_column(tmp_path):
    rows = [[T0, 0.0001, 0, 0, 0, 0], [T0 + 8 * HOUR, -0.0003, 0, 0, 0, 0]]
    import_file(
        write(tmp_path / "ETH_USDT_USDT-8h-funding_rate.json", json.dumps(rows)), exchange="binance"
    )
    assert list(FundingRate.objects.order_by("funding_time").values_list("rate", flat=True)) == [
        0.0001,
        -0.0003,
    ]


def test_funding_times_are_rounded_to_the_nearest_second(tmp_path):
    path = write(
        tmp_path / "ENA_USDT_USDT-8h-funding_rate.csv",
        f"timestamp_ms,funding_rate\n{T0 + 1},0.0001\n{T0 + 4 * HOUR - 1},0.0002\n",
    )
    import_file(path, exchange="binance")
    times = list(
        FundingRate.objects.order_by("funding_time").values_list("funding_time", flat=True)
    )
    assert times == [START, START + timedelta(hours=4)]


def test_funding_times_that_collide_after_rounding_are_rejected(tmp_path):
    path = write(
        tmp_path / "ENA_USDT_USDT-8h-funding_rate.csv",
        f"timestamp_ms,funding_rate\n{T0 - 1},0.0001\n{T0 + 1},0.0002\n",
    )
    error = rejection(path)
    assert error.row == 2
    assert "repeats row 1" in error.reason
    assert not FundingRate.objects.exists()


def test_a_funding_rate_that_is_not_finite_is_rejected(tmp_path):
    path = write(
        tmp_path / "BTC_USDT_USDT-8h-funding_rate.csv", f"timestamp_ms,funding_rate\n{T0},nan\n"
    )
    assert rejection(path).row == 1


def test_a_freqtrade_funding_feather_takes_the_rate_from_the_open_column(tmp_path):
    times = [START, START + timedelta(hours=8)]
    table = pa.table(
        {
            "date": pa.array(times, pa.timestamp("ms", tz="UTC")),
            "open": [0.0001, -0.0002],
            **{name: [0.0, 0.0] for name in ("high", "low", "close", "volume")},
        }
    )
    feather.write_feather(table, tmp_path / "SOL_USDT_USDT-8h-funding_rate.feather")
    import_file(tmp_path / "SOL_USDT_USDT-8h-funding_rate.feather", exchange="binance")
    assert list(
        FundingRate.objects.order_by("funding_time").values_list("funding_time", "rate")
    ) == [
        (times[0], 0.0001),
        (times[1], -0.0002),
    ]


# --- gaps ---------------------------------------------------------------------------------


def test_a_gap_stays_a_gap_and_is_reported(tmp_path):
    rows = candle_rows(6)
    del rows[2:4]  # two missing hours: one hole
    result = import_file(write_csv(tmp_path / "BTC_USDT-1h.csv", rows), exchange="binance")
    assert (result.gaps, result.missing_candles) == (1, 2)
    assert "1 gaps" in result.describe()
    assert stored() == expected(rows)
    assert ImportRecord.objects.get().gaps == 1


# --- rejections ---------------------------------------------------------------------------


def test_a_duplicate_time_rejects_the_file_naming_the_row(tmp_path):
    rows = candle_rows(4)
    rows[2][0] = rows[1][0]
    path = write_csv(tmp_path / "BTC_USDT-1h.csv", rows)
    error = rejection(path)
    assert str(error) == f"{path}: row 3: time 2024-01-01 01:00:00 repeats row 2"
    assert not Candle.objects.exists()


def test_unsorted_times_reject_the_file(tmp_path):
    rows = candle_rows(4)
    rows[1], rows[2] = rows[2], rows[1]
    error = rejection(write_csv(tmp_path / "BTC_USDT-1h.csv", rows))
    assert error.row == 3
    assert "time order" in error.reason


def test_high_below_low_rejects_the_file(tmp_path):
    rows = candle_rows(3)
    rows[1][2], rows[1][3] = 90.0, 110.0
    error = rejection(write_csv(tmp_path / "BTC_USDT-1h.csv", rows))
    assert (error.row, error.reason) == (2, "high 90.0 is below low 110.0")


@pytest.mark.parametrize(
    ("row_text", "reason"),
    [
        pytest.param(
            f"{T0 + HOUR},abc,102,99,101,10", "open 'abc' is not a number", id="non-number"
        ),
        pytest.param(f"{T0 + HOUR},100,102,99,101", "5 columns, expected 6", id="missing-column"),
        pytest.param(
            f"{T0 + HOUR},100,102,99,101,10,7", "7 columns, expected 6", id="extra-column"
        ),
        pytest.param("", "empty line", id="empty-line"),
        pytest.param(f"{T0 + HOUR},100,102,99,,10", "close is empty", id="empty-value"),
        pytest.param("2024-01-01,100,102,99,101,10", "is not a whole number", id="text-time"),
        pytest.param(
            f"{T0 + HOUR},nan,102,99,101,10", "open is nan (not a finite number)", id="nan"
        ),
        pytest.param(
            f"{T0 + HOUR},100,inf,99,101,10", "high is inf (not a finite number)", id="inf"
        ),
        pytest.param(f"{T0 + HOUR},0,102,0,101,10", "open 0.0 is not > 0", id="zero-price"),
        pytest.param(f"{T0 + HOUR},100,102,99,101,-1", "volume -1.0 is negative", id="neg-volume"),
        pytest.param(f"{T0 + HOUR},103,102,99,101,10", "high 102.0 is below open", id="high<open"),
        pytest.param(f"{T0 + HOUR},100,102,101,100.5,10", "low 101.0 is above open", id="low>open"),
        pytest.param(
            f"{T0 + HOUR + 60_000},100,102,99,101,10", "not on the 1h grid", id="unaligned"
        ),
        pytest.param(f"{(T0 + HOUR) // 1000},100,102,99,101,10", "between 2000", id="seconds"),
    ],
)
def test_a_broken_row_rejects_the_file_naming_the_row(tmp_path, row_text, reason):
    lines = [HEADER, f"{T0},100,102,99,101,10", row_text, f"{T0 + 2 * HOUR},100,102,99,101,10"]
    path = write(tmp_path / "BTC_USDT-1h.csv", "\n".join(lines) + "\n")
    error = rejection(path)
    assert error.row == 2
    assert reason in error.reason
    assert not Candle.objects.exists()


def test_a_broken_json_row_rejects_the_file_naming_the_row(tmp_path):
    rows: list[list] = candle_rows(3)
    rows[2][4] = "101"
    error = rejection(write(tmp_path / "BTC_USDT-1h.json", json.dumps(rows)))
    assert (error.row, error.reason) == (3, 'close "101" is not a number')


def test_a_json_timestamp_far_out_of_range_is_rejected_with_its_row(tmp_path):
    rows: list[list] = candle_rows(2)
    rows[1][0] = 10**30
    error = rejection(write(tmp_path / "BTC_USDT-1h.json", json.dumps(rows)))
    assert error.row == 2
    assert "is not between 2000 and 2100" in error.reason


def test_blank_lines_at_the_end_of_a_csv_are_ignored(tmp_path):
    path = write(tmp_path / "BTC_USDT-1h.csv", csv_text(candle_rows(2)) + "\n\n")
    assert import_file(path, exchange="binance").inserted == 2


def test_a_feather_file_with_unexpected_columns_is_rejected(tmp_path):
    table = pa.table({"date": pa.array([T0], pa.int64()), "price": [1.0]})
    feather.write_feather(table, tmp_path / "BTC_USDT-1h.feather")
    error = rejection(tmp_path / "BTC_USDT-1h.feather")
    assert error.reason == "columns are date, price; expected date, open, high, low, close, volume"


def test_a_wrong_header_rejects_the_file(tmp_path):
    path = write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(2), header="time,o,h,l,c,v")
    error = rejection(path)
    assert error.row is None
    assert "expected timestamp_ms,open,high,low,close,volume" in error.reason


def test_a_candle_header_in_a_funding_file_rejects_it(tmp_path):
    error = rejection(write_csv(tmp_path / "BTC_USDT_USDT-8h-funding_rate.csv", candle_rows(2)))
    assert "expected timestamp_ms,funding_rate" in error.reason


@pytest.mark.parametrize(
    "name",
    [
        "BTCUSDT-1h.csv",  # no separator between base and quote
        "BTC_USDT.csv",  # no timeframe
        "BTC_USDT-3d.csv",  # a timeframe we do not store
        "BTC_USDT_USDT-1h.csv",  # futures without a candle type
        "BTC_USDT-1h-futures.csv",  # a candle type without a settle currency
        "BTC_USDT_USDT-1h-premiumIndex.csv",  # a freqtrade candle type we do not store
        "BTC_USDT-1h.parquet",  # an unknown format
    ],
)
def test_an_unknown_file_name_is_rejected_as_unknown_layout(tmp_path, name):
    error = rejection(write_csv(tmp_path / name, candle_rows(2)))
    assert "unknown layout" in error.reason
    assert not Market.objects.exists()


def test_a_corrupt_gzip_file_is_rejected(tmp_path):
    (tmp_path / "BTC_USDT-1h.csv.gz").write_bytes(b"\x1f\x8b not really gzip")
    assert "not a valid gzip file" in rejection(tmp_path / "BTC_USDT-1h.csv.gz").reason


def test_a_rejected_file_leaves_nothing_behind_while_a_good_file_in_the_same_call_imports(
    tmp_path,
):
    bad_rows = candle_rows(50)
    bad_rows[49][2] = 1.0  # the last row breaks: the 49 before it must not be stored either
    bad = write_csv(tmp_path / "ETH_USDT-1h.csv", bad_rows)
    good = write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(3))
    summary = import_paths([bad, good], exchange="binance")
    assert [str(error) for error in summary.rejected] == [
        f"{bad}: row 50: high 1.0 is below low 148.25"
    ]
    assert [result.layout.symbol for result in summary.results] == ["BTC/USDT"]
    assert not Market.objects.filter(symbol="ETH/USDT").exists()
    assert Candle.objects.count() == 3
    assert ImportRecord.objects.count() == 1


# --- storing ------------------------------------------------------------------------------


def test_reimporting_a_file_adds_nothing_and_says_so(tmp_path):
    path = write_csv(tmp_path / "BTC_USDT-1h.csv.gz", candle_rows(5))
    import_file(path, exchange="binance")
    again = import_file(path, exchange="binance")
    assert (again.rows, again.inserted) == (5, 0)
    assert "0 new (all already stored)" in again.describe()
    assert Candle.objects.count() == 5


def test_an_overlapping_file_adds_only_the_candles_not_stored_yet(tmp_path):
    import_file(write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(5)), exchange="binance")
    longer = write_csv(tmp_path / "more" / "BTC_USDT-1h.csv", candle_rows(8))
    assert import_file(longer, exchange="binance").inserted == 3
    assert Candle.objects.count() == 8


def test_a_stored_candle_is_never_overwritten_by_a_later_file(tmp_path):
    import_file(write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(1)), exchange="binance")
    changed = candle_rows(1)
    changed[0][4] = 100.5
    import_file(write_csv(tmp_path / "again" / "BTC_USDT-1h.csv", changed), exchange="binance")
    assert Candle.objects.get().close == 101.0


def test_a_new_market_is_listed_at_its_first_candle(tmp_path):
    import_file(
        write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(3, T0 + 5 * HOUR)), exchange="binance"
    )
    market = Market.objects.get(symbol="BTC/USDT")
    assert market.listed_at == START + timedelta(hours=5)
    assert market.listed_at_source == ListingSource.FIRST_CANDLE


def test_an_earlier_file_moves_a_first_candle_listing_earlier(tmp_path):
    import_file(
        write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(3, T0 + 5 * HOUR)), exchange="binance"
    )
    import_file(
        write(tmp_path / "BTC_USDT-1h.json", json.dumps(candle_rows(2))), exchange="binance"
    )
    assert Market.objects.get(symbol="BTC/USDT").listed_at == START


def test_a_listing_time_from_the_exchange_is_kept(tmp_path):
    listed = START + timedelta(days=3)
    MarketFactory(symbol="BTC/USDT", base="BTC", listed_at=listed, listed_at_source="exchange")
    import_file(write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(3)), exchange="binance")
    assert Market.objects.get(symbol="BTC/USDT").listed_at == listed


def test_the_exchange_option_names_the_markets_exchange(tmp_path):
    import_file(write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(1)), exchange="bybit")
    assert Market.objects.get().exchange == "bybit"


def test_an_import_record_describes_the_file(tmp_path):
    rows = candle_rows(4)
    del rows[1]
    path = write_csv(tmp_path / "BTC_USDT_USDT-1h-mark.csv.gz", rows)
    import_file(path, exchange="binance")
    record = ImportRecord.objects.get()
    assert record.path == str(path.resolve())
    assert len(record.sha256) == 64
    assert (record.kind, record.timeframe, record.series) == ("candles", "1h", "mark")
    assert (record.rows, record.inserted, record.gaps) == (3, 3, 1)
    assert (record.first_time, record.last_time) == (START, START + timedelta(hours=3))
    assert record.market.symbol == "BTC/USDT:USDT"


def test_parsing_a_file_touches_no_database(tmp_path, django_assert_num_queries):
    path = write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(3))
    with django_assert_num_queries(0):
        assert parse_file(path).rows == 3


# --- folders and the command --------------------------------------------------------------


def test_folders_are_walked_recursively_and_non_data_files_skipped(tmp_path):
    write_csv(tmp_path / "spot" / "BTC_USDT-1h.csv", candle_rows(2))
    write_csv(tmp_path / "spot" / "deep" / "ETH_USDT-1h.csv.gz", candle_rows(2))
    (tmp_path / "spot" / "README.md").write_text("not data")
    summary = import_paths([tmp_path], exchange="binance")
    assert sorted(r.layout.symbol for r in summary.results) == ["BTC/USDT", "ETH/USDT"]
    assert [p.name for p in summary.skipped] == ["README.md"]


def test_the_command_prints_a_line_per_file_and_a_summary(tmp_path):
    rows = candle_rows(5)
    del rows[2]
    write_csv(tmp_path / "BTC_USDT-1h.csv", rows)
    out = StringIO()
    call_command("import_ohlcv", str(tmp_path), stdout=out, stderr=StringIO())
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "BTC/USDT 1h: 4 rows, 4 new, 1 gaps "
        "(2024-01-01 00:00 .. 2024-01-01 04:00 UTC; 1 candles missing)"
    )
    assert lines[1].startswith("1 files imported, 0 rejected: 4 candles added (4 read), ")


def test_the_command_exits_non_zero_when_a_file_is_rejected_and_still_imports_the_rest(tmp_path):
    rows = candle_rows(3)
    rows[2][0] = rows[0][0]
    write_csv(tmp_path / "BTC_USDT-1h.csv", rows)
    write_csv(tmp_path / "ETH_USDT-1h.csv", candle_rows(3))
    err = StringIO()
    with pytest.raises(CommandError, match="1 of 2 files rejected"):
        call_command("import_ohlcv", str(tmp_path), "--quiet", stdout=StringIO(), stderr=err)
    assert f"REJECTED {tmp_path / 'BTC_USDT-1h.csv'}: row 3: " in err.getvalue()
    assert list(Market.objects.values_list("symbol", flat=True)) == ["ETH/USDT"]


def test_the_command_exits_with_status_1_when_a_file_is_rejected(tmp_path, capsys):
    path = write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(2), header="nope")
    with pytest.raises(SystemExit) as exited:
        # What `manage.py import_ohlcv FILE` does: a CommandError becomes exit status 1.
        ManagementUtility(["manage.py", "import_ohlcv", "--quiet", str(path)]).execute()
    assert exited.value.code == 1
    assert "1 of 1 files rejected" in capsys.readouterr().err


def test_the_command_rejects_a_path_that_does_not_exist_before_importing_anything(tmp_path):
    write_csv(tmp_path / "BTC_USDT-1h.csv", candle_rows(2))
    with pytest.raises(CommandError, match=r"no such file or folder: .*missing"):
        call_command("import_ohlcv", str(tmp_path), str(tmp_path / "missing"), stdout=StringIO())
    assert not Candle.objects.exists()
