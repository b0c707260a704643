"""The fake exchange's HTTP server: Binance spot and USDT-M, CoinGecko and LunarCrush on one port.

See the package docstring for what is served and which values are synthetic.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from core.threaded_server import serve_in_thread
from fakes.exchange import synthetic as syn
from fakes.exchange.data import (
    HOUR_MS,
    Candles,
    Funding,
    Market,
    MarketData,
    load_folder,
    ms_to_iso,
    parse_now,
)

DAY_MS = 24 * HOUR_MS
MINUTE_MS = 60_000
PERPETUAL_DELIVERY = 4_133_404_800_000
STAT_PERIODS = {
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
}
SYNTHETIC = {"X-Fake-Synthetic": "true"}
JSON = "application/json"
KLINE_SYNTHETIC_FIELDS = (
    "quote_volume,number_of_trades,taker_buy_base_volume,taker_buy_quote_volume"
)

_KLINE_ROW = '[%d,"%.8f","%.8f","%.8f","%.8f","%.8f",%d,"%.8f",%d,"%.8f","%.8f","0"]'
_SPOT_TRADE = '{"a":%d,"p":"%.8f","q":"%.8f","f":%d,"l":%d,"T":%d,"m":%s,"M":true}'
_FAPI_TRADE = '{"a":%d,"p":"%.8f","q":"%.8f","f":%d,"l":%d,"T":%d,"m":%s}'
# Candles per series whose formatted aggregate trades are kept (see Series.trade_texts).
_TRADE_TEXT_CANDLES = 48
# Synthetic /futures/data answers kept (see FakeExchange._stat_rows): 2-3 kB each.
_STAT_BODIES = 20_000


def _dumps(value: Any) -> bytes:
    # orjson: the fake's own CPU shares the benchmark machine's cores with the client measured.
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def _funding_interval_ms(funding: Funding, visible: int) -> int:
    """The settlement interval of the `visible` first settlements: the last two's distance in
    whole hours (their times carry jitter), 8 h with only one."""
    if visible < 2:
        return 8 * HOUR_MS
    step = int(funding.times[visible - 1] - funding.times[visible - 2])
    return max(HOUR_MS, round(step / HOUR_MS) * HOUR_MS)


def _f8(value: float) -> str:
    return "%.8f" % value  # noqa: UP031 - the fastest exact fixed-point format


class ApiError(Exception):
    """An error answer: HTTP status and its JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers or {}


def binance_error(code: int, msg: str, status: int = 400) -> ApiError:
    return ApiError(status, {"code": code, "msg": msg})


def _invalid_symbol() -> ApiError:
    return binance_error(-1121, "Invalid symbol.")


def _int_param(query, name: str, default: int | None = None) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise binance_error(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        ) from None


def _require(query, name: str) -> str:
    value = query.get(name)
    if not value:
        raise binance_error(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


@dataclass
class Switches:
    """What `POST /__fake__/config` may change while the server runs."""

    latency_ms: float = 0.0
    path_latency_ms: dict[str, float] = field(default_factory=dict)
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 60.0
    malformed_rate: float = 0.0
    spot_weight_limit: int = 6000
    futures_weight_limit: int = 2400
    # Each /futures/data endpoint: requests per client IP and 5-minute window (weight 0).
    futures_data_requests_per_5min: int = 1000
    ban_after: int = 3
    ban_seconds: float = 120.0
    coingecko_calls_per_minute: int = 30


class Series:
    """One served candle series with the derived kline columns and a cache of formatted rows."""

    def __init__(self, candles: Candles, key: int) -> None:
        c = candles
        self.candles = c
        self.times = c.times
        # Derived columns are kept to the few that need the whole series (memory: ~500 coins
        # of 4 years fit in about 1 GB); the rest is computed per row when it is formatted.
        self.share = syn.taker_share(key, c.times, c.open, c.high, c.low, c.close).astype(
            np.float32
        )
        self._median_quote_volume: float | None = None
        self.trades = syn.trade_counts(key, c.times, c.volume, c.close)
        self.first_trade_id = np.concatenate([[0], np.cumsum(self.trades)]).astype(np.int64)
        self.key = key
        self._rows: list[bytes | None] = [None] * len(c)
        self._trade_texts: dict[tuple[int, bool], list[str]] = {}

    def _format_rows(self, i0: int, i1: int) -> None:
        """Format (and keep) klines rows i0..i1-1: whole columns at once, as Python numbers, so
        a page costs one `%` per row rather than a numpy scalar read per field."""
        c = self.candles
        part = slice(i0, i1)
        open_, high, low, close, volume = (
            np.asarray(column[part], dtype=np.float64)
            for column in (c.open, c.high, c.low, c.close, c.volume)
        )
        typical = (open_ + high + low + close) / 4
        taker = np.asarray(c.taker_buy_volume[part], dtype=np.float64)
        # NaN: the file does not say; the synthetic taker share stands in.
        taker = np.where(np.isnan(taker), volume * self.share[part].astype(np.float64), taker)
        times = np.asarray(c.times[part], dtype=np.int64)
        columns = zip(
            times.tolist(),
            open_.tolist(),
            high.tolist(),
            low.tolist(),
            close.tolist(),
            volume.tolist(),
            (times + HOUR_MS - 1).tolist(),
            (volume * typical).tolist(),
            np.asarray(self.trades[part], dtype=np.int64).tolist(),
            taker.tolist(),
            (taker * typical).tolist(),
            strict=True,
        )
        self._rows[i0:i1] = [(_KLINE_ROW % fields).encode() for fields in columns]

    def quote_volume(self, i0: int, i1: int) -> np.ndarray:
        """Estimated quote volume of candles i0..i1-1: base volume x (o+h+l+c)/4."""
        c = self.candles
        typical = (c.open[i0:i1] + c.high[i0:i1] + c.low[i0:i1] + c.close[i0:i1]) / 4.0
        return c.volume[i0:i1] * typical

    def median_quote_volume(self) -> float:
        if self._median_quote_volume is None:
            self._median_quote_volume = float(np.median(self.quote_volume(0, len(self.times))))
        return self._median_quote_volume

    def klines(self, i0: int, i1: int) -> bytes:
        rows = self._rows
        missing = [i for i in range(i0, i1) if rows[i] is None]
        if missing:
            self._format_rows(missing[0], missing[-1] + 1)
        return b"[" + b",".join(rows[i0:i1]) + b"]"  # type: ignore[arg-type]

    def price_at(self, t: int) -> float | None:
        """Close of the last candle that closed by `t`."""
        i = int(np.searchsorted(self.times, t - HOUR_MS, side="right"))
        return float(self.candles.close[i - 1]) if i else None

    def trade_stamps(self, i: int, j0: int, j1: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and times of aggregate trades j0..j1-1 of candle i (times never decrease)."""
        n = int(self.trades[i])
        j1 = min(j1, n)
        if j1 <= j0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        js = np.arange(j0, j1, dtype=np.int64)
        ids = self.first_trade_id[i] + js
        t_open = int(self.candles.times[i])
        slot = HOUR_MS / n
        stamps = t_open + np.floor((js + syn.uniform(self.key, ids, 3) * 0.999) * slot)
        return ids, stamps.astype(np.int64)

    def format_trades(
        self, i: int, ids: np.ndarray, stamps: np.ndarray, futures: bool
    ) -> list[str]:
        """The JSON texts of candle i's trades `ids` (with their `stamps`, from trade_stamps)."""
        if not len(ids):
            return []
        c = self.candles
        n = int(self.trades[i])
        t_open = int(c.times[i])
        frac = (stamps - t_open) / HOUR_MS
        o, h, lo, cl = (float(c.open[i]), float(c.high[i]), float(c.low[i]), float(c.close[i]))
        first, second = (lo, h) if cl >= o else (h, lo)
        a = 0.15 + 0.25 * float(syn.uniform(self.key, t_open, 4))
        b = 0.55 + 0.3 * float(syn.uniform(self.key, t_open, 5))
        prices = np.interp(frac, [0.0, a, b, 1.0], [o, first, second, cl])
        prices = np.clip(prices * (1 + (syn.uniform(self.key, ids, 6) - 0.5) * 4e-4), lo, h)
        qty = float(c.volume[i]) / n * (0.2 + 1.6 * syn.uniform(self.key, ids, 7))
        maker = syn.uniform(self.key, ids, 8) >= self.share[i]
        template = _FAPI_TRADE if futures else _SPOT_TRADE
        sides = ["true" if m else "false" for m in maker.tolist()]
        return [
            template % (ident, price, quantity, ident, ident, stamp, side)
            for ident, price, quantity, stamp, side in zip(
                ids.tolist(), prices.tolist(), qty.tolist(), stamps.tolist(), sides, strict=True
            )
        ]

    def trade_texts(self, i: int, ids: np.ndarray, futures: bool) -> list[str]:
        """format_trades of candle i's consecutive trades `ids`, from a per-candle cache: pages
        of one busy hour are asked for again and again (each run of a benchmark, each scan), and
        formatting is most of what answering them costs."""
        if not len(ids):
            return []
        key = (i, futures)
        texts = self._trade_texts.get(key)
        if texts is None:
            every, stamps = self.trade_stamps(i, 0, int(self.trades[i]))
            texts = self.format_trades(i, every, stamps, futures)
            if len(self._trade_texts) >= _TRADE_TEXT_CANDLES:
                self._trade_texts.clear()  # a bound on memory; refilled on demand
            self._trade_texts[key] = texts
        first = int(ids[0]) - int(self.first_trade_id[i])
        return texts[first : first + len(ids)]

    def trades_in(self, i: int, j0: int, j1: int, futures: bool) -> list[tuple[int, str]]:
        """Aggregate trades j0..j1-1 of candle i as (time, JSON text)."""
        ids, stamps = self.trade_stamps(i, j0, j1)
        return list(zip(stamps.tolist(), self.format_trades(i, ids, stamps, futures), strict=True))


@dataclass
class Perp:
    """A perpetual listed as of now: its candles (real, or spot's when synthetic)."""

    market: Market
    onboard: int
    series: Series | None
    synthetic_candles: bool


class FakeExchange:
    """A fake Binance spot + USDT-M + CoinGecko + LunarCrush server over a data folder.

    `data_dir` is a folder in the shared market-data layout (or a `MarketData` already loaded);
    `now` an ISO time, epoch ms or aware datetime (default: close of the last spot candle).
    """

    def __init__(
        self,
        data_dir: str | Path | MarketData,
        now: str | int | datetime | None = None,
        *,
        latency_ms: float = 0.0,
        error_rate: float = 0.0,
        timeout_rate: float = 0.0,
        timeout_seconds: float = 60.0,
        malformed_rate: float = 0.0,
        synthetic_seed: int | None = None,
        fault_seed: int = 0,
        spot_weight_limit: int = 6000,
        futures_weight_limit: int = 2400,
        futures_data_requests_per_5min: int = 1000,
        ban_after: int = 3,
        ban_seconds: float = 120.0,
        coingecko_calls_per_minute: int = 30,
        path_latency_ms: dict[str, float] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock  # wall clock of the rate limits (tests pass a fixed one)
        self.data = data_dir if isinstance(data_dir, MarketData) else load_folder(data_dir)
        self.seed = synthetic_seed
        self.fault_seed = fault_seed
        self.switches = Switches(
            latency_ms=latency_ms,
            path_latency_ms=dict(path_latency_ms or {}),
            error_rate=error_rate,
            timeout_rate=timeout_rate,
            timeout_seconds=timeout_seconds,
            malformed_rate=malformed_rate,
            spot_weight_limit=spot_weight_limit,
            futures_weight_limit=futures_weight_limit,
            futures_data_requests_per_5min=futures_data_requests_per_5min,
            ban_after=ban_after,
            ban_seconds=ban_seconds,
            coingecko_calls_per_minute=coingecko_calls_per_minute,
        )
        key_seed = synthetic_seed if synthetic_seed is not None else 0
        self._spot: dict[str, Series] = {}
        self._futures: dict[str, Series] = {}
        for symbol, market in self.data.markets.items():
            if market.spot is not None:
                self._spot[symbol] = Series(market.spot, syn.key_of(key_seed, symbol, "spot"))
            if market.futures is not None:
                self._futures[symbol] = Series(
                    market.futures, syn.key_of(key_seed, symbol, "futures")
                )
        # With a seed, a spot coin without futures data gets a perpetual priced from its spot
        # candles (the same Series: same rows, marked synthetic).
        self._spot_as_perp = self._spot if synthetic_seed is not None else {}
        self._routes: dict[str, tuple[str, Callable, Callable]] = self._build_routes()
        self._cache: dict[Any, Any] = {}
        self.set_now(now)
        self.reset()
        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None

    # --- time ---------------------------------------------------------------------------------

    def set_now(self, now: str | int | datetime | None) -> None:
        if now is None:
            found = self.data.last_spot_close()
            self.now = found if found is not None else int(time.time() * 1000)
        elif isinstance(now, datetime):
            self.now = int(now.timestamp() * 1000)
        elif isinstance(now, int):
            self.now = now
        else:
            self.now = parse_now(now)
        self._cache = {}

    # --- listings as of now --------------------------------------------------------------------

    def _listed_spot(self) -> dict[str, Series]:
        key = ("spot", self.now)
        if key not in self._cache:
            self._cache[key] = {
                s: series for s, series in self._spot.items() if series.candles.visible(self.now)
            }
        return self._cache[key]

    def _listed_perps(self) -> dict[str, Perp]:
        key = ("perps", self.now)
        if key in self._cache:
            return self._cache[key]
        now = self.now
        perps: dict[str, Perp] = {}
        for symbol, market in self.data.markets.items():
            starts = []
            real = self._futures.get(symbol)
            if real is not None and real.candles.visible(now):
                starts.append(int(real.times[0]))
            else:
                real = None
            if market.funding is not None and market.funding.visible(now):
                starts.append(int(market.funding.times[0]))
            spot_perp = self._spot_as_perp.get(symbol)
            if spot_perp is not None and not spot_perp.candles.visible(now):
                spot_perp = None
            if starts:
                series = real or spot_perp
                perps[symbol] = Perp(market, min(starts), series, real is None and bool(series))
            elif spot_perp is not None:
                perps[symbol] = Perp(market, int(spot_perp.times[0]), spot_perp, True)
        self._cache[key] = perps
        return perps

    # --- state and stats ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget counters, weights and bans; restart the fault dice from the seed."""
        self.rng = random.Random(self.fault_seed)  # noqa: S311 - reproducible dice, not crypto
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.weights: dict[str, dict[int, int]] = {"spot": {}, "futures": {}}
        self.max_weight = {"spot": 0, "futures": 0}
        self.sent_429 = {"spot": 0, "futures": 0, "futures_data": 0, "coingecko": 0}
        # (path, client) -> (5-minute window index, requests in it)
        self._futures_data_requests: dict[tuple[str, str], tuple[int, int]] = {}
        self.sent_418 = {"spot": 0, "futures": 0}
        self._strikes: dict[tuple[str, str], tuple[int, int]] = {}
        self._bans: dict[tuple[str, str], float] = {}
        self._coingecko_calls: dict[int, int] = {}

    def stats(self) -> dict[str, Any]:
        def minutes(table: dict[int, int]) -> dict[str, int]:
            return {
                datetime.fromtimestamp(m * 60).astimezone().isoformat(timespec="minutes"): w
                for m, w in sorted(dict(table).items())
            }

        switches = asdict(self.switches)
        return {
            "now": ms_to_iso(self.now),
            "now_ms": self.now,
            "synthetic_seed": self.seed,
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "weight_per_minute": {api: minutes(t) for api, t in self.weights.items()},
            "max_weight_per_minute": dict(self.max_weight),
            "sent_429": dict(self.sent_429),
            "sent_418": dict(self.sent_418),
            "faults": dict(self.faults),
            "active_bans": {
                f"{api} {client}": until for (api, client), until in self._bans.items()
            },
            "latency_ms": switches["latency_ms"],
            "path_latency_ms": switches["path_latency_ms"],
            "switches": switches,
            "symbols": {"spot": len(self._listed_spot()), "futures": len(self._listed_perps())},
        }

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes` (switch names as in `Switches`, plus `now`); ValueError if unknown."""
        known = {f.name: f for f in fields(Switches)}
        unknown = [k for k in changes if k not in known and k != "now"]
        if unknown:
            raise ValueError(f"unknown switch(es): {', '.join(unknown)}")
        for name, value in changes.items():
            if name == "now":
                self.set_now(value)
            elif name == "path_latency_ms":
                if not isinstance(value, dict):
                    raise ValueError("path_latency_ms must be an object {path: ms}")
                self.switches.path_latency_ms = {str(k): float(v) for k, v in value.items()}
            else:
                kind = type(getattr(Switches(), name))
                setattr(self.switches, name, kind(value))
        return asdict(self.switches)

    # --- running --------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: any free port); the base URL."""
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.base_url = f"http://{host}:{bound[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def running_in_thread(self, host: str = "127.0.0.1", port: int = 0):
        """Run the server on its own event loop in a thread; yields the base URL."""
        return serve_in_thread(self.start, self.stop, name="fake-exchange", host=host, port=port)

    run_in_thread = running_in_thread  # the name in docs/LIVE_DATA_CONTRACT.md

    def describe(self) -> str:
        synthetic = f"synthetic on (seed {self.seed})" if self.seed is not None else "synthetic off"
        return (
            f"fake exchange at {self.base_url}: {len(self._listed_spot())} spot symbols, "
            f"{len(self._listed_perps())} USDT-M perpetuals, now {ms_to_iso(self.now)}, "
            f"{synthetic}; CoinGecko at {self.base_url}/coingecko/api/v3, "
            f"LunarCrush at {self.base_url}/lunarcrush/api4, "
            f"stats at {self.base_url}/__fake__/stats"
        )

    # --- the request pipeline -----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/__fake__/"):
            return await self._control(request, path)
        self.requests[path] += 1
        response = await self._answer(request, path)
        self.statuses[response.status] += 1
        return response

    async def _answer(self, request: web.Request, path: str) -> web.StreamResponse:
        """The answer, sent once the latency has passed since the request was read.

        The fake's own computing counts inside the latency, as a real exchange's does: were it
        added on top, the fake (one process, on the client's cores) would answer slower the
        more requests are in flight, which the exchange does not."""
        sw = self.switches
        delay = sw.path_latency_ms.get(path, sw.latency_ms) / 1000
        read_at = asyncio.get_running_loop().time()
        response = await self._compute(request, path)
        if delay > 0:
            left = delay - (asyncio.get_running_loop().time() - read_at)
            if left > 0:
                await asyncio.sleep(left)
        return response

    async def _compute(self, request: web.Request, path: str) -> web.StreamResponse:
        sw = self.switches
        route = self._routes.get(path)
        if route is None or request.method not in ("GET", "HEAD"):
            return self._not_found(path, request.method)
        api, handler, weight_of = route
        query = request.query
        headers: dict[str, str] = {}
        try:
            if api in ("spot", "futures"):
                headers = self._take_weight(api, request.remote or "?", weight_of(query))
                if path.startswith("/futures/data/"):
                    self._take_futures_data_request(path, request.remote or "?")
            elif api == "coingecko":
                self._take_coingecko_call()
        except ApiError as exc:
            return web.Response(
                status=exc.status,
                body=_dumps(exc.body),
                content_type=JSON,
                headers={**headers, **exc.headers},
            )
        fault = self._roll_fault()
        if fault == "timeout":
            await asyncio.sleep(sw.timeout_seconds)
            return web.Response(status=504, body=b"", headers=headers)
        if fault == "error":
            status = self.rng.choice((500, 502, 503))
            if self.rng.random() < 0.5:
                body = f"<html><body><h1>{status} Server Error</h1></body></html>".encode()
                return web.Response(status=status, body=body, content_type="text/html")
            return web.Response(status=status, body=b"")
        try:
            status, body, extra = handler(query, request)
        except ApiError as exc:
            return web.Response(
                status=exc.status,
                body=_dumps(exc.body),
                content_type=JSON,
                headers={**headers, **exc.headers},
            )
        headers.update(extra)
        if fault == "malformed":
            if self.rng.random() < 0.5:
                body = body[: max(1, len(body) // 2)]
            else:
                body = b"<html><body>System maintenance, please retry later.</body></html>"
                return web.Response(
                    status=200, body=body, content_type="text/html", headers=headers
                )
        return web.Response(status=status, body=body, content_type=JSON, headers=headers)

    def _roll_fault(self) -> str | None:
        sw = self.switches
        for name, rate in (
            ("error", sw.error_rate),
            ("timeout", sw.timeout_rate),
            ("malformed", sw.malformed_rate),
        ):
            if rate > 0 and self.rng.random() < rate:
                self.faults[name] += 1
                return name
        return None

    def _not_found(self, path: str, method: str) -> web.Response:
        if path.startswith("/coingecko/"):
            body = {"error": "Incorrect path. Please check https://www.coingecko.com/api/"}
        elif path.startswith("/lunarcrush/"):
            body = {"error": "Not Found"}
        else:
            body = {"code": -5000, "msg": f"Path {path}, Method {method} is invalid"}
        return web.Response(status=404, body=_dumps(body), content_type=JSON)

    def _take_weight(self, api: str, client: str, weight: int) -> dict[str, str]:
        """Count `weight` for this minute; the weight headers, or ApiError 429/418."""
        sw = self.switches
        wall = self.clock()
        minute = int(wall // 60)
        retry_minute = str(max(1, int(60 - wall % 60 + 0.999)))
        ban = self._bans.get((api, client))
        if ban is not None:
            if ban > wall:
                self.sent_418[api] += 1
                raise self._banned(api, ban, wall)
            del self._bans[(api, client)]
        table = self.weights[api]
        used = table.get(minute, 0) + weight
        table[minute] = used
        for old in [m for m in table if m < minute - 120]:
            del table[old]
        self.max_weight[api] = max(self.max_weight[api], used)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if api == "spot":
            headers["X-MBX-USED-WEIGHT"] = str(used)
        limit = sw.spot_weight_limit if api == "spot" else sw.futures_weight_limit
        if used <= limit:
            return headers
        strike_minute, strikes = self._strikes.get((api, client), (minute, 0))
        strikes = strikes + 1 if strike_minute == minute else 1
        self._strikes[(api, client)] = (minute, strikes)
        if strikes > sw.ban_after:
            until = wall + sw.ban_seconds
            self._bans[(api, client)] = until
            self.sent_418[api] += 1
            error = self._banned(api, until, wall)
            error.headers.update(headers)
            raise error
        self.sent_429[api] += 1
        error = binance_error(
            -1003,
            f"Too many requests; current limit of IP({client}) is {limit} requests per minute. "
            "Please use the websocket for live updates to avoid polling the API.",
            429,
        )
        error.headers.update(headers)
        error.headers["Retry-After"] = retry_minute
        raise error

    def _take_futures_data_request(self, path: str, client: str) -> None:
        """Count one request of a /futures/data endpoint in its 5-minute window; past the
        endpoint's limit, ApiError 429 with Retry-After until the window ends."""
        wall = self.clock()
        window = int(wall // 300)
        index, count = self._futures_data_requests.get((path, client), (window, 0))
        count = count + 1 if index == window else 1
        self._futures_data_requests[(path, client)] = (window, count)
        limit = self.switches.futures_data_requests_per_5min
        if count <= limit:
            return
        self.sent_429["futures_data"] += 1
        error = binance_error(
            -1003,
            f"Too many requests; current limit of IP({client}) is {limit} requests per 5 minutes "
            f"on {path}.",
            429,
        )
        error.headers["Retry-After"] = str(max(1, int(300 - wall % 300 + 0.999)))
        raise error

    def _banned(self, api: str, until: float, wall: float) -> ApiError:
        error = binance_error(
            -1003,
            f"Way too much request weight used; IP banned until {int(until * 1000)}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            418,
        )
        error.headers["Retry-After"] = str(max(1, int(until - wall + 0.999)))
        return error

    def _take_coingecko_call(self) -> None:
        wall = self.clock()
        minute = int(wall // 60)
        calls = self._coingecko_calls.get(minute, 0) + 1
        self._coingecko_calls = {minute: calls}
        if calls > self.switches.coingecko_calls_per_minute:
            self.sent_429["coingecko"] += 1
            raise ApiError(
                429,
                {
                    "status": {
                        "error_code": 429,
                        "error_message": "You've exceeded the Rate Limit. Please visit "
                        "https://www.coingecko.com/en/api/pricing to subscribe to our API plans "
                        "for higher rate limits.",
                    }
                },
                {"Retry-After": str(max(1, int(60 - wall % 60 + 0.999)))},
            )

    async def _control(self, request: web.Request, path: str) -> web.Response:
        if path == "/__fake__/stats" and request.method == "GET":
            return web.json_response(self.stats())
        if path == "/__fake__/config" and request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise ValueError("expected a JSON object")
                applied = self.configure(changes)
            except (ValueError, TypeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response({"switches": applied, "now": ms_to_iso(self.now)})
        if path == "/__fake__/config" and request.method == "GET":
            return web.json_response(
                {"switches": asdict(self.switches), "now": ms_to_iso(self.now)}
            )
        if path == "/__fake__/reset" and request.method == "POST":
            self.reset()
            return web.json_response({"reset": True})
        return web.json_response({"error": f"no {request.method} {path}"}, status=404)

    # --- routes ---------------------------------------------------------------------------------

    def _build_routes(self) -> dict[str, tuple[str, Callable, Callable]]:
        def flat(weight: int) -> Callable:
            return lambda query: weight

        def spot_ticker_weight(query) -> int:
            if query.get("symbol"):
                return 2
            if query.get("symbols"):
                try:
                    count = len(json.loads(query["symbols"]))
                except ValueError:
                    return 2
                return 2 if count <= 20 else 40 if count <= 100 else 80
            return 80

        def fapi_klines_weight(query) -> int:
            try:
                limit = int(query.get("limit") or 500)
            except ValueError:
                limit = 500
            return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10

        def symbol_or(one: int, many: int) -> Callable:
            return lambda query: one if query.get("symbol") else many

        cg = "/coingecko/api/v3"
        return {
            "/api/v3/ping": ("spot", self._ping, flat(1)),
            "/api/v3/time": ("spot", self._time, flat(1)),
            "/api/v3/exchangeInfo": ("spot", self._spot_exchange_info, flat(20)),
            "/api/v3/klines": ("spot", self._spot_klines, flat(2)),
            "/api/v3/ticker/24hr": ("spot", self._spot_ticker, spot_ticker_weight),
            "/api/v3/ticker/price": ("spot", self._spot_price, symbol_or(2, 4)),
            "/api/v3/aggTrades": ("spot", self._spot_agg_trades, flat(4)),
            "/fapi/v1/ping": ("futures", self._ping, flat(1)),
            "/fapi/v1/time": ("futures", self._time, flat(1)),
            "/fapi/v1/exchangeInfo": ("futures", self._fapi_exchange_info, flat(1)),
            "/fapi/v1/klines": ("futures", self._fapi_klines, fapi_klines_weight),
            "/fapi/v1/ticker/24hr": ("futures", self._fapi_ticker, symbol_or(1, 40)),
            "/fapi/v1/ticker/price": ("futures", self._fapi_price, symbol_or(1, 2)),
            "/fapi/v2/ticker/price": ("futures", self._fapi_price, symbol_or(1, 2)),
            "/fapi/v1/premiumIndex": ("futures", self._premium_index, symbol_or(1, 10)),
            "/fapi/v1/fundingRate": ("futures", self._funding_rate, flat(1)),
            "/fapi/v1/fundingInfo": ("futures", self._funding_info, flat(0)),
            "/fapi/v1/openInterest": ("futures", self._open_interest, flat(1)),
            "/fapi/v1/aggTrades": ("futures", self._fapi_agg_trades, flat(20)),
            "/futures/data/openInterestHist": ("futures", self._oi_hist, flat(0)),
            "/futures/data/globalLongShortAccountRatio": (
                "futures",
                self._global_long_short,
                flat(0),
            ),
            "/futures/data/topLongShortAccountRatio": ("futures", self._top_long_short, flat(0)),
            "/futures/data/takerlongshortRatio": ("futures", self._taker_ratio, flat(0)),
            "/dapi/v1/exchangeInfo": ("coinm", self._dapi_exchange_info, flat(1)),
            cg + "/ping": ("coingecko", self._cg_ping, flat(0)),
            cg + "/coins/markets": ("coingecko", self._cg_markets, flat(0)),
            cg + "/search/trending": ("coingecko", self._cg_trending, flat(0)),
            "/lunarcrush/api4/public/coins/list/v2": ("lunarcrush", self._lc_coins, flat(0)),
        }

    # --- Binance: common -------------------------------------------------------------------------

    def _ok(self, value: Any, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
        return 200, _dumps(value), headers or {}

    def _ping(self, query, request):
        return self._ok({})

    def _time(self, query, request):
        return self._ok({"serverTime": self.now})

    def _spot_series(self, query) -> Series:
        symbol = _require(query, "symbol").upper()
        series = self._listed_spot().get(symbol)
        if series is None:
            raise _invalid_symbol()
        return series

    def _perp(self, query) -> Perp:
        symbol = _require(query, "symbol").upper()
        perp = self._listed_perps().get(symbol)
        if perp is None:
            raise _invalid_symbol()
        return perp

    def _symbols_param(self, query, listed: dict) -> list[str] | None:
        if query.get("symbol"):
            symbol = query["symbol"].upper()
            if symbol not in listed:
                raise _invalid_symbol()
            return [symbol]
        if query.get("symbols"):
            try:
                symbols = json.loads(query["symbols"])
                if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                    raise ValueError
            except ValueError:
                raise binance_error(
                    -1100, "Illegal characters found in parameter 'symbols'."
                ) from None
            for symbol in symbols:
                if symbol not in listed:
                    raise _invalid_symbol()
            return symbols
        return None

    def _rate_limits(self, api: str) -> list[dict[str, Any]]:
        if api == "spot":
            return [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.switches.spot_weight_limit,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ]
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.switches.futures_weight_limit,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ]

    @staticmethod
    def _tick(price: float) -> str:
        """A tick size of about 1e-5 of the price, as Binance's filters print it."""
        exponent = int(np.floor(np.log10(price))) - 4 if price > 0 else -8
        exponent = min(max(exponent, -8), 0)
        return _f8(10.0**exponent)

    # --- Binance spot ----------------------------------------------------------------------------

    def _spot_exchange_info(self, query, request):
        listed = self._listed_spot()
        wanted = self._symbols_param(query, listed)
        symbols = []
        for symbol in wanted if wanted is not None else listed:
            market = self.data.markets[symbol]
            series = listed[symbol]
            last = series.price_at(self.now) or 1.0
            symbols.append(
                {
                    "symbol": symbol,
                    "status": "TRADING",
                    "baseAsset": market.base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": market.quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": [
                        "LIMIT",
                        "LIMIT_MAKER",
                        "MARKET",
                        "STOP_LOSS_LIMIT",
                        "TAKE_PROFIT_LIMIT",
                    ],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "otoAllowed": True,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": True,
                    "cancelReplaceAllowed": True,
                    "amendAllowed": True,
                    "pegInstructionsAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": True,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": self._tick(last),
                            "maxPrice": _f8(last * 1000),
                            "tickSize": self._tick(last),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": self._tick(10 / last),
                            "maxQty": "9000000000.00000000",
                            "stepSize": self._tick(10 / last),
                        },
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": "5.00000000",
                            "applyMinToMarket": True,
                            "maxNotional": "9000000.00000000",
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT", "MARGIN", "TRD_GRP_004"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": [
                        "EXPIRE_TAKER",
                        "EXPIRE_MAKER",
                        "EXPIRE_BOTH",
                        "DECREMENT",
                    ],
                }
            )
        return self._ok(
            {
                "timezone": "UTC",
                "serverTime": self.now,
                "rateLimits": self._rate_limits("spot"),
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )

    def _klines(self, query, series: Series | None, max_limit: int, synthetic_all: bool):
        interval = _require(query, "interval")
        if interval != "1h":
            raise binance_error(-1120, "Invalid interval.")
        limit = _int_param(query, "limit", 500)
        if limit is None or limit <= 0:
            limit = 500
        limit = min(limit, max_limit)
        start = _int_param(query, "startTime")
        end = _int_param(query, "endTime")
        if start is not None and end is not None and start > end:
            raise binance_error(-1023, "Start time is greater than end time.")
        headers = {**SYNTHETIC, "X-Fake-Synthetic-Fields": KLINE_SYNTHETIC_FIELDS}
        if synthetic_all:
            headers["X-Fake-Synthetic-Fields"] = "all"
        if series is None:
            return 200, b"[]", headers
        times = series.times
        hi = series.candles.visible(self.now)
        if end is not None:
            hi = min(hi, int(np.searchsorted(times, end, side="right")))
        if start is not None:
            lo = int(np.searchsorted(times, start, side="left"))
            hi = min(hi, lo + limit)
        else:
            lo = max(0, hi - limit)
        if hi <= lo:
            return 200, b"[]", headers
        return 200, series.klines(lo, hi), headers

    def _spot_klines(self, query, request):
        series = self._spot_series(query)
        return self._klines(query, series, 1000, False)

    def _window(self, series: Series) -> tuple[int, int]:
        """Indexes [i0, i1) of the closed candles of the last 24 hours as of now."""
        i1 = series.candles.visible(self.now)
        i0 = int(np.searchsorted(series.times, self.now - DAY_MS, side="left"))
        return min(i0, i1), i1

    def _ticker(self, symbol: str, series: Series, futures: bool) -> dict[str, Any]:
        c = series.candles
        i0, i1 = self._window(series)
        last = float(c.close[i1 - 1]) if i1 else 0.0
        if i1 > i0:
            open_ = float(c.open[i0])
            high = float(c.high[i0:i1].max())
            low = float(c.low[i0:i1].min())
            volume = float(c.volume[i0:i1].sum())
            quote = float(series.quote_volume(i0, i1).sum())
            first_id = int(series.first_trade_id[i0])
            last_id = int(series.first_trade_id[i1]) - 1
            count = last_id - first_id + 1
            if count <= 0:
                first_id = last_id = -1
                count = 0
        else:
            open_ = high = low = last
            volume = quote = 0.0
            first_id = last_id = -1
            count = 0
        change = last - open_
        percent = change / open_ * 100 if open_ else 0.0
        average = quote / volume if volume else 0.0
        last_qty = float(c.volume[i1 - 1]) / max(1, int(series.trades[i1 - 1])) if i1 else 0.0
        item: dict[str, Any] = {
            "symbol": symbol,
            "priceChange": _f8(change),
            "priceChangePercent": f"{percent:.3f}",
            "weightedAvgPrice": _f8(average),
            "prevClosePrice": _f8(float(c.close[i0 - 1]) if i0 else 0.0),
            "lastPrice": _f8(last),
            "lastQty": _f8(last_qty),
            "bidPrice": _f8(last),
            "bidQty": _f8(last_qty * 3),
            "askPrice": _f8(last),
            "askQty": _f8(last_qty * 2),
            "openPrice": _f8(open_),
            "highPrice": _f8(high),
            "lowPrice": _f8(low),
            "volume": _f8(volume),
            "quoteVolume": _f8(quote),
            "openTime": self.now - DAY_MS,
            "closeTime": self.now - 1,
            "firstId": first_id,
            "lastId": last_id,
            "count": count,
        }
        if futures:
            for name in ("prevClosePrice", "bidPrice", "bidQty", "askPrice", "askQty"):
                del item[name]
        return item

    def _spot_ticker(self, query, request):
        listed = self._listed_spot()
        wanted = self._symbols_param(query, listed)
        headers = {
            **SYNTHETIC,
            "X-Fake-Synthetic-Fields": "quoteVolume,weightedAvgPrice,lastQty,bidPrice,bidQty,"
            "askPrice,askQty,firstId,lastId,count",
        }
        if query.get("symbol"):
            symbol = wanted[0]
            return self._ok(self._ticker(symbol, listed[symbol], False), headers)
        symbols = wanted if wanted is not None else list(listed)
        return self._ok([self._ticker(s, listed[s], False) for s in symbols], headers)

    def _spot_price(self, query, request):
        listed = self._listed_spot()
        wanted = self._symbols_param(query, listed)

        def item(symbol: str) -> dict[str, str]:
            return {"symbol": symbol, "price": _f8(listed[symbol].price_at(self.now) or 0.0)}

        if query.get("symbol"):
            return self._ok(item(wanted[0]))
        return self._ok([item(s) for s in (wanted if wanted is not None else listed)])

    def _agg_trades(self, query, series: Series, futures: bool):
        limit = _int_param(query, "limit", 500) or 500
        limit = max(1, min(limit, 1000))
        from_id = _int_param(query, "fromId")
        start = _int_param(query, "startTime")
        end = _int_param(query, "endTime")
        if start is not None and end is not None and end - start > HOUR_MS:
            raise binance_error(-1127, "More than 1 hours between startTime and endTime.")
        headers = {**SYNTHETIC, "X-Fake-Synthetic-Fields": "all"}
        visible = series.candles.visible(self.now)
        if visible == 0:
            return 200, b"[]", headers
        times = series.times
        out: list[str] = []
        if from_id is not None or start is not None:
            if from_id is not None:
                i = int(np.searchsorted(series.first_trade_id, from_id, side="right")) - 1
                i = max(i, 0)
                j = max(0, from_id - int(series.first_trade_id[i]))
            else:
                i = max(0, int(np.searchsorted(times, start, side="right")) - 1)
                j = 0
            while i < visible and len(out) < limit:
                if start is not None and from_id is None and int(times[i]) + HOUR_MS <= start:
                    i, j = i + 1, 0
                    continue
                if end is not None and int(times[i]) > end:
                    break
                # Times are computed for the rest of the candle (cheap); only the trades
                # answered are formatted.
                ids, stamps = series.trade_stamps(i, j, int(series.trades[i]))
                k0 = 0
                if start is not None and from_id is None:
                    k0 = int(np.searchsorted(stamps, start, side="left"))
                k1 = len(stamps)
                if end is not None:
                    k1 = int(np.searchsorted(stamps, end, side="right"))
                k1 = max(k0, min(k1, k0 + limit - len(out)))
                out += series.trade_texts(i, ids[k0:k1], futures)
                if end is not None and k1 < len(stamps) and stamps[k1] > end:
                    break  # times never decrease: nothing later is inside endTime
                i, j = i + 1, 0
        else:
            # The most recent `limit` trades (before endTime, if given).
            hi = visible
            if end is not None:
                hi = min(hi, int(np.searchsorted(times, end, side="right")))
            collected: list[str] = []
            i = hi - 1
            while i >= 0 and len(collected) < limit:
                n = int(series.trades[i])
                ids, stamps = series.trade_stamps(i, max(0, n - limit * 4 - 16), n)
                k1 = len(stamps) if end is None else int(np.searchsorted(stamps, end, "right"))
                # Only the newest trades still wanted are formatted (times never decrease).
                k0 = max(0, k1 - (limit - len(collected)))
                texts = series.trade_texts(i, ids[k0:k1], futures)
                collected = texts + collected
                i -= 1
            out = collected[-limit:]
        return 200, ("[" + ",".join(out) + "]").encode(), headers

    def _spot_agg_trades(self, query, request):
        return self._agg_trades(query, self._spot_series(query), False)

    # --- Binance USDT-M --------------------------------------------------------------------------

    def _fapi_exchange_info(self, query, request):
        perps = self._listed_perps()
        symbols = []
        for symbol, perp in perps.items():
            market = perp.market
            price = self._mark_price(perp)[0] or 1.0
            tick = self._tick(price)
            symbols.append(
                {
                    "symbol": symbol,
                    "pair": symbol,
                    "contractType": "PERPETUAL",
                    "deliveryDate": PERPETUAL_DELIVERY,
                    "onboardDate": perp.onboard,
                    "status": "TRADING",
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": market.base,
                    "quoteAsset": market.quote,
                    "marginAsset": market.quote,
                    "pricePrecision": max(0, -int(np.floor(np.log10(float(tick))))),
                    "quantityPrecision": 3,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": [],
                    "settlePlan": 0,
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "maxMoveOrderLimit": 10000,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": tick,
                            "maxPrice": _f8(price * 1000),
                            "tickSize": tick,
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": "0.001",
                            "maxQty": "10000000",
                            "stepSize": "0.001",
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": "0.001",
                            "maxQty": "1000000",
                            "stepSize": "0.001",
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": "5"},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": "1.0500",
                            "multiplierDown": "0.9500",
                            "multiplierDecimal": "4",
                        },
                    ],
                    "orderTypes": [
                        "LIMIT",
                        "MARKET",
                        "STOP",
                        "STOP_MARKET",
                        "TAKE_PROFIT",
                        "TAKE_PROFIT_MARKET",
                        "TRAILING_STOP_MARKET",
                    ],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                    "permissionSets": ["GRID", "COPY"],
                }
            )
        return self._ok(
            {
                "timezone": "UTC",
                "serverTime": self.now,
                "futuresType": "U_MARGINED",
                "rateLimits": self._rate_limits("futures"),
                "exchangeFilters": [],
                "assets": [
                    {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}
                ],
                "symbols": symbols,
            }
        )

    def _dapi_exchange_info(self, query, request):
        return self._ok(
            {
                "timezone": "UTC",
                "serverTime": self.now,
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": [],
            }
        )

    def _fapi_klines(self, query, request):
        perp = self._perp(query)
        return self._klines(query, perp.series, 1500, perp.synthetic_candles)

    def _fapi_ticker(self, query, request):
        perps = self._listed_perps()
        wanted = self._symbols_param(query, perps)
        with_candles = {s: p for s, p in perps.items() if p.series is not None}
        headers = {**SYNTHETIC, "X-Fake-Synthetic-Fields": "quoteVolume,lastQty,firstId,lastId"}
        if query.get("symbol"):
            perp = perps[wanted[0]]
            if perp.series is None:
                raise binance_error(-4108, "Symbol is on delivering or delivered or settle.")
            return self._ok(self._ticker(wanted[0], perp.series, True), headers)
        return self._ok([self._ticker(s, p.series, True) for s, p in with_candles.items()], headers)

    def _fapi_price(self, query, request):
        perps = self._listed_perps()
        wanted = self._symbols_param(query, perps)

        def item(symbol: str) -> dict[str, Any]:
            price = self._mark_price(perps[symbol])[0]
            return {"symbol": symbol, "price": _f8(price or 0.0), "time": self.now}

        if query.get("symbol"):
            return self._ok(item(wanted[0]))
        return self._ok([item(s) for s in perps])

    def _mark_price(self, perp: Perp) -> tuple[float | None, bool]:
        """(mark price as of now, whether it is made up)."""
        market = perp.market
        if market.mark is not None and market.mark.visible(self.now):
            return float(market.mark.close[market.mark.visible(self.now) - 1]), False
        if perp.series is not None:
            price = perp.series.price_at(self.now)
            if price is not None:
                return price, perp.synthetic_candles
        spot = self._spot.get(market.symbol)
        if spot is not None:
            price = spot.price_at(self.now)
            if price is not None:
                return price, True
        return None, True

    def _funding_now(self, perp: Perp) -> tuple[float | None, int, bool]:
        """(last funding rate as of now, next funding time, made up?)."""
        funding = perp.market.funding
        now = self.now
        if funding is not None:
            n = funding.visible(now)
            if n:
                interval = _funding_interval_ms(funding, n)
                last_time = int(funding.times[n - 1]) // 1000 * 1000
                periods = max(1, (now - last_time) // interval + 1)
                return float(funding.rates[n - 1]), last_time + periods * interval, False
        nxt = (now // (8 * HOUR_MS) + 1) * 8 * HOUR_MS
        if self.seed is None:
            return None, nxt, False
        key = syn.key_of(self.seed, perp.market.symbol, "funding")
        rate = 0.0001 + 0.00015 * float(syn.normal(key, now // (8 * HOUR_MS)))
        return rate, nxt, True

    def _funding_info(self, query, request):
        """The perpetuals whose funding, as of now, settles at another interval than 8 h: the
        ones Binance lists ("symbols that had ... fundingIntervalHours adjustment"). Rate caps
        are not in the data: the answer gives Binance's documented example (±2.5 %) and is
        marked synthetic when it lists any."""
        items = []
        for symbol, perp in self._listed_perps().items():
            funding = perp.market.funding
            n = funding.visible(self.now) if funding is not None else 0
            if not n:
                continue
            interval = _funding_interval_ms(funding, n)
            if interval != 8 * HOUR_MS:
                items.append(
                    {
                        "symbol": symbol,
                        "adjustedFundingRateCap": "0.02500000",
                        "adjustedFundingRateFloor": "-0.02500000",
                        "fundingIntervalHours": interval // HOUR_MS,
                        "disclaimer": False,
                    }
                )
        return self._ok(
            items,
            (
                {
                    **SYNTHETIC,
                    "X-Fake-Synthetic-Fields": "adjustedFundingRateCap,adjustedFundingRateFloor",
                }
                if items
                else None
            ),
        )

    def _premium(self, symbol: str, perp: Perp) -> tuple[dict[str, Any], bool]:
        mark, mark_made = self._mark_price(perp)
        rate, next_time, rate_made = self._funding_now(perp)
        spot = self._spot.get(symbol)
        index = spot.price_at(self.now) if spot is not None else None
        item = {
            "symbol": symbol,
            "markPrice": _f8(mark) if mark is not None else "",
            "indexPrice": _f8(index if index is not None else mark or 0.0),
            "estimatedSettlePrice": _f8(mark) if mark is not None else "",
            "lastFundingRate": _f8(rate) if rate is not None else "",
            "interestRate": "0.00010000",
            "nextFundingTime": next_time,
            "time": self.now,
        }
        return item, mark_made or rate_made

    def _premium_index(self, query, request):
        perps = self._listed_perps()
        if query.get("symbol"):
            perp = self._perp(query)
            item, made = self._premium(query["symbol"].upper(), perp)
            return self._ok(item, SYNTHETIC if made else None)
        items = [self._premium(s, p) for s, p in perps.items()]
        made = any(m for _, m in items)
        return self._ok([i for i, _ in items], SYNTHETIC if made else None)

    def _funding_rate(self, query, request):
        limit = _int_param(query, "limit", 100) or 100
        limit = max(1, min(limit, 1000))
        start = _int_param(query, "startTime")
        end = _int_param(query, "endTime")
        perps = self._listed_perps()
        if query.get("symbol"):
            symbols = [query["symbol"].upper()]
            if symbols[0] not in perps:
                raise _invalid_symbol()
        else:
            symbols = list(perps)
        rows: list[tuple[int, str, float, float | None]] = []
        made = False
        for symbol in symbols:
            perp = perps[symbol]
            funding = perp.market.funding
            if funding is not None and funding.visible(self.now):
                times = funding.times[: funding.visible(self.now)]
                rates = funding.rates[: len(times)]
            elif self.seed is not None:
                grid = 8 * HOUR_MS
                first = (perp.onboard // grid + 1) * grid
                times = np.arange(first, self.now + 1, grid, dtype=np.int64)
                key = syn.key_of(self.seed, symbol, "funding")
                rates = 0.0001 + 0.00015 * syn.normal(key, times // grid)
                made = True
            else:
                continue
            lo = int(np.searchsorted(times, start, side="left")) if start is not None else 0
            hi = int(np.searchsorted(times, end, side="right")) if end is not None else len(times)
            if start is None:
                lo = max(lo, hi - limit)
            hi = min(hi, lo + limit)
            for k in range(lo, hi):
                t = int(times[k])
                mark = perp.series.price_at(t + HOUR_MS) if perp.series is not None else None
                rows.append((t, symbol, float(rates[k]), mark))
        rows.sort()
        if start is None and len(rows) > limit:
            rows = rows[-limit:]
        rows = rows[:limit]
        body = [
            {
                "symbol": symbol,
                "fundingTime": t,
                "fundingRate": _f8(rate),
                "markPrice": _f8(mark) if mark is not None else "",
            }
            for t, symbol, rate, mark in rows
        ]
        return self._ok(body, SYNTHETIC if made else None)

    # --- synthetic derivatives statistics --------------------------------------------------------

    def _needs_seed(self) -> None:
        if self.seed is None:
            raise binance_error(
                -4108, "Symbol is on delivering or delivered or settle or closed or pre-trading."
            )

    def _open_interest_at(self, symbol: str, perp: Perp, times: np.ndarray):
        """(contracts, notional) of synthetic open interest at `times`; NaN where no price."""
        key = syn.key_of(self.seed or 0, symbol, "oi")
        series = perp.series
        if series is None:
            nan = np.full(len(times), np.nan)
            return nan, nan
        base = series.median_quote_volume() * 24 * (0.2 + 0.8 * float(syn.uniform(key, 0)))
        level = np.zeros(len(times))
        for k, period_days in enumerate((29.0, 7.3, 1.7, 0.31)):
            phase = float(syn.uniform(key, k, 40)) * 2 * np.pi
            level += np.sin(2 * np.pi * times / (period_days * DAY_MS) + phase) / (k + 1)
        level += (syn.uniform(key, times // 300_000, 41) - 0.5) * 0.05
        notional = base * np.exp(0.25 * level)
        idx = np.searchsorted(series.times, times - HOUR_MS, side="right") - 1
        prices = np.where(idx >= 0, series.candles.close[np.maximum(idx, 0)], np.nan)
        return notional / prices, np.where(idx >= 0, notional, np.nan)

    def _open_interest(self, query, request):
        perp = self._perp(query)
        self._needs_seed()
        symbol = query["symbol"].upper()
        stamp = self.now // 1000 * 1000 - 5
        contracts, _ = self._open_interest_at(symbol, perp, np.array([stamp], dtype=np.int64))
        if np.isnan(contracts[0]):
            raise binance_error(-4108, "Symbol is on delivering or delivered or settle.")
        body = {"openInterest": f"{contracts[0]:.3f}", "symbol": symbol, "time": stamp}
        return self._ok(body, SYNTHETIC)

    def _stat_grid(self, query) -> np.ndarray:
        period_name = _require(query, "period")
        period = STAT_PERIODS.get(period_name)
        if period is None:
            raise binance_error(-1130, "Data sent for parameter 'period' is not valid.")
        limit = _int_param(query, "limit", 30) or 30
        limit = max(1, min(limit, 500))
        start = _int_param(query, "startTime")
        end = _int_param(query, "endTime")
        latest = self.now // period * period
        oldest = (self.now - 30 * DAY_MS + period - 1) // period * period
        if end is not None:
            latest = min(latest, end // period * period)
        if start is not None:
            oldest = max(oldest, (start + period - 1) // period * period)
            latest = min(latest, oldest + (limit - 1) * period)
        else:
            oldest = max(oldest, latest - (limit - 1) * period)
        if latest < oldest:
            return np.empty(0, dtype=np.int64)
        return np.arange(oldest, latest + 1, period, dtype=np.int64)

    def _stat_rows(self, query, build, kind: str | None = None) -> tuple[int, bytes, dict]:
        """A /futures/data answer: `build(symbol, perp, grid)`'s rows, kept per `kind` (default:
        build's name), coin and window."""
        perp = self._perp(query)
        grid = self._stat_grid(query)
        if self.seed is None or perp.series is None:
            return 200, b"[]", {}
        symbol = query["symbol"].upper()
        first = int(perp.series.times[0])
        grid = grid[grid >= first]
        # A pure function of these and "now" (the seed and the data are fixed), and the fake's
        # costliest answer to make: kept, so a benchmark's repeated runs do not spend the
        # client's cores making it again.
        bodies = self._cache.setdefault("stat bodies", {})  # emptied when "now" moves
        key = (kind or build.__qualname__, symbol, int(grid[0]) if len(grid) else 0, len(grid))
        body = bodies.get(key)
        if body is None:
            if len(bodies) >= _STAT_BODIES:
                bodies.clear()  # a bound on memory; refilled on demand
            body = bodies[key] = _dumps(build(symbol, perp, grid))
        return 200, body, dict(SYNTHETIC)

    def _oi_hist(self, query, request):
        def build(symbol: str, perp: Perp, grid: np.ndarray) -> list[dict[str, Any]]:
            contracts, notional = self._open_interest_at(symbol, perp, grid)
            key = syn.key_of(self.seed or 0, symbol, "supply")
            spot = self._spot.get(symbol)
            price = (spot or perp.series).price_at(self.now) or 1.0
            supply = syn.supply(key, price, perp.series.median_quote_volume() * 24)
            return [
                {
                    "symbol": symbol,
                    "sumOpenInterest": _f8(contracts[k]),
                    "sumOpenInterestValue": _f8(notional[k]),
                    "CMCCirculatingSupply": f"{supply['circulating_supply']:.3f}",
                    "timestamp": int(grid[k]),
                }
                for k in range(len(grid))
                if not np.isnan(contracts[k])
            ]

        return self._stat_rows(query, build)

    def _global_long_short(self, query, request):
        return self._long_short(query, "longshort", spread=0.12)

    def _top_long_short(self, query, request):
        # Top traders (the largest 20 % of margin balances) lean harder than all accounts.
        return self._long_short(query, "toplongshort", spread=0.16)

    def _long_short(self, query, kind: str, *, spread: float) -> tuple[int, bytes, dict]:
        """Account long/short ratio rows: a long share of 0.5 + `spread` x a sum of slow waves
        and noise (seeded per coin and `kind`), kept within 0.2-0.8."""

        def build(symbol: str, perp: Perp, grid: np.ndarray) -> list[dict[str, Any]]:
            key = syn.key_of(self.seed or 0, symbol, kind)
            level = np.zeros(len(grid))
            for k, period_days in enumerate((11.0, 2.9, 0.7)):
                phase = float(syn.uniform(key, k, 50)) * 2 * np.pi
                level += np.sin(2 * np.pi * grid / (period_days * DAY_MS) + phase) / (k + 1)
            level += (syn.uniform(key, grid // 300_000, 51) - 0.5) * 0.2
            long_share = np.clip(0.5 + spread * level, 0.2, 0.8)
            return [
                {
                    "symbol": symbol,
                    "longShortRatio": f"{long_share[k] / (1 - long_share[k]):.4f}",
                    "longAccount": f"{long_share[k]:.4f}",
                    "shortAccount": f"{1 - long_share[k]:.4f}",
                    "timestamp": int(grid[k]),
                }
                for k in range(len(grid))
            ]

        return self._stat_rows(query, build, kind)

    def _taker_ratio(self, query, request):
        period = STAT_PERIODS.get(query.get("period", ""), HOUR_MS)

        def build(symbol: str, perp: Perp, grid: np.ndarray) -> list[dict[str, Any]]:
            series = perp.series
            key = syn.key_of(self.seed or 0, symbol, "taker")
            rows = []
            for t in grid.tolist():
                # the period ending at t; hourly candles overlapping it, pro rata
                lo = int(np.searchsorted(series.times, t - period - HOUR_MS + 1, side="left"))
                hi = int(np.searchsorted(series.times, t - HOUR_MS, side="right"))
                if hi <= lo:
                    continue
                starts = series.times[lo:hi]
                overlap = np.minimum(starts + HOUR_MS, t) - np.maximum(starts, t - period)
                share = np.clip(overlap / HOUR_MS, 0.0, 1.0)
                volume = float((series.candles.volume[lo:hi] * share).sum())
                buy_share = float((series.share[lo:hi] * share).sum() / max(share.sum(), 1e-9))
                buy_share += (float(syn.uniform(key, t // 300_000, 60)) - 0.5) * 0.04
                buy = volume * buy_share
                sell = volume - buy
                rows.append(
                    {
                        "buySellRatio": f"{buy / sell:.4f}" if sell > 0 else "0.0000",
                        "buyVol": f"{buy:.4f}",
                        "sellVol": f"{sell:.4f}",
                        "timestamp": t,
                    }
                )
            return rows

        return self._stat_rows(query, build)

    def _fapi_agg_trades(self, query, request):
        perp = self._perp(query)
        if perp.series is None:
            return 200, b"[]", {}
        return self._agg_trades(query, perp.series, True)

    # --- CoinGecko ------------------------------------------------------------------------------

    def _cg_ping(self, query, request):
        return self._ok({"gecko_says": "(V3) To the Moon!"})

    def _change(self, series: Series, hours: int) -> float | None:
        """Percent change of the close over the last `hours` hours as of now."""
        i1 = series.candles.visible(self.now)
        if not i1:
            return None
        i0 = int(np.searchsorted(series.times, self.now - hours * HOUR_MS - HOUR_MS, side="right"))
        if i0 == 0:
            return None
        before = float(series.candles.close[i0 - 1])
        last = float(series.candles.close[i1 - 1])
        return round((last / before - 1) * 100, 5) if before else None

    def _coin_rows(self) -> list[dict[str, Any]]:
        """Facts and (with a seed) made-up values of every listed USDT coin, as of now."""
        key = ("coins", self.now)
        if key in self._cache:
            return self._cache[key]
        coins = []
        for symbol, series in self._listed_spot().items():
            market = self.data.markets[symbol]
            if market.quote != "USDT":
                continue
            c = series.candles
            i0, i1 = self._window(series)
            last = float(c.close[i1 - 1])
            if i1 > i0:
                high, low = float(c.high[i0:i1].max()), float(c.low[i0:i1].min())
                volume = float(series.quote_volume(i0, i1).sum())
                open_ = float(c.open[i0])
            else:
                high = low = open_ = last
                volume = 0.0
            ath_i = int(np.argmax(c.high[:i1]))
            atl_i = int(np.argmin(c.low[:i1]))
            coin_id, name = syn.COIN_NAMES.get(market.base, (market.base.lower(), market.base))
            row = {
                "base": market.base,
                "symbol": symbol,
                "series": series,
                "id": coin_id,
                "name": name,
                "price": last,
                "high": high,
                "low": low,
                "open": open_,
                "volume": volume,
                "ath": float(c.high[ath_i]),
                "ath_date": int(c.times[ath_i]),
                "atl": float(c.low[atl_i]),
                "atl_date": int(c.times[atl_i]),
                "updated": int(c.times[i1 - 1]) + HOUR_MS,
                "supply": None,
            }
            if self.seed is not None:
                median = float(np.median(series.quote_volume(max(0, i1 - 720), i1))) * 24
                row["supply"] = syn.supply(syn.key_of(self.seed, symbol, "supply"), last, median)
            coins.append(row)
        if self.seed is not None:
            coins.sort(key=lambda r: -r["price"] * r["supply"]["circulating_supply"])
        else:
            coins.sort(key=lambda r: -r["volume"])
        self._cache[key] = coins
        return coins

    def _cg_markets(self, query, request):
        currency = query.get("vs_currency")
        if not currency:
            raise ApiError(400, {"error": "Missing parameter vs_currency"})
        if currency.lower() not in ("usd", "usdt"):
            raise ApiError(400, {"error": "invalid vs_currency"})
        try:
            per_page = max(1, min(int(query.get("per_page") or 100), 250))
            page = max(1, int(query.get("page") or 1))
        except ValueError:
            raise ApiError(400, {"error": "invalid per_page or page"}) from None
        coins = self._coin_rows()
        ranks = {r["id"]: k + 1 for k, r in enumerate(coins)} if self.seed is not None else {}
        if query.get("ids"):
            wanted = {s.strip().lower() for s in query["ids"].split(",")}
            coins = [r for r in coins if r["id"] in wanted]
        if query.get("symbols"):
            wanted = {s.strip().lower() for s in query["symbols"].split(",")}
            coins = [r for r in coins if r["base"].lower() in wanted]
        order = query.get("order", "market_cap_desc")
        if order.startswith("volume"):
            coins = sorted(coins, key=lambda r: r["volume"], reverse=order.endswith("desc"))
        elif order.startswith("id"):
            coins = sorted(coins, key=lambda r: r["id"], reverse=order.endswith("desc"))
        elif order == "market_cap_asc":
            coins = coins[::-1]
        changes = [
            p.strip() for p in query.get("price_change_percentage", "").split(",") if p.strip()
        ]
        hours = {"1h": 1, "24h": 24, "7d": 168, "14d": 336, "30d": 720, "200d": 4800, "1y": 8760}
        items = []
        for r in coins[(page - 1) * per_page : page * per_page]:
            supply = r["supply"]
            change = r["price"] - r["open"]
            percent = round(change / r["open"] * 100, 5) if r["open"] else None
            cap = fdv = cap_change = None
            if supply is not None:
                cap = round(r["price"] * supply["circulating_supply"])
                fdv = round(r["price"] * (supply["max_supply"] or supply["total_supply"]))
                cap_change = round(cap - cap / (1 + (percent or 0) / 100), 2)
            item = {
                "id": r["id"],
                "symbol": r["base"].lower(),
                "name": r["name"],
                "image": f"https://coin-images.coingecko.com/coins/images/0/large/{r['id']}.png",
                "current_price": r["price"],
                "market_cap": cap,
                "market_cap_rank": ranks.get(r["id"]),
                "fully_diluted_valuation": fdv,
                "total_volume": round(r["volume"], 2),
                "high_24h": r["high"],
                "low_24h": r["low"],
                "price_change_24h": change,
                "price_change_percentage_24h": percent,
                "market_cap_change_24h": cap_change,
                "market_cap_change_percentage_24h": percent if cap is not None else None,
                "circulating_supply": supply["circulating_supply"] if supply else None,
                "total_supply": supply["total_supply"] if supply else None,
                "max_supply": supply["max_supply"] if supply else None,
                "ath": r["ath"],
                "ath_change_percentage": round((r["price"] / r["ath"] - 1) * 100, 5),
                "ath_date": ms_to_iso(r["ath_date"]),
                "atl": r["atl"],
                "atl_change_percentage": round((r["price"] / r["atl"] - 1) * 100, 5),
                "atl_date": ms_to_iso(r["atl_date"]),
                "roi": None,
                "last_updated": ms_to_iso(r["updated"]),
            }
            for name in changes:
                if name in hours:
                    value = self._change(r["series"], hours[name])
                    item[f"price_change_percentage_{name}_in_currency"] = value
            items.append(item)
        return self._ok(items, SYNTHETIC if self.seed is not None else None)

    def _cg_trending(self, query, request):
        if self.seed is None:
            return self._ok({"coins": [], "nfts": [], "categories": []})
        coins = self._coin_rows()
        slot = self.now // (10 * MINUTE_MS)
        scored = sorted(
            coins,
            key=lambda r: -float(syn.uniform(syn.key_of(self.seed, r["symbol"], "trend"), slot)),
        )[:15]
        btc = next((r["price"] for r in coins if r["base"] == "BTC"), None)
        ranks = {r["id"]: k + 1 for k, r in enumerate(coins)}
        items = []
        for score, r in enumerate(scored):
            cap = r["price"] * r["supply"]["circulating_supply"]
            in_btc = r["price"] / btc if btc else None
            percent = (r["price"] / r["open"] - 1) * 100 if r["open"] else 0.0
            items.append(
                {
                    "item": {
                        "id": r["id"],
                        "coin_id": ranks[r["id"]],
                        "name": r["name"],
                        "symbol": r["base"],
                        "market_cap_rank": ranks[r["id"]],
                        "thumb": f"https://coin-images.coingecko.com/coins/images/0/thumb/{r['id']}.png",
                        "small": f"https://coin-images.coingecko.com/coins/images/0/small/{r['id']}.png",
                        "large": f"https://coin-images.coingecko.com/coins/images/0/large/{r['id']}.png",
                        "slug": r["id"],
                        "price_btc": in_btc,
                        "score": score,
                        "data": {
                            "price": r["price"],
                            "price_btc": f"{in_btc:.16f}" if in_btc is not None else None,
                            "price_change_percentage_24h": {"usd": round(percent, 5)},
                            "market_cap": f"${cap:,.0f}",
                            "market_cap_btc": f"{cap / btc:.2f}" if btc else None,
                            "total_volume": f"${r['volume']:,.0f}",
                            "total_volume_btc": f"{r['volume'] / btc:.2f}" if btc else None,
                            "sparkline": f"https://www.coingecko.com/coins/0/sparkline.svg?{r['id']}",
                            "content": None,
                        },
                    }
                }
            )
        return self._ok({"coins": items, "nfts": [], "categories": []}, SYNTHETIC)

    # --- LunarCrush -----------------------------------------------------------------------------

    def _lc_coins(self, query, request):
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise ApiError(401, {"error": "Unauthorized: a valid API key is required"})
        try:
            limit = max(1, min(int(query.get("limit") or 10), 1000))
            page = max(0, int(query.get("page") or 0))
        except ValueError:
            raise ApiError(400, {"error": "invalid limit or page"}) from None
        sort = query.get("sort", "market_cap_rank")
        desc = query.get("desc", "").lower() in ("1", "true", "yes")
        coins = self._coin_rows()
        btc = next((r["price"] for r in coins if r["base"] == "BTC"), None)
        total_cap = sum(
            r["price"] * r["supply"]["circulating_supply"] for r in coins if r["supply"]
        )
        slot = self.now // (10 * MINUTE_MS)
        rows = []
        for rank, r in enumerate(coins, start=1):
            series = r["series"]
            i0, i1 = self._window(series)
            closes = series.candles.close[max(0, i0 - 1) : i1]
            returns = np.diff(np.log(closes)) if len(closes) > 1 else np.zeros(1)
            supply = r["supply"]
            cap = r["price"] * supply["circulating_supply"] if supply else None
            item: dict[str, Any] = {
                "id": rank,
                "symbol": r["base"],
                "name": r["name"],
                "price": r["price"],
                "price_btc": r["price"] / btc if btc else None,
                "volume_24h": round(r["volume"], 2),
                "volatility": round(float(np.std(returns)), 6),
                "circulating_supply": supply["circulating_supply"] if supply else None,
                "max_supply": supply["max_supply"] if supply else None,
                "percent_change_1h": self._change(series, 1),
                "percent_change_24h": self._change(series, 24),
                "percent_change_7d": self._change(series, 168),
                "percent_change_30d": self._change(series, 720),
                "market_cap": round(cap, 2) if cap is not None else None,
                "market_cap_rank": rank if supply else None,
                "interactions_24h": None,
                "social_volume_24h": None,
                "social_dominance": None,
                "market_dominance": round(cap / total_cap * 100, 4) if cap and total_cap else None,
                "market_dominance_prev": None,
                "galaxy_score": None,
                "galaxy_score_previous": None,
                "alt_rank": None,
                "alt_rank_previous": None,
                "sentiment": None,
                "categories": "",
                "blockchains": [],
                "last_updated_price": r["updated"] // 1000,
                "last_updated_price_by": "fake_exchange",
                "topic": f"{r['base'].lower()} {r['id'].replace('-', ' ')}",
                "logo": f"https://cdn.lunarcrush.com/{r['id']}.png",
            }
            if self.seed is not None:
                item.update(syn.social(syn.key_of(self.seed, r["symbol"], "social"), slot))
                item["market_dominance_prev"] = item["market_dominance"]
            rows.append(item)
        if rows and sort in rows[0]:

            def sort_key(item: dict[str, Any]) -> tuple[bool, Any]:
                value = item[sort]
                return (value is None, value if value is not None else 0)

            rows.sort(key=sort_key, reverse=desc)
            if desc:  # keep missing values last
                rows.sort(key=lambda item: item[sort] is None)
        body = {
            "config": {
                "sort": sort,
                "desc": desc,
                "limit": limit,
                "page": page,
                "total_rows": len(rows),
                "generated": self.now // 1000,
            },
            "data": rows[page * limit : (page + 1) * limit],
        }
        return self._ok(body, SYNTHETIC if self.seed is not None else None)
