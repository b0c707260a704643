"""The replay's in-process path (`--speed max`) runs the services the tasks run: on days of the
bundled sample it records the same scan results, rankings, signals and outcome checks as the
pipeline through Celery (`--speed N`: each scan a chord on the worker, each batch of checks a
task), to the last digit."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from alerts.models import Alert
from cryptosatx.models import ReplayProgress
from scanners.models import ScanResult, ScanRun
from scoring.models import RankedRun, UnifiedRanking
from tracking.models import OutcomeCheck, OutcomeRollup, Signal

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
COINS = ("BTC", "ETH", "SOL", "DOGE", "PEPE", "WIF")
PERIOD = ("--start", "2024-03-04", "--end", "2024-03-06T12:00Z")


@pytest.fixture
def sample_coins(replay_settings):
    files = [SAMPLE / "spot-1h" / f"{base}_USDT-1h.csv.gz" for base in COINS]
    call_command("import_ohlcv", *files, stdout=StringIO(), stderr=StringIO())
    return ",".join(f"{base}/USDT" for base in COINS)


def replay(symbols: str, speed: str) -> None:
    call_command(
        "replay", *PERIOD, "--symbols", symbols, "--speed", speed,
        stdout=StringIO(), stderr=StringIO(),
    )  # fmt: skip


def answers() -> dict[str, list]:
    """Everything a replay decides, in an order that does not depend on ids."""
    return {
        "results": sorted(
            ScanResult.objects.values_list(
                "run__scanner",
                "scanner",
                "symbol",
                "as_of",
                "direction",
                "scores",
                "component",
                "inputs",
                "completeness",
            ),
            key=repr,
        ),
        "rankings": sorted(
            UnifiedRanking.objects.values_list(
                "symbol",
                "hour",
                "as_of",
                "direction",
                "unified_score",
                "score_long",
                "score_short",
                "tier",
                "confirmations",
                "breakdown",
                "enters_signal_tier",
                "signal_decided",
            ),
            key=repr,
        ),
        "signals": sorted(
            Signal.objects.values_list(
                "scanner",
                "symbol",
                "direction",
                "as_of",
                "entry_price",
                "tier",
                "scanner_score",
                "unified_score",
            ),
            key=repr,
        ),
        "checks": sorted(
            OutcomeCheck.objects.values_list(
                "signal__scanner",
                "signal__symbol",
                "signal__as_of",
                "horizon",
                "status",
                "outcome",
                "exit_price",
                "return_pct",
                "mfe_pct",
                "mae_pct",
            ),
            key=repr,
        ),
    }


def forget_the_replay() -> None:
    for model in (Alert, OutcomeCheck, OutcomeRollup, Signal, RankedRun, UnifiedRanking, ScanRun):
        model.objects.all().delete()
    ReplayProgress.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_the_in_process_replay_records_what_the_pipeline_through_celery_records(sample_coins):
    replay(sample_coins, "max")
    in_process = answers()
    forget_the_replay()

    replay(sample_coins, "100000")  # an hour in 0.036 s at most: through the worker, as fast

    assert in_process["signals"], "the period must give signals to compare"
    assert in_process["checks"]
    assert answers() == in_process
