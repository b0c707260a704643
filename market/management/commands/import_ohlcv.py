"""import_ohlcv: load candle and funding files into the candle store (see market.importing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from market.file_layouts import ImportFileError, ImportPathError
from market.importing import ImportResult, import_paths


class Command(BaseCommand):
    help = (
        "Import OHLCV candles and funding rates from CSV, CSV.gz, freqtrade JSON/JSON.gz and "
        "feather files (folders are walked recursively). Every row of a file is checked before "
        "anything is written; a file with a bad row is rejected whole and reported as "
        "'FILE: row N: reason', where row 1 is the first data row (the line after a CSV "
        "header). Gaps are reported, never filled. Exits non-zero if any file was rejected; "
        "the other files are still imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, help="files or folders to import")
        parser.add_argument(
            "--exchange",
            default=None,
            help="exchange the markets belong to (default: the EXCHANGE setting)",
        )
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="no progress bar and no line per accepted file; rejections and summary only",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["quiet"] or options["verbosity"] == 0
        exchange = options["exchange"] or settings.EXCHANGE

        def accepted(result: ImportResult) -> None:
            if not quiet:
                self.stdout.write(result.describe())

        def rejected(error: ImportFileError) -> None:
            self.stderr.write(f"REJECTED {error}")

        try:
            summary = import_paths(
                options["paths"],
                exchange=exchange,
                # The bar goes to stderr; in a log file or a pipe it would only be noise.
                progress=not quiet and self.stderr.isatty(),
                on_result=accepted,
                on_reject=rejected,
            )
        except ImportPathError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(summary.describe())
        if summary.rejected:
            raise CommandError(
                f"{len(summary.rejected)} of {len(summary.rejected) + len(summary.results)} "
                "files rejected; nothing from them was stored (the other files were imported)"
            )
