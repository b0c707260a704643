"""What the unified score needs to know: component weights (fixed) and tier rules (settings).

The weights are part of the scoring contract (`docs/SCORING.md`, "Unified score"), not a setting:
changing them changes what every stored score means. The tier thresholds, the confirmations
TIER_1 needs and its minimum completeness are settings of the same names (`cryptosatx/config.py`).
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
    weights: Mapping[str, float] = field(default_factory=lambda: COMPONENT_WEIGHTS, hash=False)
    confirming_scanners: frozenset[str] = CONFIRMING_SCANNERS

    def __post_init__(self) -> None:
        # A caller may pass a plain dict; keep an immutable copy so the config stays frozen.
        weights = MappingProxyType(dict(self.weights))
        object.__setattr__(self, "weights", weights)
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
        )
