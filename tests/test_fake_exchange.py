"""The fake exchange over real HTTP on 127.0.0.1: wire shapes, point-in-time, weights, faults."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from fakes.exchange import FakeExchange

HOUR = 3_600_000
T0 = 1_714_521_600_000  # 2024-05-01 00:00 UTC
ROWS = 60
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def _candle(i: int, base: float) -> tuple[float, float, float, float, float]:
    open_ = base + i
    close = open_ + (1.5 if i % 3 else -2.25)
    return open_, max(open_, close) + 0.75, min(open_, close) - 0.5, close, 10.0 + i


def _write_csv(path: Path, header: str, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("market")
    header = "timestamp_ms,open,high,low,close,volume"
    for coin, base in (("AAA", 100.0), ("BBB", 5.0)):
        lines = [",".join(map(str, (T0 + i * HOUR, *_candle(i, base)))) for i in range(ROWS)]
        _write_csv(root / "spot-1h" / f"{coin}_USDT-1h.csv", header, lines)
    # CCC is listed later than now (first candle after the fake now used in the tests).
    late = [",".join(map(str, (T0 + (ROWS + 5 + i) * HOUR, *_candle(i, 1.0)))) for i in range(3)]
    _write_csv(root / "spot-1h" / "CCC_USDT-1h.csv", header, late)
    futures = [",".join(map(str, (T0 + i * HOUR, *_candle(i, 101.0)))) for i in range(ROWS)]
    _write_csv(root / "futures-1h" / "AAA_USDT_USDT-1h-futures.csv", header, futures)
    funding = [f"{T0 + i * 8 * HOUR},{0.0001 * (i + 1):.6f}" for i in range(ROWS // 8 + 1)]
    _write_csv(
        root / "funding" / "AAA_USDT_USDT-8h-funding_rate.csv", "timestamp_ms,funding_rate", funding
    )
    # a few real rows copied from the bundled sample, gzipped as in the shared layout
    with gzip.open(SAMPLE / "spot-1h" / "ETH_USDT-1h.csv.gz", "rt") as source:
        real = [next(source) for _ in range(30)]
    with gzip.open(root / "spot-1h" / "ETH_USDT-1h.csv.gz", "wt") as target:
        target.writelines(real)
    return root


NOW = T0 + ROWS * HOUR  # close of the last AAA/BBB candle


class Clock:
    """A wall clock the test moves by hand (rate-limit minutes)."""

    def __init__(self) -> None:
        self.value = 1_800_000_000.0

    def __call__(self) -> float:
        return self.value


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10):
    """(status, headers, body bytes) of a GET; errors are answers too."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def get_json(url: str, headers: dict[str, str] | None = None):
    status, head, body = get(url, headers)
    return status, head, json.loads(body)


def post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def fake(data_dir: Path):
    exchange = FakeExchange(data_dir, now=NOW)
    with exchange.running_in_thread() as base:
        exchange.base = base
        yield exchange


@pytest.fixture(scope="module")
def seeded(data_dir: Path):
    exchange = FakeExchange(data_dir, now=NOW, synthetic_seed=7)
    with exchange.running_in_thread() as base:
        exchange.base = base
        yield exchange


# --- Binance spot ---------------------------------------------------------------------------


def test_klines_rows_are_binance_strings_and_stop_at_now(fake):
    status, headers, rows = get_json(f"{fake.base}/api/v3/klines?symbol=AAAUSDT&interval=1h")
    assert status == 200
    assert len(rows) == ROWS  # default limit 500, all closed candles
    first = rows[0]
    assert len(first) == 12
    assert isinstance(first[0], int)
    assert isinstance(first[6], int)
    assert isinstance(first[8], int)
    assert all(isinstance(first[k], str) for k in (1, 2, 3, 4, 5, 7, 9, 10, 11))
    open_, high, low, close, volume = _candle(0, 100.0)
    assert first[0] == T0
    assert first[6] == T0 + HOUR - 1
    assert [float(v) for v in first[1:6]] == [open_, high, low, close, volume]
    assert 0 <= float(first[9]) <= float(first[5])  # taker buy is part of the volume
    assert rows[-1][6] < NOW  # never a candle closing after now
    assert headers["X-Fake-Synthetic"] == "true"
    assert "taker_buy_base_volume" in headers["X-Fake-Synthetic-Fields"]


def test_klines_limit_start_and_end(fake):
    url = f"{fake.base}/api/v3/klines?symbol=AAAUSDT&interval=1h"
    _, _, rows = get_json(url + "&limit=5")
    assert [r[0] for r in rows] == [T0 + i * HOUR for i in range(ROWS - 5, ROWS)]
    _, _, rows = get_json(url + f"&startTime={T0 + 10 * HOUR + 1}&limit=3")
    assert [r[0] for r in rows] == [T0 + i * HOUR for i in (11, 12, 13)]
    _, _, rows = get_json(url + f"&endTime={T0 + 20 * HOUR}&limit=2")
    assert [r[0] for r in rows] == [T0 + 19 * HOUR, T0 + 20 * HOUR]
    _, _, rows = get_json(url + f"&startTime={T0}&endTime={T0 + 2 * HOUR}")
    assert len(rows) == 3
    _, _, rows = get_json(url + f"&startTime={NOW}")
    assert rows == []
    _, _, rows = get_json(url + "&limit=5000")
    assert len(rows) == ROWS  # capped at 1000, fewer exist


def test_klines_errors_as_binance(fake):
    status, _, body = get_json(f"{fake.base}/api/v3/klines?symbol=AAAUSDT&interval=5m")
    assert (status, body) == (400, {"code": -1120, "msg": "Invalid interval."})
    status, _, body = get_json(f"{fake.base}/api/v3/klines?symbol=NOPEUSDT&interval=1h")
    assert (status, body["code"]) == (400, -1121)
    # listed after now: unknown as of now
    status, _, body = get_json(f"{fake.base}/api/v3/klines?symbol=CCCUSDT&interval=1h")
    assert (status, body["code"]) == (400, -1121)
    status, _, body = get_json(f"{fake.base}/api/v3/nothing")
    assert status == 404
    assert body["code"] == -5000


def test_ticker_is_the_last_24_candles(fake):
    status, _, item = get_json(f"{fake.base}/api/v3/ticker/24hr?symbol=AAAUSDT")
    assert status == 200
    window = [_candle(i, 100.0) for i in range(ROWS - 24, ROWS)]
    assert float(item["openPrice"]) == window[0][0]
    assert float(item["lastPrice"]) == window[-1][3]
    assert float(item["highPrice"]) == max(c[1] for c in window)
    assert float(item["lowPrice"]) == min(c[2] for c in window)
    assert float(item["volume"]) == pytest.approx(sum(c[4] for c in window))
    assert float(item["priceChange"]) == pytest.approx(window[-1][3] - window[0][0])
    percent = (window[-1][3] - window[0][0]) / window[0][0] * 100
    assert item["priceChangePercent"] == f"{percent:.3f}"
    assert float(item["prevClosePrice"]) == _candle(ROWS - 25, 100.0)[3]
    assert item["openTime"] == NOW - 24 * HOUR
    assert item["closeTime"] == NOW - 1
    assert item["count"] == item["lastId"] - item["firstId"] + 1
    _, _, many = get_json(
        f"{fake.base}/api/v3/ticker/24hr?symbols=" + '["AAAUSDT","BBBUSDT"]'.replace('"', "%22")
    )
    assert [t["symbol"] for t in many] == ["AAAUSDT", "BBBUSDT"]
    _, _, everything = get_json(f"{fake.base}/api/v3/ticker/24hr")
    assert {t["symbol"] for t in everything} == {"AAAUSDT", "BBBUSDT", "ETHUSDT"}


def test_exchange_info_lists_coins_seen_by_now(fake):
    _, _, spot = get_json(f"{fake.base}/api/v3/exchangeInfo")
    symbols = {s["symbol"]: s for s in spot["symbols"]}
    assert set(symbols) == {"AAAUSDT", "BBBUSDT", "ETHUSDT"}
    aaa = symbols["AAAUSDT"]
    assert (aaa["status"], aaa["baseAsset"], aaa["quoteAsset"]) == ("TRADING", "AAA", "USDT")
    assert aaa["permissionSets"] == [["SPOT", "MARGIN", "TRD_GRP_004"]]
    assert {f["filterType"] for f in aaa["filters"]} >= {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
    _, _, fapi = get_json(f"{fake.base}/fapi/v1/exchangeInfo")
    perps = {s["symbol"]: s for s in fapi["symbols"]}
    assert set(perps) == {"AAAUSDT"}  # no seed: only coins with futures data
    assert perps["AAAUSDT"]["contractType"] == "PERPETUAL"
    assert perps["AAAUSDT"]["onboardDate"] == T0


def test_weight_header_counts_each_endpoint(data_dir):
    clock = Clock()
    exchange = FakeExchange(data_dir, now=NOW, clock=clock)
    with exchange.running_in_thread() as base:
        weights = []
        for path in (
            "/api/v3/klines?symbol=AAAUSDT&interval=1h&limit=3",
            "/api/v3/exchangeInfo",
            "/api/v3/ticker/24hr?symbol=AAAUSDT",
            "/api/v3/ticker/24hr",
            "/api/v3/aggTrades?symbol=AAAUSDT&limit=2",
        ):
            _, headers, _ = get(base + path)
            assert headers["X-MBX-USED-WEIGHT"] == headers["X-MBX-USED-WEIGHT-1M"]
            weights.append(int(headers["X-MBX-USED-WEIGHT-1M"]))
        assert weights == [2, 22, 24, 104, 108]
        fapi = []
        for path in (
            "/fapi/v1/klines?symbol=AAAUSDT&interval=1h&limit=99",
            "/fapi/v1/klines?symbol=AAAUSDT&interval=1h",
            "/fapi/v1/premiumIndex?symbol=AAAUSDT",
            "/fapi/v1/premiumIndex",
            "/fapi/v1/exchangeInfo",
        ):
            _, headers, _ = get(base + path)
            assert "X-MBX-USED-WEIGHT" not in headers
            fapi.append(int(headers["X-MBX-USED-WEIGHT-1M"]))
        assert fapi == [1, 6, 7, 17, 18]  # its own budget, separate from spot
        clock.value += 60  # next minute: counting starts again
        _, headers, _ = get(base + "/api/v3/klines?symbol=AAAUSDT&interval=1h&limit=3")
        assert headers["X-MBX-USED-WEIGHT-1M"] == "2"
        stats = exchange.stats()
        assert stats["max_weight_per_minute"] == {"spot": 108, "futures": 18}
        assert stats["requests"]["/api/v3/klines"] == 2


def test_429_past_the_limit_then_418_ban(data_dir):
    clock = Clock()
    clock.value = 1_800_000_015.0  # 15 s into a minute: Retry-After is 45
    exchange = FakeExchange(
        data_dir, now=NOW, clock=clock, spot_weight_limit=5, ban_after=2, ban_seconds=300
    )
    url = None
    with exchange.running_in_thread() as base:
        url = base + "/api/v3/klines?symbol=AAAUSDT&interval=1h&limit=1"
        assert get(url)[0] == 200  # 2
        assert get(url)[0] == 200  # 4
        status, headers, body = get(url)  # 6 > 5
        assert status == 429
        assert headers["Retry-After"] == "45"
        assert json.loads(body)["code"] == -1003
        assert get(url)[0] == 429  # second strike
        status, headers, body = get(url)  # third within the minute: banned
        assert status == 418
        assert headers["Retry-After"] == "300"
        assert json.loads(body)["code"] == -1003
        clock.value += 100  # a new minute does not lift a ban
        status, headers, _ = get(url)
        assert (status, headers["Retry-After"]) == (418, "200")
        # futures is another API with its own budget and bans
        assert get(base + "/fapi/v1/premiumIndex?symbol=AAAUSDT")[0] == 200
        clock.value += 201
        assert get(url)[0] == 200
        stats = get_json(base + "/__fake__/stats")[2]
        assert stats["sent_429"]["spot"] == 2
        assert stats["sent_418"]["spot"] == 2
        post(base + "/__fake__/reset", {})
        assert exchange.stats()["sent_429"]["spot"] == 0


def test_error_timeout_and_malformed_switches(data_dir):
    exchange = FakeExchange(data_dir, now=NOW)
    with exchange.running_in_thread() as base:
        url = base + "/api/v3/klines?symbol=AAAUSDT&interval=1h&limit=2"
        post(base + "/__fake__/config", {"error_rate": 1.0})
        for _ in range(6):
            status, _, body = get(url)
            assert status in (500, 502, 503)
            assert body == b"" or body.startswith(b"<html>")
        post(base + "/__fake__/config", {"error_rate": 0, "malformed_rate": 1.0})
        for _ in range(6):
            status, _headers, body = get(url)
            assert status == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(body)
        post(
            base + "/__fake__/config",
            {"malformed_rate": 0, "timeout_rate": 1.0, "timeout_seconds": 1.0},
        )
        with pytest.raises(TimeoutError):
            get(url, timeout=0.3)  # it hangs (60 s by default), past the client's timeout
        post(base + "/__fake__/config", {"timeout_rate": 0, "latency_ms": 120})
        started = time.perf_counter()
        assert get(url)[0] == 200
        assert time.perf_counter() - started >= 0.12
        stats = exchange.stats()
        assert stats["faults"] == {"error": 6, "malformed": 6, "timeout": 1}
        assert stats["latency_ms"] == 120
        with pytest.raises(urllib.error.HTTPError):
            post(base + "/__fake__/config", {"no_such_switch": 1})


def test_agg_trades_stay_inside_their_candle(fake):
    status, headers, trades = get_json(
        f"{fake.base}/api/v3/aggTrades?symbol=AAAUSDT&startTime={T0 + 5 * HOUR}"
        f"&endTime={T0 + 6 * HOUR - 1}&limit=50"
    )
    assert status == 200
    assert headers["X-Fake-Synthetic"] == "true"
    assert 0 < len(trades) <= 50
    _, high, low, _, _ = _candle(5, 100.0)
    for trade in trades:
        assert set(trade) == {"a", "p", "q", "f", "l", "T", "m", "M"}
        assert T0 + 5 * HOUR <= trade["T"] < T0 + 6 * HOUR
        assert low <= float(trade["p"]) <= high
    assert [t["a"] for t in trades] == list(range(trades[0]["a"], trades[0]["a"] + len(trades)))
    _, _, latest = get_json(f"{fake.base}/api/v3/aggTrades?symbol=AAAUSDT&limit=3")
    assert all(t["T"] < NOW for t in latest)
    _, _, again = get_json(f"{fake.base}/api/v3/aggTrades?symbol=AAAUSDT&fromId={latest[0]['a']}")
    assert again[:3] == latest


# --- USDT-M ---------------------------------------------------------------------------------


def test_premium_index_and_funding_history(fake):
    _, _, item = get_json(f"{fake.base}/fapi/v1/premiumIndex?symbol=AAAUSDT")
    visible = [T0 + i * 8 * HOUR for i in range(ROWS // 8 + 1) if T0 + i * 8 * HOUR <= NOW]
    assert item["lastFundingRate"] == f"{0.0001 * len(visible):.8f}"
    assert float(item["markPrice"]) == _candle(ROWS - 1, 101.0)[3]
    assert item["nextFundingTime"] == visible[-1] + 8 * HOUR
    _, _, items = get_json(f"{fake.base}/fapi/v1/premiumIndex")
    assert [i["symbol"] for i in items] == ["AAAUSDT"]
    _, _, history = get_json(f"{fake.base}/fapi/v1/fundingRate?symbol=AAAUSDT&limit=2")
    assert [h["fundingTime"] for h in history] == visible[-2:]
    assert set(history[0]) == {"symbol", "fundingTime", "fundingRate", "markPrice"}


def test_funding_info_lists_the_perpetuals_not_settling_every_8h(tmp_path):
    header = "timestamp_ms,open,high,low,close,volume"
    for coin, every_hours in (("AAA", 8), ("BBB", 4)):
        lines = [",".join(map(str, (T0 + i * HOUR, *_candle(i, 10.0)))) for i in range(ROWS)]
        _write_csv(tmp_path / "spot-1h" / f"{coin}_USDT-1h.csv", header, lines)
        settlements = [
            f"{T0 + i * every_hours * HOUR},0.0001" for i in range(ROWS // every_hours + 1)
        ]
        _write_csv(
            tmp_path / "funding" / f"{coin}_USDT_USDT-8h-funding_rate.csv",
            "timestamp_ms,funding_rate",
            settlements,
        )
    with FakeExchange(tmp_path, now=NOW).running_in_thread() as base:
        status, headers, items = get_json(f"{base}/fapi/v1/fundingInfo")

    assert status == 200
    assert [(item["symbol"], item["fundingIntervalHours"]) for item in items] == [("BBBUSDT", 4)]
    assert set(items[0]) == {
        "symbol",
        "adjustedFundingRateCap",
        "adjustedFundingRateFloor",
        "fundingIntervalHours",
        "disclaimer",
    }
    assert headers["X-Fake-Synthetic-Fields"] == "adjustedFundingRateCap,adjustedFundingRateFloor"
    assert headers["X-MBX-USED-WEIGHT-1M"] == "0"


def test_each_futures_data_endpoint_answers_429_past_its_requests_per_5_minutes(data_dir):
    clock = Clock()  # 1,800,000,000: the start of a 5-minute window
    exchange = FakeExchange(
        data_dir, now=NOW, synthetic_seed=3, futures_data_requests_per_5min=2, clock=clock
    )
    query = "?symbol=AAAUSDT&period=1h&limit=2"
    with exchange.running_in_thread() as base:
        history = [get(f"{base}/futures/data/openInterestHist{query}")[0] for _ in range(3)]
        status, headers, body = get_json(f"{base}/futures/data/openInterestHist{query}")
        other, _, _ = get(f"{base}/futures/data/takerlongshortRatio{query}")
        clock.value += 300
        later, _, _ = get(f"{base}/futures/data/openInterestHist{query}")

    assert history == [200, 200, 429]
    assert (status, body["code"]) == (429, -1003)
    assert headers["Retry-After"] == "300"
    assert other == 200  # another endpoint has its own count
    assert later == 200  # a new window
    assert exchange.sent_429["futures_data"] == 2


def test_top_traders_and_all_accounts_have_their_own_long_short_ratios(seeded):
    query = "?symbol=AAAUSDT&period=1h&limit=24"
    _, _, everyone = get_json(f"{seeded.base}/futures/data/globalLongShortAccountRatio{query}")
    _, _, top = get_json(f"{seeded.base}/futures/data/topLongShortAccountRatio{query}")

    assert [row["timestamp"] for row in top] == [row["timestamp"] for row in everyone]
    assert [row["longShortRatio"] for row in top] != [row["longShortRatio"] for row in everyone]


def test_derivatives_statistics_need_a_seed(fake, seeded, data_dir):
    paths = (
        "openInterestHist",
        "globalLongShortAccountRatio",
        "topLongShortAccountRatio",
        "takerlongshortRatio",
    )
    for path in paths:
        url = f"/futures/data/{path}?symbol=AAAUSDT&period=1h&limit=5"
        status, headers, body = get_json(fake.base + url)
        assert (status, body) == (200, [])
        assert "X-Fake-Synthetic" not in headers
        status, headers, body = get_json(seeded.base + url)
        assert status == 200
        assert headers["X-Fake-Synthetic"] == "true"
        assert len(body) == 5
        assert all(row["timestamp"] <= NOW for row in body)
    status, _, body = get_json(fake.base + "/fapi/v1/openInterest?symbol=AAAUSDT")
    assert status == 400
    assert body["code"] == -4108
    status, headers, body = get_json(seeded.base + "/fapi/v1/openInterest?symbol=AAAUSDT")
    assert status == 200
    assert headers["X-Fake-Synthetic"] == "true"
    assert float(body["openInterest"]) > 0
    _, _, ratio = get_json(
        seeded.base + "/futures/data/globalLongShortAccountRatio?symbol=AAAUSDT&period=1h&limit=1"
    )
    row = ratio[0]
    assert float(row["longAccount"]) + float(row["shortAccount"]) == pytest.approx(1.0)
    status, _, body = get_json(seeded.base + "/futures/data/openInterestHist?symbol=AAAUSDT")
    assert status == 400  # period is required
    # with a seed, every spot coin has a perpetual
    _, _, info = get_json(seeded.base + "/fapi/v1/exchangeInfo")
    assert {s["symbol"] for s in info["symbols"]} == {"AAAUSDT", "BBBUSDT", "ETHUSDT"}


def test_synthetic_answers_are_deterministic_for_a_seed(seeded, data_dir):
    paths = [
        "/futures/data/openInterestHist?symbol=AAAUSDT&period=5m&limit=30",
        "/futures/data/takerlongshortRatio?symbol=BBBUSDT&period=4h&limit=3",
        "/api/v3/aggTrades?symbol=AAAUSDT&limit=20",
        "/api/v3/klines?symbol=BBBUSDT&interval=1h&limit=10",
        "/coingecko/api/v3/coins/markets?vs_currency=usd",
    ]
    first = [get(seeded.base + p)[2] for p in paths]
    other = FakeExchange(data_dir, now=NOW, synthetic_seed=7)
    with other.running_in_thread() as base:
        assert [get(base + p)[2] for p in paths] == first
    different = FakeExchange(data_dir, now=NOW, synthetic_seed=8)
    with different.running_in_thread() as base:
        assert get(base + paths[0])[2] != first[0]


# --- CoinGecko and LunarCrush ---------------------------------------------------------------


def test_coingecko_markets_and_trending(fake, seeded):
    url = "/coingecko/api/v3/coins/markets?vs_currency=usd&per_page=250&page=1"
    status, headers, coins = get_json(seeded.base + url, {"x-cg-demo-api-key": "demo"})
    assert status == 200
    assert headers["X-Fake-Synthetic"] == "true"
    by_symbol = {c["symbol"]: c for c in coins}
    assert set(by_symbol) == {"aaa", "bbb", "eth"}
    aaa = by_symbol["aaa"]
    assert aaa["current_price"] == _candle(ROWS - 1, 100.0)[3]
    for name in (
        "id",
        "name",
        "market_cap",
        "fully_diluted_valuation",
        "circulating_supply",
        "total_supply",
        "total_volume",
        "price_change_percentage_24h",
        "last_updated",
    ):
        assert name in aaa
    assert aaa["market_cap"] > 0
    assert aaa["last_updated"].endswith("Z")
    assert by_symbol["eth"]["id"] == "ethereum"
    _, _, plain = get_json(fake.base + url)
    assert all(c["market_cap"] is None and c["current_price"] > 0 for c in plain)
    _, _, page2 = get_json(seeded.base + url.replace("page=1", "page=2"))
    assert page2 == []
    status, _, trending = get_json(seeded.base + "/coingecko/api/v3/search/trending")
    assert status == 200
    assert 0 < len(trending["coins"]) <= 15
    item = trending["coins"][0]["item"]
    assert item["score"] == 0
    assert item["data"]["market_cap"].startswith("$")
    status, _, _body = get_json(seeded.base + "/coingecko/api/v3/coins/markets")
    assert status == 400


def test_coingecko_rate_limit(data_dir):
    clock = Clock()
    exchange = FakeExchange(data_dir, now=NOW, clock=clock, coingecko_calls_per_minute=2)
    with exchange.running_in_thread() as base:
        url = base + "/coingecko/api/v3/coins/markets?vs_currency=usd"
        assert get(url)[0] == 200
        assert get(url)[0] == 200
        status, headers, body = get(url)
        assert status == 429
        assert int(headers["Retry-After"]) > 0
        assert json.loads(body)["status"]["error_code"] == 429
        clock.value += 60
        assert get(url)[0] == 200


def test_lunarcrush_needs_a_key(fake, seeded):
    url = "/lunarcrush/api4/public/coins/list/v2?limit=2&sort=galaxy_score&desc=1"
    status, _, body = get_json(seeded.base + url)
    assert status == 401
    assert "error" in body
    status, _, body = get_json(seeded.base + url, {"Authorization": "Bearer "})
    assert status == 401
    status, headers, body = get_json(seeded.base + url, {"Authorization": "Bearer any-key"})
    assert status == 200
    assert headers["X-Fake-Synthetic"] == "true"
    assert body["config"]["total_rows"] == 3
    assert len(body["data"]) == 2
    coin = body["data"][0]
    for name in (
        "galaxy_score",
        "alt_rank",
        "sentiment",
        "social_volume_24h",
        "interactions_24h",
        "percent_change_24h",
        "price",
        "market_cap",
    ):
        assert name in coin
    assert coin["galaxy_score"] >= body["data"][1]["galaxy_score"]
    _, _, plain = get_json(fake.base + url, {"Authorization": "Bearer k"})
    assert all(c["galaxy_score"] is None and c["price"] > 0 for c in plain["data"])


# --- the bundled sample, the async API and aiohttp clients ----------------------------------


def test_bundled_sample_with_async_clients():
    async def scenario() -> None:
        exchange = FakeExchange(SAMPLE)
        base = await exchange.start()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(base + "/api/v3/exchangeInfo") as response:
                    info = await response.json()
                symbols = [s["symbol"] for s in info["symbols"]]
                assert len(symbols) == 46
                assert "BTCUSDT" in symbols

                async def klines(symbol: str) -> list:
                    url = f"{base}/api/v3/klines?symbol={symbol}&interval=1h&limit=100"
                    async with session.get(url) as response:
                        assert response.status == 200
                        return await response.json()

                answers = await asyncio.gather(*(klines(s) for s in symbols))
            assert all(0 < len(rows) <= 100 for rows in answers)
            assert max(rows[-1][6] for rows in answers) == exchange.now - 1
        finally:
            await exchange.stop()
        assert exchange.stats()["requests"]["/api/v3/klines"] == 46

    asyncio.run(scenario())


def test_command_line_help():
    from fakes.exchange.__main__ import build_parser

    text = build_parser().format_help()
    for option in ("--data", "--now", "--synthetic-seed", "--spot-weight-limit", "--ban-after"):
        assert option in text
