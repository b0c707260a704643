"""The request engine: every call to an outside HTTP API goes through it.

A plain package (no Django app, no ORM); it reads the Django settings only in `registry`.


One `RequestEngine` per upstream API (`binance-spot`, `binance-futures`, `coingecko`,
`lunarcrush`) keeps the scanner inside what the API allows, for every process and host at once:

- a **budget** of request weight per calendar minute, shared through Redis (`RedisBudget`) or kept
  in-process (`LocalBudget`); the server's own count (`X-MBX-USED-WEIGHT-1M`) corrects it;
- a **ban registry**: after an HTTP 418 nobody calls the API again before the ban ends (a
  request checks it before it waits and again right before it leaves);
- an **adaptive concurrency limit**: halved when more than 5 % of the last results were errors,
  raised step by step when fewer than 2 % were;
- **retries**: transient failures (timeouts, 5xx, network) with exponential backoff and full
  jitter, 429 after its Retry-After, permanent failures never.

A source wraps each request in a `call` that returns a `Reply` and maps its library's failures to
`TransientError`, `RateLimited`, `Banned`, `PermanentError` or `BadResponse`; the engine does the
rest: ``await engine.run(call, weight=2, what="klines BTC/USDT 1h")``.

Engines are per process (`engine_for(name)`) and can be used from successive event loops and
threads: they hold no loop-bound object beyond the futures of one wait and per-loop Redis clients.
"""
