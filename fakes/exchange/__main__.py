"""`python -m fakes.exchange`: run the fake exchange until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

import uvloop


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fakes.exchange",
        description=(
            "A local fake of Binance spot (/api/v3), Binance USDT-M (/fapi/v1, /fapi/v2, "
            "/futures/data), CoinGecko (/coingecko/api/v3) and LunarCrush (/lunarcrush/api4) on "
            "one port, in their real wire formats, serving a market-data folder as of a fake now. "
            "Control plane: GET /__fake__/stats, GET|POST /__fake__/config (JSON switches, also "
            '"now"), POST /__fake__/reset. Values the data lacks are synthetic and answers with '
            "them carry X-Fake-Synthetic: true (see the package docstring)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    parser.add_argument(
        "--data",
        default="data/sample",
        help="data folder in the market-data layout (spot-1h/, futures-1h/, funding/)",
    )
    parser.add_argument(
        "--from-store",
        action="store_true",
        help="serve the Django candle store (1h candles, funding) instead of --data",
    )
    parser.add_argument(
        "--now",
        default=None,
        help="the fake now, ISO (UTC if no zone) or epoch ms; default: last spot candle's close",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="each answer leaves this long after its request was read (computing included)",
    )
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of answers that are 500/502/503"
    )
    parser.add_argument(
        "--timeout-rate",
        type=float,
        default=0.0,
        help="share of requests that hang --timeout-seconds, then get 504",
    )
    parser.add_argument("--timeout-seconds", type=float, default=60.0, help="how long a hang lasts")
    parser.add_argument(
        "--malformed-rate",
        type=float,
        default=0.0,
        help="share of answers that are 200 with truncated JSON or an HTML page",
    )
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault dice")
    parser.add_argument(
        "--synthetic-seed",
        type=int,
        default=None,
        help="enable synthetic data (open interest, ratios, supplies, social, trending, "
        "perpetuals for spot coins) from this seed; off by default",
    )
    parser.add_argument("--spot-weight-limit", type=int, default=6000, help="spot weight/minute")
    parser.add_argument(
        "--futures-weight-limit", type=int, default=2400, help="USDT-M weight/minute"
    )
    parser.add_argument(
        "--futures-data-requests-per-5min",
        type=int,
        default=1000,
        help="requests per 5 minutes to each /futures/data endpoint",
    )
    parser.add_argument(
        "--ban-after", type=int, default=3, help="429s within a minute before a client gets 418"
    )
    parser.add_argument("--ban-seconds", type=float, default=120.0, help="length of a 418 ban")
    parser.add_argument(
        "--coingecko-calls-per-minute", type=int, default=30, help="CoinGecko calls/minute"
    )
    return parser


async def _serve(fake, host: str, port: int) -> None:
    await fake.start(host, port)
    print(fake.describe(), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosatx.settings")
    import django

    django.setup()

    from fakes.exchange.data import load_store
    from fakes.exchange.server import FakeExchange

    if args.from_store:
        data = load_store()
    else:
        if not os.path.isdir(args.data):
            print(f"fake_exchange: no such folder: {args.data}", file=sys.stderr)
            return 2
        from fakes.exchange.data import load_folder

        data = load_folder(args.data)
    fake = FakeExchange(
        data,
        now=args.now,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        timeout_rate=args.timeout_rate,
        timeout_seconds=args.timeout_seconds,
        malformed_rate=args.malformed_rate,
        synthetic_seed=args.synthetic_seed,
        fault_seed=args.fault_seed,
        spot_weight_limit=args.spot_weight_limit,
        futures_weight_limit=args.futures_weight_limit,
        futures_data_requests_per_5min=args.futures_data_requests_per_5min,
        ban_after=args.ban_after,
        ban_seconds=args.ban_seconds,
        coingecko_calls_per_minute=args.coingecko_calls_per_minute,
    )
    # uvloop (installed with ccxt): the fake's own CPU per request is part of every benchmark
    # run against it on the same machine.
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        runner.run(_serve(fake, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
