"""Beat's fixed schedule (celeryconfig.build_beat_schedule) for the trade tallies."""

from __future__ import annotations

from datetime import timedelta


def test_a_live_source_refreshes_the_trade_tallies_on_its_interval(settings) -> None:
    from celeryconfig import build_beat_schedule

    settings.MARKET_SOURCE = "binance"
    settings.TRADE_TALLY_REFRESH_SECONDS = 300
    entry = build_beat_schedule()["refresh-trade-tallies"]
    assert entry["task"] == "scanners.refresh_trade_tallies"
    assert entry["schedule"] == timedelta(seconds=300)
    assert entry["options"] == {"expires": 300}  # a late tick is dropped, not stacked


def test_no_tally_refresh_when_switched_off_or_in_a_replay(settings) -> None:
    from celeryconfig import build_beat_schedule

    settings.MARKET_SOURCE = "binance"
    settings.TRADE_TALLY_REFRESH_SECONDS = 0
    assert "refresh-trade-tallies" not in build_beat_schedule()
    settings.MARKET_SOURCE = "replay"  # trades come from the replayed files
    settings.TRADE_TALLY_REFRESH_SECONDS = 600
    assert "refresh-trade-tallies" not in build_beat_schedule()
