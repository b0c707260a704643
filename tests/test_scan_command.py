"""`manage.py scan`: a scan through the embedded Celery worker, printed as a table or JSON."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from scanners.models import RunStatus, ScanRun
from tests.test_scan_pipeline import make_coins

AS_OF = "2024-01-06T00:00Z"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _one_thread_on_sqlite(settings) -> None:
    # The in-memory SQLite test database fails on concurrent writers (see test_scan_pipeline).
    if connection.vendor != "postgresql":
        settings.EMBEDDED_WORKER_THREADS = 1
    settings.SCAN_BATCH_SIZE = 2


def scan(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("scan", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_scan_json_prints_one_object_per_coin_and_scanner() -> None:
    make_coins("AAA", "BBB", "CCC")

    out, _err = scan("rsi", "--symbols", "AAA,bbb,CCC/USDT", "--as-of", AS_OF, "--json")

    rows = json.loads(out)
    assert [(row["symbol"], row["scanner"]) for row in rows] == [
        ("AAA/USDT", "rsi"),
        ("BBB/USDT", "rsi"),
        ("CCC/USDT", "rsi"),
    ]
    for row in rows:
        assert set(row) >= {"symbol", "scanner", "as_of", "scores", "direction", "completeness",
                            "inputs"}  # fmt: skip
        assert row["as_of"] == "2024-01-06T00:00:00+00:00"
        assert row["direction"] in (None, "LONG", "SHORT")
        assert 0 <= row["completeness"] <= 1
        assert isinstance(row["scores"]["rsi"], float)
        assert row["inputs"]
    run = ScanRun.objects.get()
    assert run.status == RunStatus.FINISHED
    assert run.coins_done == 3


def test_scan_prints_a_table_and_a_summary() -> None:
    make_coins("AAA")

    out, _err = scan("rsi", "--symbols", "AAA", "--as-of", AS_OF)

    assert out.splitlines()[0].split() == ["symbol", "scanner", "direction", "scores",
                                           "completeness"]  # fmt: skip
    assert "AAA/USDT" in out
    assert "finished, 1 coins done, 0 failed" in out


def test_scan_rejects_unknown_symbols_listing_them() -> None:
    make_coins("AAA")
    with pytest.raises(CommandError, match=r"unknown symbol\(s\): NOPE/USDT, ZZZ/USDT"):
        scan("rsi", "--symbols", "AAA,NOPE,ZZZ", "--as-of", AS_OF)
    assert not ScanRun.objects.exists()


def test_scan_rejects_a_bad_as_of() -> None:
    with pytest.raises(CommandError, match="not an ISO 8601 time"):
        scan("rsi", "--symbols", "AAA", "--as-of", "yesterday")
