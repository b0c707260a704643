"""The live source: Binance spot and USDT-M futures through ccxt, CoinGecko, LunarCrush.

`source.BinanceSource` is the MarketDataSource (MARKET_SOURCE=binance). Its modules, lowest first:

- `runtime`: the process's machinery. ccxt's client on our hosts (`binance_urls`), its failures
  mapped to the request engine's errors, and the background event loops with their pooled HTTP
  session that every source's calls run on (shared, kept warm between sources).
- `decoding`: Binance's answers read into values, with no I/O: the typed msgspec decoding of
  klines and aggTrades, exchangeInfo's listings, tickers, funding, open interest; and the
  endpoints' request weights.
- `connection`: one source's way to Binance (`BinanceConnection`): its engines and caches, a call
  through the request engine, a batch of calls, what fails a coin and what fails the source, the
  exchange's metadata and the store's Market rows.
- `history`: candles in the candle store: what it lacks, writing fetched candles through, and
  `fetch_history`, the resumable download behind manage.py fetch_ohlcv.
- `derivatives`: funding, open interest, long/short ratio and taker flow of the perpetuals
  (`DerivativesReads`, a connection the source builds on).
- `source`: `BinanceSource` itself: markets and listing times, candles, tickers, large trades,
  the vendors' fundamentals, trending and social figures.
"""
