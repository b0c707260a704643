"""A local fake of Binance spot, Binance USDT-M, CoinGecko and LunarCrush, in their wire formats.

For tests, benchmarks and demos without internet (docs/LIVE_DATA_CONTRACT.md, section 2). It serves
a data folder in the shared market-data layout (`spot-1h/`, `futures-1h/`, `funding/`) as of a fake
"now" and never anything after it. Start it with `python -m fakes.exchange --data DIR`, or
in-process::

    fake = FakeExchange("data/sample", now="2024-05-01T00:00Z", synthetic_seed=1)
    base = await fake.start()            # or: with fake.running_in_thread() as base: ...
    ...
    await fake.stop()

One base URL serves all four APIs: Binance paths as on the real hosts (`/api/v3/...`,
`/fapi/v1/...`, `/fapi/v2/ticker/price`, `/futures/data/...`), CoinGecko under
`/coingecko/api/v3`, LunarCrush under `/lunarcrush/api4`, and the control plane under `/__fake__/`
(`GET stats`, `GET|POST config`, `POST reset`).

**What is fact and what is made up.** Open, high, low, close and base volume of klines, funding
rates and mark-price candles are the data folder's, unchanged. Everything else is synthetic,
computed deterministically from `--synthetic-seed` (seed 0 when none is given, for the kline
columns below), and every answer containing such values carries the header
`X-Fake-Synthetic: true`, with `X-Fake-Synthetic-Fields` naming the fields when only some are:

* klines: taker-buy base/quote volume (the files have none, unless their `taker_buy_volume`
  column says; then it is served as is), quote volume (base volume × (o+h+l+c)/4) and the trade
  count are always estimates, so *every* klines answer is marked (`X-Fake-Synthetic-Fields:
  quote_volume,number_of_trades,taker_buy_base_volume,taker_buy_quote_volume`, or `all` for a
  perpetual priced from spot candles);
* ticker/24hr: high/low/open/last/volume are the last 24 closed candles'; bid/ask, quantities,
  trade ids and counts are made up; aggTrades are generated inside each candle's range (prices
  between its low and high, quantities summing to about its volume);
* fundingInfo lists the perpetuals whose settlements (in the data) are not 8 h apart, with that
  interval; their rate caps are made up (Binance's documented example, ±2.5 %);
* only with `--synthetic-seed`: perpetuals for spot coins without futures data (their klines are
  the spot candles), funding where the files have none, open interest, long/short ratios (all
  accounts and top traders), taker buy/sell ratios, CoinGecko supplies/market caps/FDV/ranks and
  trending, LunarCrush social metrics. Without a seed these answer as a real API does for data
  it lacks: `/futures/data/*` with `[]`, `/fapi/v1/openInterest` with 400 `{"code":-4108,...}`,
  CoinGecko and LunarCrush with `null` in those fields, trending with empty lists,
  `lastFundingRate` with `""`.

**Point in time.** Only closed candles are served (`open + 1h <= now`): the still-open candle a
real exchange adds at the end is left out, because its prices would come from after now.
Symbols are listed once their first candle (or funding settlement) is visible. Only `interval=1h`
exists (others: 400 `{"code":-1120,"msg":"Invalid interval."}`).

**Limits.** Binance request weight is counted per API (spot, futures) and client IP per wall-clock
minute with the real endpoint weights and answered in `X-MBX-USED-WEIGHT-1M` (spot also
`X-MBX-USED-WEIGHT`); past the limit: 429 + `Retry-After` + `{"code":-1003,...}`; more than
`ban_after` 429s in a minute: 418 + `Retry-After` until the ban (`ban_seconds`) ends. Each
`/futures/data/*` endpoint (weight 0) also allows a client `futures_data_requests_per_5min` (1,000)
requests per wall-clock 5 minutes; past that, 429 + `Retry-After` until the window ends. CoinGecko
answers 429 past `coingecko_calls_per_minute`. LunarCrush needs `Authorization: Bearer <any>` (else
401 `{"error": ...}`; the real error text is not documented, so the body is approximate).

**Faults.** `latency_ms` (also per path: each answer leaves that long after its request was
read, the fake's own computing included, as a real exchange's is), `error_rate` (500/502/503
with an HTML or empty body), `timeout_rate` (sleeps `timeout_seconds`, default 60, then 504),
`malformed_rate` (200 with truncated JSON or an HTML page), drawn from
`random.Random(fault_seed)`.

**Modules.** `core.py` (switches, errors, the request pipeline with limits, bans and faults, the
control plane, the fake now, listings, stats, running), one module per venue declaring its own
paths (`binance_spot.py`, `binance_futures.py` with the synthetic derivatives statistics,
`coingecko.py`, `lunarcrush.py`, and `binance_common.py` for what both Binance APIs answer alike),
`server.py` (`FakeExchange`, the four combined), `series.py` (the served candle series),
`data.py` (loading a data folder), `synthetic.py` (the made-up values).
"""

from fakes.exchange.core import Switches
from fakes.exchange.server import FakeExchange

__all__ = ["FakeExchange", "Switches"]
