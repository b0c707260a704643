"""Deterministic synthetic values for what the history lacks.

Every value is a pure function of (seed, symbol, time[, index]) through a splitmix64 hash, so
an answer never depends on which other requests came before it or on the window asked for:
the same seed gives byte-identical answers. Nothing here is market fact; the server marks every
answer that contains such values with `X-Fake-Synthetic: true`.
"""

from __future__ import annotations

import zlib

import numpy as np

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

# CoinGecko ids and names of common coins; any other coin gets its lowercase ticker as id.
COIN_NAMES: dict[str, tuple[str, str]] = {
    "BTC": ("bitcoin", "Bitcoin"),
    "ETH": ("ethereum", "Ethereum"),
    "BNB": ("binancecoin", "BNB"),
    "SOL": ("solana", "Solana"),
    "XRP": ("ripple", "XRP"),
    "ADA": ("cardano", "Cardano"),
    "DOGE": ("dogecoin", "Dogecoin"),
    "AVAX": ("avalanche-2", "Avalanche"),
    "DOT": ("polkadot", "Polkadot"),
    "LINK": ("chainlink", "Chainlink"),
    "LTC": ("litecoin", "Litecoin"),
    "BCH": ("bitcoin-cash", "Bitcoin Cash"),
    "TRX": ("tron", "TRON"),
    "SHIB": ("shiba-inu", "Shiba Inu"),
    "PEPE": ("pepe", "Pepe"),
    "ATOM": ("cosmos", "Cosmos Hub"),
    "UNI": ("uniswap", "Uniswap"),
    "NEAR": ("near", "NEAR Protocol"),
    "APT": ("aptos", "Aptos"),
    "ARB": ("arbitrum", "Arbitrum"),
    "OP": ("optimism", "Optimism"),
    "SUI": ("sui", "Sui"),
    "WIF": ("dogwifcoin", "dogwifhat"),
    "BONK": ("bonk", "Bonk"),
    "FLOKI": ("floki", "FLOKI"),
}


def key_of(seed: int, *parts: str) -> int:
    """A 64-bit key for a seed and names (symbol, series), stable across runs and platforms."""
    text = "\x1f".join(parts).encode()
    return (zlib.crc32(text) << 32 | zlib.adler32(text)) ^ (seed * 0x9E3779B97F4A7C15) & (2**64 - 1)


def uniform(key: int, values: np.ndarray | int, salt: int = 0) -> np.ndarray:
    """Uniform [0, 1) floats, one per value, a pure function of (key, value, salt)."""
    with np.errstate(over="ignore"):
        x = np.asarray(values, dtype=np.int64).astype(np.uint64)
        x = x * _GOLDEN + np.uint64(key & (2**64 - 1)) + np.uint64(salt) * _M2
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def normal(key: int, values: np.ndarray | int, salt: int = 0) -> np.ndarray:
    """Standard normal floats (Box-Muller over two `uniform` draws)."""
    u1 = np.maximum(uniform(key, values, salt * 2 + 1), 1e-12)
    u2 = uniform(key, values, salt * 2 + 2)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def taker_share(key: int, times, open_, high, low, close) -> np.ndarray:
    """Share of a candle's volume bought by takers: leans with the candle's direction, 5–95 %."""
    span = np.where(high > low, high - low, 1.0)
    lean = np.tanh((close - open_) / span * 1.5) * 0.12
    noise = (uniform(key, times, 1) - 0.5) * 0.16
    return np.clip(0.5 + lean + noise, 0.05, 0.95)


def trade_counts(key: int, times, volume, close) -> np.ndarray:
    """Aggregate trades per candle: about one per 800–1,600 USDT traded, at least 1 if volume."""
    size = 800.0 + 800.0 * uniform(key, times, 2)
    counts = np.ceil(volume * close / size)
    return np.where(volume > 0, np.maximum(counts, 1), 0).astype(np.int64)


def ar_walk(key: int, steps: np.ndarray, salt: int, phi: float, sigma: float) -> np.ndarray:
    """A mean-reverting AR(1) walk on the integer grid `steps` (consecutive, ascending).

    Starts from its stationary distribution at the first step, so a walk over a window that
    begins later is not the same series; callers always build it over a fixed grid.
    """
    eps = normal(key, steps, salt) * sigma
    out = np.empty(len(steps), dtype=np.float64)
    level = eps[0] / np.sqrt(max(1e-9, 1 - phi * phi)) if len(steps) else 0.0
    for i, e in enumerate(eps):
        level = phi * level + e
        out[i] = level
    return out


def supply(key: int, price: float, quote_volume_24h: float) -> dict[str, float | None]:
    """Circulating/total/max supply chosen so market cap is 8–60x the 24h volume."""
    ratio = 8.0 + 52.0 * float(uniform(key, 0, 11))
    market_cap = max(quote_volume_24h, 1.0) * ratio
    circulating = market_cap / price if price > 0 else 0.0
    total = circulating * (1.0 + float(uniform(key, 0, 12)))
    capped = float(uniform(key, 0, 13)) < 0.5
    return {
        "circulating_supply": round(circulating, 2),
        "total_supply": round(total, 2),
        "max_supply": round(total * 1.1, 2) if capped else None,
    }


def social(key: int, slot: int) -> dict[str, float]:
    """LunarCrush-style social metrics for one coin at one 10-minute slot."""
    u = [float(uniform(key, slot, salt)) for salt in range(20, 28)]
    base_volume = 10 ** (2 + 3 * float(uniform(key, 0, 29)))
    return {
        "galaxy_score": round(20 + 60 * u[0], 1),
        "galaxy_score_previous": round(20 + 60 * u[1], 1),
        "alt_rank": int(1 + 1000 * u[2]),
        "alt_rank_previous": int(1 + 1000 * u[3]),
        "sentiment": int(30 + 60 * u[4]),
        "social_volume_24h": int(base_volume * (0.5 + u[5])),
        "interactions_24h": int(base_volume * 500 * (0.5 + u[6])),
        "social_dominance": round(5 * u[7], 4),
    }
