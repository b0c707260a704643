"""`python manage.py replay_clock [--reset] [--start ISO]`: show or re-create the replay clock."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from market.replay_clock import ensure_clock, reset_clock
from market.times import parse_utc


class Command(BaseCommand):
    help = (
        "Show the replay clock. --reset re-creates it from the candle store as it is now (after "
        "importing more history); --start sets the market time it restarts at."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true")
        parser.add_argument("--start", help="market time to restart at, e.g. 2024-03-01T00:00Z")

    def handle(self, *args, reset: bool, start: str | None, **options) -> None:
        if start and not reset:
            raise CommandError("--start goes with --reset")
        start_time = None
        if start:
            try:
                start_time = parse_utc(start)
            except ValueError as error:
                raise CommandError(f"--start {start!r}: {error}") from None
        clock = reset_clock(start=start_time) if reset else ensure_clock()
        if clock is None:
            raise CommandError("the candle store holds no 1h spot candles: import some first")
        state = "finished" if clock.finished else "running"
        self.stdout.write(
            f"replay clock {clock.market_time:%Y-%m-%d %H:%M} UTC ({state}); "
            f"replay {clock.start:%Y-%m-%d %H:%M} → {clock.end:%Y-%m-%d %H:%M} UTC, "
            f"{clock.step} per tick, {clock.ticks} ticks so far"
        )
