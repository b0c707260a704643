"""`python manage.py run_embedded`: what `make run` ends with."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cryptosatx import embedded
from cryptosatx.celery import app
from cryptosatx.gc_tuning import tune_for_throughput
from cryptosatx.history_fill import HistoryFill, history_fill_due


class Command(BaseCommand):
    help = "Run web server, Celery worker and beat in one process on the in-memory broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.RUN_HOST)
        parser.add_argument("--port", type=int, default=settings.RUN_PORT)

    def handle(self, *args, host: str, port: int, **options) -> None:
        if not settings.EMBEDDED:
            raise CommandError(
                "CELERY_BROKER_URL points at a real broker: run the distributed topology with "
                "`make up` (web, workers, beat and Flower as separate processes)."
            )
        tune_for_throughput()  # this process is the worker too
        clock = _prepare_replay_clock()
        fill_due = history_fill_due() if clock is not None else None
        fill = HistoryFill(*fill_due) if fill_due else None
        base = f"http://{host}:{port}"

        def announce() -> None:
            lines = [
                "",
                "CryptoSatX is running: web server, Celery worker and beat in this process.",
                f"  Admin        {base}/admin/",
                f"  API root     {base}/api/",
                f"  API docs     {base}/api/docs/",
                f"  Health       {base}/api/health",
            ]
            if clock is not None:
                hours = settings.REPLAY_SPEED * settings.REPLAY_TICK_SECONDS / 3600
                lines.append(
                    f"  Replay       market time {clock.market_time:%Y-%m-%d %H:%M} UTC → "
                    f"{clock.end:%Y-%m-%d %H:%M}, {hours:g} market hour(s) every "
                    f"{settings.REPLAY_TICK_SECONDS:g} s"
                )
            if fill is not None:
                lines.append(
                    f"  History      filling {fill.plan.start:%Y-%m-%d} → {fill.plan.end:%Y-%m-%d} "
                    "in the background at full speed (progress here and in /api/health); the "
                    "replay clock goes on from there"
                )
            lines += ["Press Ctrl-C to stop.", ""]
            self.stdout.write("\n".join(lines))
            if fill is not None:
                fill.start()

        try:
            embedded.serve(app, host=host, port=port, on_ready=announce)
        except OSError as error:
            raise CommandError(f"cannot serve on {host}:{port}: {error}") from error
        finally:
            if fill is not None and fill.is_alive():
                fill.stop()
                fill.join()
        self.stdout.write("CryptoSatX stopped cleanly.")


def _prepare_replay_clock():
    if settings.MARKET_SOURCE != "replay":
        return None
    from market.replay_clock import ensure_clock

    return ensure_clock()
