"""The fake exchange's HTTP server: Binance spot and USDT-M, CoinGecko and LunarCrush on one port.

Each venue is a subclass of the core (`fakes.exchange.core.ExchangeCore`) in a module of its own
that declares its paths; `FakeExchange` combines the four. They are mixins rather than objects
holding a reference to the core because a venue owns no state: the fake now, the listings, the
caches, the switches and the counters are the core's and every venue reads them all, so a venue
object would be handlers behind a `self.core.` on every line. See the package docstring for what
is served and which values are synthetic.
"""

from __future__ import annotations

from fakes.exchange.binance_futures import BinanceFutures
from fakes.exchange.binance_spot import BinanceSpot
from fakes.exchange.coingecko import CoinGecko
from fakes.exchange.lunarcrush import LunarCrush


class FakeExchange(BinanceSpot, BinanceFutures, CoinGecko, LunarCrush):
    """A fake Binance spot + USDT-M + CoinGecko + LunarCrush server over a data folder.

    `data_dir` is a folder in the shared market-data layout (or a `MarketData` already loaded);
    `now` an ISO time, epoch ms or aware datetime (default: close of the last spot candle).
    Everything else is a switch (`Switches`, changeable while running through
    `POST /__fake__/config`), `synthetic_seed` (made-up data, off without one), `fault_seed` (the
    fault dice) or `clock` (the wall clock of the rate limits; tests pass a fixed one).
    """
