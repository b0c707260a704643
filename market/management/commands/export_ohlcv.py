"""export_ohlcv: write the candle store as CSV.gz files that import_ohlcv reads back exactly."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from market.exporting import ExportedFile, ExportError, export_store
from market.models import ImportKind, MarketType
from market.times import TIMEFRAMES, parse_utc


def _utc_time(raw: str) -> datetime:
    """An ISO 8601 time; one without a zone is UTC."""
    try:
        return parse_utc(raw)
    except ValueError as error:
        raise CommandError(str(error)) from None


class Command(BaseCommand):
    help = (
        "Export candles (and with --funding, funding rates) to OUTDIR as CSV.gz files in the "
        "layout import_ohlcv reads: BTC_USDT-1h.csv.gz, BTC_USDT_USDT-1h-futures.csv.gz, "
        "BTC_USDT_USDT-1h-mark.csv.gz, BTC_USDT_USDT-8h-funding_rate.csv.gz. Re-importing the "
        "files reproduces the stored rows exactly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("outdir", type=Path, help="folder to write to (created if missing)")
        parser.add_argument(
            "--exchange", default=None, help="exchange to export (default: the EXCHANGE setting)"
        )
        parser.add_argument(
            "--symbols",
            default="",
            help="comma-separated unified symbols, e.g. BTC/USDT,ETH/USDT:USDT (default: all)",
        )
        parser.add_argument("--market-type", choices=MarketType.values, default=None)
        parser.add_argument("--timeframe", choices=list(TIMEFRAMES), default=None)
        parser.add_argument("--since", default=None, help="first time to include (ISO 8601, UTC)")
        parser.add_argument(
            "--until", default=None, help="first time NOT to include (ISO 8601, UTC)"
        )
        parser.add_argument(
            "--funding", action="store_true", help="also export funding rates of perpetuals"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = _utc_time(options["since"]) if options["since"] else None
        until = _utc_time(options["until"]) if options["until"] else None
        if since and until and since >= until:
            raise CommandError("--since must be before --until")
        symbols = [s.strip() for s in options["symbols"].split(",") if s.strip()]

        def report(exported: ExportedFile) -> None:
            self.stdout.write(exported.describe())

        try:
            files = export_store(
                options["outdir"],
                exchange=options["exchange"] or settings.EXCHANGE,
                symbols=symbols or None,
                market_type=options["market_type"],
                timeframe=options["timeframe"],
                since=since,
                until=until,
                funding=options["funding"],
                on_file=report,
            )
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        candles = sum(f.rows for f in files if f.kind == ImportKind.CANDLES)
        rates = sum(f.rows for f in files if f.kind == ImportKind.FUNDING)
        self.stdout.write(
            f"{len(files)} files written to {options['outdir']}: {candles:,} candles, "
            f"{rates:,} funding rates"
        )
