"""fetch_ohlcv: download candle history from Binance into the candle store.

    manage.py fetch_ohlcv --symbols BTC/USDT,ETH/USDT --since 2024-01-01 [--until 2024-06-01]
                          [--timeframe 1h] [--market-type spot|futures]

Goes through the live source (BinanceSource: the request engine's budget, retries and bans) in
pages of 1,000 candles. Resumable: only what the store lacks in [since, until) is fetched (before
its first candle, holes, after its last one), so an interrupted run picks up where it stopped.
Gaps the exchange has no candles for stay gaps and are reported; nothing is invented.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from httpengine.calls import RequestError
from market.models import MarketType
from market.sources.base import SourceError, perpetual_symbol
from market.sources.binance.history import HistoryResult, UnknownSymbol
from market.sources.binance.source import BinanceSource
from market.times import TIMEFRAMES, parse_utc, show_time

# Gaps listed one by one per symbol; more are summarised.
GAPS_SHOWN = 10


def _moment(text: str) -> datetime:
    """An ISO date or time; UTC when it names no zone."""
    try:
        return parse_utc(text)
    except ValueError:
        raise CommandError(
            f"{text!r} is not a date (expected e.g. 2024-01-01 or 2024-01-01T06:00)"
        ) from None


class Command(BaseCommand):
    help = (
        "Download candles from Binance into the candle store, in pages of 1,000 through the "
        "request engine. Resumable (only what the store lacks is fetched) and gap-aware (holes "
        "the exchange has no candles for are reported, never filled)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--symbols", required=True, help="comma-separated, e.g. BTC/USDT,ETH/USDT"
        )
        parser.add_argument(
            "--timeframe", default="1h", choices=list(TIMEFRAMES), help="candle timeframe"
        )
        parser.add_argument("--since", required=True, help="first open time (UTC), e.g. 2024-01-01")
        parser.add_argument("--until", default=None, help="end, exclusive (default: now)")
        parser.add_argument(
            "--market-type",
            default=MarketType.SPOT,
            choices=[MarketType.SPOT, MarketType.FUTURES],
            help="spot, or the symbols' USDT-M perpetuals",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        symbols = [s.strip().upper() for s in options["symbols"].split(",") if s.strip()]
        if not symbols or any("/" not in s for s in symbols):
            raise CommandError("--symbols takes unified symbols like BTC/USDT,ETH/USDT")
        if options["market_type"] == MarketType.FUTURES:
            symbols = [perpetual_symbol(s) for s in symbols]
        since = _moment(options["since"])
        quiet = options["quiet"] or options["verbosity"] == 0
        with BinanceSource() as source:
            until = _moment(options["until"]) if options["until"] else source.now()
            if until <= since:
                raise CommandError(f"--until ({until:%Y-%m-%d %H:%M}) is not after --since")
            failed = []
            for symbol in symbols:
                try:
                    result = self._fetch(source, symbol, options["timeframe"], since, until, quiet)
                except UnknownSymbol as error:
                    raise CommandError(f"{error}; nothing was fetched for it") from None
                except (SourceError, RequestError) as error:
                    self.stderr.write(f"{symbol}: FAILED: {error}")
                    failed.append(symbol)
                    continue
                self._report(result)
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(symbols)} symbols failed ({', '.join(failed)}); "
                "run the command again to resume them"
            )

    def _fetch(
        self,
        source: BinanceSource,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime,
        quiet: bool,
    ) -> HistoryResult:
        with tqdm(
            desc=f"{symbol} {timeframe}",
            unit="candle",
            unit_scale=True,
            disable=quiet or not self.stderr.isatty(),
            dynamic_ncols=True,
        ) as bar:

            def plan(total: int) -> None:
                bar.total = total
                bar.refresh()

            return source.fetch_history(
                symbol,
                timeframe=timeframe,
                since=since,
                until=until,
                on_plan=plan,
                on_progress=bar.update,
            )

    def _report(self, result: HistoryResult) -> None:
        label = f"{result.symbol} {result.timeframe}"
        if result.first is None:
            self.stdout.write(f"{label}: no candles on Binance in the range")
            return
        span = f"{show_time(result.first)} .. {show_time(result.last)}"
        line = (
            f"{label}: {result.inserted:,} new candles ({result.fetched:,} fetched in "
            f"{result.requests} requests); stored {span}"
        )
        if not result.gaps:
            self.stdout.write(line + ", no gaps")
            return
        self.stdout.write(
            f"{line}, {len(result.gaps)} gaps the exchange has no candles for "
            f"({result.missing_candles:,} candles missing; left as gaps):"
        )
        for gap in result.gaps[:GAPS_SHOWN]:
            self.stdout.write(
                f"  gap: {gap.missing:,} candles missing after {show_time(gap.after)}, "
                f"resumes {show_time(gap.before)}"
            )
        if len(result.gaps) > GAPS_SHOWN:
            self.stdout.write(f"  ... and {len(result.gaps) - GAPS_SHOWN} more gaps")
