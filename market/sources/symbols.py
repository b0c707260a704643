"""Which vendor coin a Binance base asset is, decided without guessing.

CoinGecko and LunarCrush name coins by their own ids; many coins share a ticker (there are dozens of
"PEPE"s). A base asset is matched by its exact symbol only:

- one vendor coin with that symbol: that coin;
- several: the one with the largest market cap, but only when it is at least `DOMINANCE` (10) times
  the next one's; otherwise the base is *ambiguous* and every input from that vendor is `Missing`
  with the candidate ids, never a merge or a pick at random;
- none: *unmatched*, likewise reported.

`SymbolMap.problems()` lists the unmatched and ambiguous bases; the clients log them once per
refresh of the vendor's list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from market.values import Missing

logger = logging.getLogger(__name__)

# The largest coin of a shared symbol wins only when it is this many times the next one.
DOMINANCE = 10.0


@dataclass(frozen=True)
class VendorCoin:
    """A coin as a vendor lists it: its id, its ticker (any case) and market cap (None: unknown)."""

    vendor_id: str
    symbol: str
    name: str = ""
    market_cap: float | None = None


@dataclass(frozen=True)
class Ambiguous:
    base: str
    candidates: tuple[str, ...]


@dataclass
class SymbolMap:
    """Base asset (BTC) -> the vendor coin it is, built by `match_symbols`."""

    vendor: str
    matched: dict[str, VendorCoin] = field(default_factory=dict)
    ambiguous: dict[str, Ambiguous] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)

    def lookup(self, base: str) -> VendorCoin | Missing:
        """The vendor coin of `base`, or Missing saying why there is none."""
        base = base.upper()
        if base in self.matched:
            return self.matched[base]
        if base in self.ambiguous:
            ids = ", ".join(self.ambiguous[base].candidates)
            return Missing(
                f"{base} is ambiguous on {self.vendor}: several coins use that symbol "
                f"({ids}) and none has 10x the market cap of the others"
            )
        return Missing(f"{base} is not listed on {self.vendor} under that symbol")

    def problems(self) -> list[str]:
        """One line per base that is unmatched or ambiguous, for the log and the health page."""
        lines = [f"{base}: not on {self.vendor}" for base in self.unmatched]
        lines += [
            f"{base}: ambiguous on {self.vendor} ({', '.join(item.candidates)})"
            for base, item in self.ambiguous.items()
        ]
        return lines


def match_symbols(
    bases: Iterable[str], coins: Iterable[VendorCoin], *, vendor: str, log: bool = True
) -> SymbolMap:
    """Map each base asset to a vendor coin by exact (case-insensitive) symbol; see the module."""
    by_symbol: dict[str, list[VendorCoin]] = {}
    for coin in coins:
        by_symbol.setdefault(coin.symbol.upper(), []).append(coin)
    result = SymbolMap(vendor=vendor)
    for base in dict.fromkeys(base.upper() for base in bases):
        candidates = by_symbol.get(base, [])
        if not candidates:
            result.unmatched.append(base)
            continue
        if len(candidates) == 1:
            result.matched[base] = candidates[0]
            continue
        ranked = sorted(candidates, key=lambda coin: coin.market_cap or 0.0, reverse=True)
        first, second = ranked[0].market_cap or 0.0, ranked[1].market_cap or 0.0
        if first > 0 and first >= DOMINANCE * second:
            result.matched[base] = ranked[0]
        else:
            result.ambiguous[base] = Ambiguous(base, tuple(coin.vendor_id for coin in ranked))
    if log and (result.unmatched or result.ambiguous):
        logger.info(
            "%s symbol mapping: %d matched, %d not listed, %d ambiguous: %s",
            vendor,
            len(result.matched),
            len(result.unmatched),
            len(result.ambiguous),
            "; ".join(result.problems()[:50]),
        )
    return result
