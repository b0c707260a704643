"""What the unified score needs to know: component weights (fixed), tier rules and freshness.

The weights are part of the scoring contract (`docs/SCORING.md`, "Unified score"), not a setting:
changing them changes what every stored score means. The tier thresholds, the confirmations
TIER_1 needs and the completeness TIER_1 and TIER_2 need are settings of the same names
(`cryptosatx/config.py`). How old a component may be follows from its scanner's interval setting
(`*_INTERVAL_HOURS` + 1 h); MSS also stops counting once the coin is `MSS_MAX_AGE_HOURS` old.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Component name (= scanner name) → nominal weight. Order is the display order of the breakdown.
COMPONENT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "smart_money": 0.30,
        "mss": 0.25,
        "rsi": 0.15,
        "social": 0.15,
        "whale": 0.10,
        "volume": 0.05,
    }
)

# Scanners with a rule of their own, so a result of theirs can confirm a direction. Whale activity
# and the volume spike are components of the unified score only: they never confirm.
CONFIRMING_SCANNERS: frozenset[str] = frozenset({"smart_money", "mss", "rsi", "social"})

# The interval setting of the scanner that produces each component: whale activity and the volume
# spike ride along with every smart-money scan (scanners/inputs.py, RUNS).
COMPONENT_INTERVAL_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "smart_money": "SMART_MONEY_INTERVAL_HOURS",
        "mss": "MSS_DISCOVERY_INTERVAL_HOURS",
        "rsi": "RSI_SCREENER_INTERVAL_HOURS",
        "social": "SOCIAL_INTERVAL_HOURS",
        "whale": "SMART_MONEY_INTERVAL_HOURS",
        "volume": "SMART_MONEY_INTERVAL_HOURS",
    }
)
# A result counts while it is at most its scanner's interval plus this old: one missed or late scan
# is tolerated, a scanner that stopped is not (docs/SCORING.md, "Fresh components only").
FRESHNESS_GRACE_HOURS = 1.0
# The default intervals (the settings' defaults), so `ScoringConfig()` is the documented behaviour.
DEFAULT_INTERVAL_HOURS: Mapping[str, float] = MappingProxyType(
    {"smart_money": 1.0, "mss": 6.0, "rsi": 4.0, "social": 2.0, "whale": 1.0, "volume": 1.0}
)

_WEIGHT_SUM_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ScoringConfig:
    """Every number the unified score uses. Build it with `ScoringConfig.from_settings()`.

    The defaults equal the settings' defaults, so `ScoringConfig()` is the documented behaviour.
    """

    tier_1_min_score: float = 85.0
    tier_2_min_score: float = 70.0
    tier_3_min_score: float = 55.0
    min_confirmations_tier1: int = 2
    tier_1_min_completeness: float = 0.6
    tier_2_min_completeness: float = 0.4
    # Component name → the interval of the scanner producing it, in hours.
    interval_hours: Mapping[str, float] = field(
        default_factory=lambda: DEFAULT_INTERVAL_HOURS, hash=False
    )
    mss_max_age_hours: float = 72.0
    weights: Mapping[str, float] = field(default_factory=lambda: COMPONENT_WEIGHTS, hash=False)
    confirming_scanners: frozenset[str] = CONFIRMING_SCANNERS

    def __post_init__(self) -> None:
        # A caller may pass a plain dict; keep an immutable copy so the config stays frozen.
        weights = MappingProxyType(dict(self.weights))
        object.__setattr__(self, "weights", weights)
        intervals = MappingProxyType({**DEFAULT_INTERVAL_HOURS, **self.interval_hours})
        object.__setattr__(self, "interval_hours", intervals)
        object.__setattr__(self, "confirming_scanners", frozenset(self.confirming_scanners))
        if not weights:
            raise ValueError("ScoringConfig.weights must name at least one component")
        for name, weight in weights.items():
            if not (weight > 0 and math.isfinite(weight)):
                raise ValueError(f"weight of {name!r} must be a positive number, got {weight!r}")
        total = math.fsum(weights.values())
        if abs(total - 1.0) > _WEIGHT_SUM_TOLERANCE:
            raise ValueError(f"component weights must add up to 1, they add up to {total}")
        if not (self.tier_1_min_score > self.tier_2_min_score > self.tier_3_min_score):
            raise ValueError(
                "tier thresholds must be ordered TIER_1 > TIER_2 > TIER_3 "
                f"(got {self.tier_1_min_score}, {self.tier_2_min_score}, {self.tier_3_min_score})"
            )
        if self.min_confirmations_tier1 < 0:
            raise ValueError("min_confirmations_tier1 must be at least 0")
        if not 0 <= self.tier_1_min_completeness <= 1:
            raise ValueError("tier_1_min_completeness must be between 0 and 1")
        if not 0 <= self.tier_2_min_completeness <= 1:
            raise ValueError("tier_2_min_completeness must be between 0 and 1")
        for name, hours in intervals.items():
            if not (hours > 0 and math.isfinite(hours)):
                raise ValueError(f"interval of {name!r} must be a positive number, got {hours!r}")
        if not self.mss_max_age_hours > 0:
            raise ValueError("mss_max_age_hours must be positive")

    def max_age_hours(self, component: str) -> float:
        """How old a result of `component` may be and still count: its interval + 1 h."""
        interval = self.interval_hours.get(component)
        if interval is None:  # a component of custom weights: the most lenient known interval
            interval = max(self.interval_hours.values())
        return interval + FRESHNESS_GRACE_HOURS

    @property
    def longest_max_age_hours(self) -> float:
        """The largest `max_age_hours` of the weighted components."""
        return max(self.max_age_hours(name) for name in self.weights)

    @classmethod
    def from_settings(cls, settings: Any = None) -> ScoringConfig:
        """The config from Django settings (or any object with the same attribute names)."""
        if settings is None:
            from django.conf import settings as django_settings

            settings = django_settings
        return cls(
            tier_1_min_score=float(settings.TIER_1_MIN_SCORE),
            tier_2_min_score=float(settings.TIER_2_MIN_SCORE),
            tier_3_min_score=float(settings.TIER_3_MIN_SCORE),
            min_confirmations_tier1=int(settings.MIN_CONFIRMATIONS_TIER1),
            tier_1_min_completeness=float(settings.TIER_1_MIN_COMPLETENESS),
            tier_2_min_completeness=float(settings.TIER_2_MIN_COMPLETENESS),
            # Read by computed name: every COMPONENT_INTERVAL_SETTINGS value is in the settings
            # table (tests/test_config.py checks it).
            interval_hours={
                name: float(getattr(settings, setting))
                for name, setting in COMPONENT_INTERVAL_SETTINGS.items()
            },
            mss_max_age_hours=float(settings.MSS_MAX_AGE_HOURS),
        )
