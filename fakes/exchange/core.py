"""The fake exchange's core: what every venue shares, and the server around them.

The data and the fake now, the listings as of now, the switches, the request pipeline (Binance
weights, bans and /futures/data windows, CoinGecko's calls a minute, faults, latency), the counters,
the control plane under `/__fake__/` and running the server. The venues (`binance_spot`,
`binance_futures`, `coingecko`, `lunarcrush`) subclass `ExchangeCore`, add their handlers and
declare their paths in `_venue_routes`; `fakes.exchange.server.FakeExchange` combines them. See the
package docstring for what is served and which values are synthetic.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
from aiohttp import web

from fakes.exchange import synthetic as syn
from fakes.exchange.data import HOUR_MS, MarketData, load_folder, ms_to_iso, parse_now
from fakes.exchange.series import Perp, Series
from fakes.threaded_server import serve_in_thread

SYNTHETIC = {"X-Fake-Synthetic": "true"}
JSON = "application/json"

# A handler's answer: HTTP status, JSON body, extra headers.
Answer = tuple[int, bytes, dict[str, str]]
Query = Mapping[str, str]


def dumps(value: Any) -> bytes:
    """`value` as JSON bytes (numpy numbers and arrays included)."""
    # orjson: the fake's own CPU shares the benchmark machine's cores with the client measured.
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


class ApiError(Exception):
    """An error answer: HTTP status and its JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers or {}


def binance_error(code: int, msg: str, status: int = 400) -> ApiError:
    """Binance's error answer: `{"code": code, "msg": msg}` (the limits answer in it too)."""
    return ApiError(status, {"code": code, "msg": msg})


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


class Route(NamedTuple):
    """What answers one path: the API whose limits it counts against ("spot" and "futures":
    Binance request weight; "coingecko": calls a minute; others: none), the handler, and the
    request weight of a query."""

    api: str
    handler: Callable[[Query, web.Request], Answer]
    weight: Callable[[Query], int]


def flat(weight: int) -> Callable[[Query], int]:
    """The same request weight for every query."""
    return lambda query: weight


class ExchangeCore:
    """The shared state and the server of the fake exchange; serves no path on its own.

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
        self._routes: dict[str, Route] = self._venue_routes()
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

    def _listed_coins(self) -> list[dict[str, Any]]:
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
            i0, i1 = series.day_window(self.now)
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

    def describe(self) -> str:
        synthetic = f"synthetic on (seed {self.seed})" if self.seed is not None else "synthetic off"
        return (
            f"fake exchange at {self.base_url}: {len(self._listed_spot())} spot symbols, "
            f"{len(self._listed_perps())} USDT-M perpetuals, now {ms_to_iso(self.now)}, "
            f"{synthetic}; CoinGecko at {self.base_url}/coingecko/api/v3, "
            f"LunarCrush at {self.base_url}/lunarcrush/api4, "
            f"stats at {self.base_url}/__fake__/stats"
        )

    # --- routes ---------------------------------------------------------------------------------

    def _venue_routes(self) -> dict[str, Route]:
        """The paths served and their routes; each venue adds its own to its base classes'."""
        return {}

    def _ok(self, value: Any, headers: dict[str, str] | None = None) -> Answer:
        return 200, dumps(value), headers or {}

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
                body=dumps(exc.body),
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
                body=dumps(exc.body),
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
        return web.Response(status=404, body=dumps(body), content_type=JSON)

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
