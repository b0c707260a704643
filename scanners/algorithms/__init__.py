"""The scanners as pure, typed functions of point-in-time inputs.

The code contract is section 1 of docs/SCAN_PIPELINE_CONTRACT.md.

No database, no network: each `score_*` takes its input dataclass (built from a market-data
source's values by `scanners.inputs`) and a `ScannerConfig`, and returns a `ScannerResult`.
"""

from scanners.algorithms.common import (
    LONG,
    SHORT,
    Direction,
    FundingPer8h,
    Pressure,
    ScannerConfig,
    ScannerResult,
)
from scanners.algorithms.mss import MssInputs, score_mss
from scanners.algorithms.rsi import RsiInputs, rsi, score_rsi
from scanners.algorithms.smart_money import OpenInterestChange, SmartMoneyInputs, score_smart_money
from scanners.algorithms.social import LunarCrushMetrics, SocialInputs, score_social
from scanners.algorithms.volume import VolumeInputs, VolumeWindows, score_volume_spike
from scanners.algorithms.whale import WhaleInputs, WhaleTrades, score_whale

__all__ = [
    "LONG",
    "SHORT",
    "Direction",
    "FundingPer8h",
    "LunarCrushMetrics",
    "MssInputs",
    "OpenInterestChange",
    "Pressure",
    "RsiInputs",
    "ScannerConfig",
    "ScannerResult",
    "SmartMoneyInputs",
    "SocialInputs",
    "VolumeInputs",
    "VolumeWindows",
    "WhaleInputs",
    "WhaleTrades",
    "rsi",
    "score_mss",
    "score_rsi",
    "score_smart_money",
    "score_social",
    "score_volume_spike",
    "score_whale",
]
