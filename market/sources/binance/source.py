"""`BinanceSource`: the live MarketDataSource. Binance spot and USDT-M futures (see
`connection` for how its calls run and fail), CoinGecko and LunarCrush.

Point in time. Candles are served only once closed by as_of, read from and written through to the
candle store (`history`). The 24h tickers answer only for an as_of within `LIVE_TOLERANCE` of the
clock; further back they come from candles. Large trades are read into each coin's trade tally
(`trade_tally`). Funding, open interest and the long/short and taker ratios: see `derivatives`.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings

from httpengine.engine import RequestEngine
from market import candle_store
from market.file_validation import ParsedFile
from market.models import ListingSource, Market, MarketType
from market.sources.base import MarketDataSource, unique
from market.sources.binance import history
from market.sources.binance.connection import (
    FUTURES_API,
    SPOT_API,
    cache_get,
    cache_put,
    read_once,
)
from market.sources.binance.decoding import (
    AGG_TRADES_DECODER,
    HOUR,
    KLINES_DECODER,
    KLINES_PAGE,
    WEIGHT,
    Listing,
    futures_klines_weight,
    klines_table,
    parse_ticker,
    trades_table,
)
from market.sources.binance.derivatives import DerivativesReads
from market.sources.binance.history import (
    HistoryResult,
    check_candles,
    fetch_plan,
    merged,
    write_candles,
)
from market.sources.coingecko import CoinGeckoClient, bases_of
from market.sources.lunarcrush import LunarCrushClient
from market.sources.replay import tickers_from_candles
from market.sources.trade_tally import MINUTE_MS, TradeTally
from market.times import (
    datetime_to_ms,
    ms_to_datetime,
    require_aware,
    show_time,
    timeframe_duration,
)
from market.values import (
    CandleSeries,
    Fundamentals,
    LargeTrades,
    MarketInfo,
    Maybe,
    Missing,
    Social,
    Ticker,
    TrendingCoin,
)

AGG_TRADES_PAGE = 1000
# A whale window whose trades fill more pages than this is reported missing, not half-counted.
AGG_TRADES_MAX_PAGES = 30


class BinanceSource(DerivativesReads, MarketDataSource):
    """Live market data: Binance (spot + USDT-M), CoinGecko and LunarCrush; see the module.

    `clock` replaces the wall clock as `now()` (tests against a fake exchange living at another
    time); `engines` replaces the process's request engines (by name); the URLs and keys default
    to the settings.
    """

    name = "binance"
    # Every method hands its requests to the source's own event loop; calls from several threads
    # overlap their network waits there.
    parallel_reads = True

    def __init__(
        self,
        *,
        exchange: str | None = None,
        clock: Callable[[], datetime] | None = None,
        engines: dict[str, RequestEngine] | None = None,
        spot_url: str | None = None,
        futures_url: str | None = None,
        coingecko_url: str | None = None,
        coingecko_key: str | None = None,
        lunarcrush_url: str | None = None,
        lunarcrush_key: str | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(
            exchange=exchange,
            clock=clock,
            engines=engines,
            spot_url=spot_url,
            futures_url=futures_url,
            timeout=timeout,
        )
        self.coingecko = CoinGeckoClient(
            base_url=coingecko_url or settings.COINGECKO_API_URL,
            api_key=settings.COINGECKO_API_KEY if coingecko_key is None else coingecko_key,
            engine=self._engine("coingecko"),
            session=self._runtime.session,
            timeout=self.timeout,
        )
        key = settings.LUNARCRUSH_API_KEY if lunarcrush_key is None else lunarcrush_key
        self.lunarcrush = LunarCrushClient(
            base_url=lunarcrush_url or settings.LUNARCRUSH_API_URL,
            api_key=key,
            engine=self._engine("lunarcrush") if key else None,
            session=self._runtime.session,
            timeout=self.timeout,
        )

    # --- exchange metadata --------------------------------------------------------------------

    def _no_market(self, symbol: str) -> Missing:
        if ":" in symbol:
            return Missing(f"no USDT-M perpetual {symbol} on Binance")
        return Missing(f"no spot market {symbol} on Binance")

    def markets(self, *, as_of: datetime, market_type: str = MarketType.SPOT) -> list[MarketInfo]:
        require_aware(as_of)
        info = self._exchange_info()
        listings = info.futures if market_type == MarketType.FUTURES else info.spot
        listed = self._listing_times(list(listings.values()))
        result = []
        for symbol, listing in sorted(listings.items()):
            when, source = listed.get(symbol, (None, ""))
            if when is not None and when > as_of:
                continue
            result.append(
                MarketInfo(
                    exchange=self.exchange,
                    symbol=symbol,
                    base=listing.base,
                    quote=listing.quote,
                    market_type=listing.market_type,
                    listed_at=when,
                    listed_at_source=source,
                    active=listing.active,
                )
            )
        return result

    def listing_times(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[datetime]]:
        require_aware(as_of)
        symbols = unique(symbols)
        info = self._exchange_info()
        known = [info.get(symbol) for symbol in symbols]
        listed = self._listing_times([listing for listing in known if listing is not None])
        result: dict[str, Maybe[datetime]] = {}
        for symbol in symbols:
            when, _source = listed.get(symbol, (None, ""))
            if info.get(symbol) is None:
                result[symbol] = self._no_market(symbol)
            elif when is None:
                result[symbol] = Missing(f"Binance has no candle of {symbol}: listing unknown")
            elif when > as_of:
                result[symbol] = Missing(
                    f"{symbol} was listed at {show_time(when)}, after {show_time(as_of)}"
                )
            else:
                result[symbol] = when
        return result

    def _listing_times(self, listings: Sequence[Listing]) -> dict[str, tuple[datetime | None, str]]:
        """{symbol: (listed at, ListingSource)}: a perpetual's onboardDate; a spot market's
        first candle, from the store or else one klines call from time 0 (then remembered in
        Market.listed_at)."""
        result: dict[str, tuple[datetime | None, str]] = {}
        spot = []
        for listing in listings:
            if listing.market_type == MarketType.FUTURES:
                result[listing.symbol] = (listing.onboard, ListingSource.EXCHANGE)
            else:
                spot.append(listing)
        if not spot:
            return result
        rows = self._market_rows(spot)
        unknown: list[Listing] = []
        for listing in spot:
            row = rows[listing.symbol]
            # Market.listed_at, not the store's first candle: candles written through by live
            # calls cover only recent windows, and would make every coin look newly listed.
            if row.listed_at is not None:
                result[listing.symbol] = (row.listed_at, row.listed_at_source)
            else:
                unknown.append(listing)
        if unknown:
            by_symbol = {item.symbol: item for item in unknown}

            async def first_candle(symbol: str) -> Maybe[datetime]:
                listing = by_symbol[symbol]
                rows_ = await self._call(
                    SPOT_API,
                    "publicGetKlines",
                    {"symbol": listing.exchange_id, "interval": "1h", "startTime": 0, "limit": 1},
                    weight=WEIGHT["spot_klines"],
                    what=f"first kline of {symbol}",
                    decoder=KLINES_DECODER,
                )
                table = klines_table(rows_, f"first kline of {symbol}")
                if not len(table):
                    return Missing(f"Binance has no candle of {symbol}")
                return ms_to_datetime(int(table[0, 0]))

            found = self._run(
                self._each([item.symbol for item in unknown], first_candle, "first candle")
            )
            learned: list[Market] = []
            for symbol, when in found.items():
                if isinstance(when, Missing):
                    result[symbol] = (None, "")
                    continue
                row = rows[symbol]
                row.listed_at, row.listed_at_source = when, ListingSource.FIRST_CANDLE
                learned.append(row)
                result[symbol] = (when, ListingSource.FIRST_CANDLE)
            Market.objects.bulk_update(learned, ["listed_at", "listed_at_source"], batch_size=500)
        return result

    # --- candles -----------------------------------------------------------------------------

    def candles(
        self, symbols: Sequence[str], *, timeframe: str = "1h", as_of: datetime, limit: int
    ) -> dict[str, Maybe[CandleSeries]]:
        require_aware(as_of)
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        step = timeframe_duration(timeframe)
        step_ms = step // timedelta(milliseconds=1)
        symbols = unique(symbols)
        info = self._exchange_info()
        listings = {s: info.get(s) for s in symbols}
        rows = self._market_rows([item for item in listings.values() if item is not None])
        stored = candle_store.closed_candles_bulk(
            list(rows.values()), timeframe=timeframe, as_of=as_of, limit=limit
        )
        # The newest candle closed by as_of opens here.
        last_open = datetime_to_ms(as_of) // step_ms * step_ms - step_ms
        plans: dict[str, tuple[int | None, int]] = {}  # symbol -> (start ms or None, count)
        for symbol, listing in listings.items():
            if listing is None:
                continue
            row = rows[symbol]
            series = stored[row.pk]
            plan = fetch_plan(series, row, limit=limit, last_open=last_open, step_ms=step_ms)
            if plan is not None:
                plans[symbol] = plan

        fetched: dict[str, Maybe[np.ndarray]] = {}
        if plans:

            async def fetch(symbol: str) -> Maybe[np.ndarray]:
                start, count = plans[symbol]
                return await self._klines(
                    listings[symbol], timeframe, step_ms, start=start, end=last_open, count=count
                )

            # Each coin's candles are checked and written (in this thread, in the caller's
            # transaction) as soon as they arrive, while the other coins' requests are in flight.
            arrived: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
            checked: dict[str, ParsedFile] = {}
            problems: dict[str, Maybe[np.ndarray]] = {}

            async def fetch_and_hand_over(symbol: str) -> Maybe[np.ndarray]:
                table = await fetch(symbol)
                arrived.put((symbol, table))
                return table

            def write_arrived(timeout: float) -> None:
                ready: dict[str, np.ndarray] = {}
                try:
                    symbol, table = arrived.get(timeout=timeout)
                    while True:
                        if not isinstance(table, Missing):
                            ready[symbol] = table
                        symbol, table = arrived.get_nowait()
                except queue.Empty:
                    pass
                if ready:
                    done = check_candles(ready, listings, timeframe, problems)
                    write_candles(done, rows, timeframe)
                    checked.update(done)

            fetched = self._run(
                self._each(list(plans), fetch_and_hand_over, f"{timeframe} candles"),
                write_arrived,
            )
            write_arrived(0)
            fetched.update(problems)
            # The answer is built from what was just checked and written, merged with what the
            # store held (stored rows win, as INSERT OR IGNORE keeps them): no read-back.
            for symbol, parsed in checked.items():
                pk = rows[symbol].pk
                stored[pk] = merged(stored[pk], parsed, symbol, timeframe, limit)

        result: dict[str, Maybe[CandleSeries]] = {}
        for symbol in symbols:
            listing = listings[symbol]
            problem = fetched.get(symbol)
            if listing is None:
                result[symbol] = self._no_market(symbol)
            elif isinstance(problem, Missing):
                result[symbol] = problem
            elif not len(series := stored[rows[symbol].pk]):
                result[symbol] = Missing(
                    f"no {timeframe} candle of {symbol} closed at or before {show_time(as_of)}"
                )
            else:
                result[symbol] = series
        return result

    async def _klines(
        self,
        listing: Listing,
        timeframe: str,
        step_ms: int,
        *,
        start: int | None,
        end: int,
        count: int,
    ) -> np.ndarray:
        """Closed klines of one market: `count` ending at `end` (start None), or from `start`."""
        futures = listing.market_type == MarketType.FUTURES
        method = "fapiPublicGetKlines" if futures else "publicGetKlines"
        api = FUTURES_API if futures else SPOT_API
        what = f"{timeframe} klines of {listing.symbol}"
        pages: list[np.ndarray] = []
        remaining = count
        cursor_end, cursor_start = end, start
        while remaining > 0:
            page_size = min(remaining, KLINES_PAGE)
            params: dict[str, Any] = {
                "symbol": listing.exchange_id,
                "interval": timeframe,
                "limit": page_size,
                "endTime": cursor_end,
            }
            if cursor_start is not None:
                params["startTime"] = cursor_start
            weight = futures_klines_weight(page_size) if futures else WEIGHT["spot_klines"]
            raw = await self._call(
                api,
                method,
                params,
                weight=weight,
                what=what,
                follow_up=bool(pages),
                decoder=KLINES_DECODER,
            )
            table = klines_table(raw, what)
            table = table[table[:, 0] <= end]  # never the candle still open at as_of
            if cursor_start is not None:
                table = table[table[:, 0] >= cursor_start]
            else:
                table = table[table[:, 0] <= cursor_end]
            pages.append(table)
            remaining -= len(table)
            if len(raw) < page_size or not len(table):
                break
            if cursor_start is not None:
                cursor_start = int(table[-1, 0]) + step_ms
                if cursor_start > end:
                    break
            else:
                cursor_end = int(table[0, 0]) - 1
        if not pages:
            return np.empty((0, 7))
        table = np.concatenate(pages)
        table = table[np.argsort(table[:, 0], kind="stable")]
        keep = np.ones(len(table), dtype=bool)
        keep[1:] = table[1:, 0] != table[:-1, 0]
        return table[keep]

    # --- history downloads (manage.py fetch_ohlcv) ----------------------------------------------

    def fetch_history(
        self,
        symbol: str,
        *,
        timeframe: str = "1h",
        since: datetime,
        until: datetime,
        on_progress: Callable[[int], object] | None = None,
        on_plan: Callable[[int], object] | None = None,
    ) -> HistoryResult:
        """`history.fetch_history` of `symbol` through this source: download its closed candles
        opened in [since, until) into the store, resumably."""
        return history.fetch_history(
            symbol,
            timeframe=timeframe,
            since=since,
            until=until,
            listing_of=lambda name: self._exchange_info().get(name),
            market_row=lambda listing: self._market_rows([listing])[listing.symbol],
            now=self.now,
            read_klines=lambda *page, **bounds: self._run(self._klines(*page, **bounds)),
            on_progress=on_progress,
            on_plan=on_plan,
        )

    # --- tickers -----------------------------------------------------------------------------

    def tickers(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Maybe[Ticker]]:
        symbols = unique(symbols)
        if not self._live(as_of):
            return self._tickers_from_candles(symbols, as_of)
        info = self._exchange_info()
        bulk = read_once(
            self._prices,
            "tickers",
            as_of,
            lambda: self._run(self._bulk("spot_ticker_all", "publicGetTicker24hr", "24h tickers")),
        )
        result: dict[str, Maybe[Ticker]] = {}
        for symbol in symbols:
            listing = info.get(symbol)
            if listing is None:
                result[symbol] = self._no_market(symbol)
            elif isinstance(bulk, Missing):
                result[symbol] = bulk
            else:
                result[symbol] = parse_ticker(symbol, bulk.get(listing.exchange_id))
        return result

    def _tickers_from_candles(
        self, symbols: list[str], as_of: datetime
    ) -> dict[str, Maybe[Ticker]]:
        """As the replay does: rolling 24h figures from the 1h candles closed by as_of."""
        return tickers_from_candles(
            self.candles(symbols, timeframe="1h", as_of=as_of, limit=24), as_of
        )

    # --- large trades ------------------------------------------------------------------------

    def large_trades(
        self,
        symbols: Sequence[str],
        *,
        as_of: datetime,
        min_usd: float,
        window: timedelta = HOUR,
    ) -> dict[str, Maybe[LargeTrades]]:
        """Large trades of the `window` of whole minutes that ends at the last minute boundary at
        or before as_of: the minutes are the buckets of each coin's trade tally (trade_tally),
        which lets a scan read only the trades since the previous scan read that coin."""
        require_aware(as_of)
        window_ms = window // timedelta(milliseconds=1)
        if window_ms <= 0 or window_ms % MINUTE_MS:
            raise ValueError(f"the trade window must be whole minutes, got {window}")
        symbols = unique(symbols)
        info = self._exchange_info()
        listings = {s: info.get(s) for s in symbols}
        result: dict[str, Maybe[LargeTrades]] = {
            s: self._no_market(s) for s, listing in listings.items() if listing is None
        }
        known = {s: listing for s, listing in listings.items() if listing is not None}
        end_ms = datetime_to_ms(as_of) // MINUTE_MS * MINUTE_MS
        start_ms = end_ms - window_ms

        async def fetch(symbol: str) -> Maybe[LargeTrades]:
            listing = known[symbol]
            return await self._large_trades(listing, symbol, start_ms, end_ms, min_usd)

        result.update(self._run(self._each(known, fetch, "trades")))
        return {symbol: result[symbol] for symbol in symbols}

    async def _large_trades(
        self, listing: Listing, symbol: str, start_ms: int, end_ms: int, min_usd: float
    ) -> Maybe[LargeTrades]:
        """The window's large trades from the coin's tally, after reading the trades the tally
        lacks: those after its last trade id (or, for a new tally, from the window's start),
        paged by trade id until a trade after the window's end or the last trade there is."""
        key = f"tally:{listing.market_type}:{listing.exchange_id}:{min_usd:g}"
        end = ms_to_datetime(end_ms)
        tally = TradeTally.from_json(await cache_get(self._tallies, key, end))
        if tally is None or tally.min_usd != min_usd or tally.from_ms > start_ms:
            tally = TradeTally(min_usd=min_usd, from_ms=start_ms, to_ms=start_ms)
        if not tally.covers(start_ms, end_ms):
            problem = await self._read_trades(listing, tally, end_ms)
            tally.forget_before(start_ms)
            # Kept also when the window was too busy to finish: the next scan goes on from there
            # instead of reading the same pages again, and catches up.
            await cache_put(
                self._tallies, key, tally.to_json(), min(end, ms_to_datetime(tally.to_ms))
            )
            if problem is not None:
                return problem
        total, buy, sell, count = tally.window(start_ms, end_ms)
        return LargeTrades(
            symbol=symbol,
            window_start=ms_to_datetime(start_ms),
            window_end=end,
            min_usd=min_usd,
            buy_usd=buy,
            sell_usd=sell,
            total_usd=total,
            count=count,
        )

    async def _read_trades(
        self, listing: Listing, tally: TradeTally, end_ms: int
    ) -> Missing | None:
        """Read every trade after the tally's frontier up to `end_ms` into it; Missing (and the
        tally untouched) when that takes more than AGG_TRADES_MAX_PAGES pages."""
        futures = listing.market_type == MarketType.FUTURES
        method = "fapiPublicGetAggTrades" if futures else "publicGetAggTrades"
        api = FUTURES_API if futures else SPOT_API
        weight = 20 if futures else WEIGHT["spot_agg_trades"]
        what = f"aggTrades of {listing.symbol}"
        params: dict[str, Any] = {"symbol": listing.exchange_id, "limit": AGG_TRADES_PAGE}
        if tally.last_id is not None:
            params["fromId"] = tally.last_id + 1
        else:
            params["startTime"] = tally.to_ms + 1
        tables: list[np.ndarray] = []
        for page in range(AGG_TRADES_MAX_PAGES):
            data = await self._call(
                api,
                method,
                dict(params),
                weight=weight,
                what=what,
                follow_up=page > 0,
                decoder=AGG_TRADES_DECODER,
            )
            table = trades_table(data, what)
            tables.append(table)
            if len(table) < AGG_TRADES_PAGE or table[-1, 2] > end_ms:
                break
            params = {
                "symbol": listing.exchange_id,
                "fromId": int(table[-1, 3]) + 1,
                "limit": AGG_TRADES_PAGE,
            }
        else:
            most = AGG_TRADES_MAX_PAGES * AGG_TRADES_PAGE
            since = show_time(ms_to_datetime(tally.to_ms))
            # Keep what was read: every trade before the last one's millisecond (trades of that
            # millisecond may go on in the next page).
            read = np.concatenate(tables)
            tally.add(read, up_to_ms=int(read[-1, 2]) - 1)
            return Missing(
                f"{listing.symbol} traded more than {most:,} aggregate trades since {since}; "
                "too many to read in one scan (the next scan goes on from where this one stopped)"
            )
        tally.add(np.concatenate(tables), up_to_ms=end_ms)
        return None

    # --- vendors -----------------------------------------------------------------------------

    def fundamentals(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[Fundamentals]]:
        require_aware(as_of)
        return self._run(
            self.coingecko.fundamentals(bases_of(symbols), as_of=as_of, now=self.now())
        )

    def trending(self, *, as_of: datetime) -> Maybe[list[TrendingCoin]]:
        require_aware(as_of)
        return self._run(self.coingecko.trending(as_of=as_of, now=self.now()))

    def social(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Maybe[Social]]:
        require_aware(as_of)
        return self._run(self.lunarcrush.social(bases_of(symbols), as_of=as_of, now=self.now()))

    # --- reporting ---------------------------------------------------------------------------

    def unmapped_coins(self) -> list[str]:
        """Coins of the last vendor refreshes that are not on a vendor or are ambiguous there."""
        lines: list[str] = []
        for client in (self.coingecko, self.lunarcrush):
            if client.last_map is not None:
                lines += client.last_map.problems()
        return lines
