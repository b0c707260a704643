"""The fake CoinGecko API under `/coingecko/api/v3`: ping, coins/markets and search/trending.

Prices, highs, lows and volumes are the spot candles' (the USDT coins the core lists as of now);
supplies, market caps, FDV, ranks and trending exist only with a seed, else `null` or empty lists.
The calls a minute (`coingecko_calls_per_minute`) are counted by the core.
"""

from __future__ import annotations

from fakes.exchange import synthetic as syn
from fakes.exchange.core import SYNTHETIC, ApiError, ExchangeCore, Route, flat
from fakes.exchange.data import MINUTE_MS, ms_to_iso

COINGECKO = "/coingecko/api/v3"


class CoinGecko(ExchangeCore):
    """CoinGecko's public API, as much of it as the product reads."""

    def _venue_routes(self) -> dict[str, Route]:
        return {
            **super()._venue_routes(),
            COINGECKO + "/ping": Route("coingecko", self._cg_ping, flat(0)),
            COINGECKO + "/coins/markets": Route("coingecko", self._cg_markets, flat(0)),
            COINGECKO + "/search/trending": Route("coingecko", self._cg_trending, flat(0)),
        }

    def _cg_ping(self, query, request):
        return self._ok({"gecko_says": "(V3) To the Moon!"})

    def _cg_markets(self, query, request):
        currency = query.get("vs_currency")
        if not currency:
            raise ApiError(400, {"error": "Missing parameter vs_currency"})
        if currency.lower() not in ("usd", "usdt"):
            raise ApiError(400, {"error": "invalid vs_currency"})
        try:
            per_page = max(1, min(int(query.get("per_page") or 100), 250))
            page = max(1, int(query.get("page") or 1))
        except ValueError:
            raise ApiError(400, {"error": "invalid per_page or page"}) from None
        coins = self._listed_coins()
        ranks = {r["id"]: k + 1 for k, r in enumerate(coins)} if self.seed is not None else {}
        if query.get("ids"):
            wanted = {s.strip().lower() for s in query["ids"].split(",")}
            coins = [r for r in coins if r["id"] in wanted]
        if query.get("symbols"):
            wanted = {s.strip().lower() for s in query["symbols"].split(",")}
            coins = [r for r in coins if r["base"].lower() in wanted]
        order = query.get("order", "market_cap_desc")
        if order.startswith("volume"):
            coins = sorted(coins, key=lambda r: r["volume"], reverse=order.endswith("desc"))
        elif order.startswith("id"):
            coins = sorted(coins, key=lambda r: r["id"], reverse=order.endswith("desc"))
        elif order == "market_cap_asc":
            coins = coins[::-1]
        changes = [
            p.strip() for p in query.get("price_change_percentage", "").split(",") if p.strip()
        ]
        hours = {"1h": 1, "24h": 24, "7d": 168, "14d": 336, "30d": 720, "200d": 4800, "1y": 8760}
        items = []
        for r in coins[(page - 1) * per_page : page * per_page]:
            supply = r["supply"]
            change = r["price"] - r["open"]
            percent = round(change / r["open"] * 100, 5) if r["open"] else None
            cap = fdv = cap_change = None
            if supply is not None:
                cap = round(r["price"] * supply["circulating_supply"])
                fdv = round(r["price"] * (supply["max_supply"] or supply["total_supply"]))
                cap_change = round(cap - cap / (1 + (percent or 0) / 100), 2)
            item = {
                "id": r["id"],
                "symbol": r["base"].lower(),
                "name": r["name"],
                "image": f"https://coin-images.coingecko.com/coins/images/0/large/{r['id']}.png",
                "current_price": r["price"],
                "market_cap": cap,
                "market_cap_rank": ranks.get(r["id"]),
                "fully_diluted_valuation": fdv,
                "total_volume": round(r["volume"], 2),
                "high_24h": r["high"],
                "low_24h": r["low"],
                "price_change_24h": change,
                "price_change_percentage_24h": percent,
                "market_cap_change_24h": cap_change,
                "market_cap_change_percentage_24h": percent if cap is not None else None,
                "circulating_supply": supply["circulating_supply"] if supply else None,
                "total_supply": supply["total_supply"] if supply else None,
                "max_supply": supply["max_supply"] if supply else None,
                "ath": r["ath"],
                "ath_change_percentage": round((r["price"] / r["ath"] - 1) * 100, 5),
                "ath_date": ms_to_iso(r["ath_date"]),
                "atl": r["atl"],
                "atl_change_percentage": round((r["price"] / r["atl"] - 1) * 100, 5),
                "atl_date": ms_to_iso(r["atl_date"]),
                "roi": None,
                "last_updated": ms_to_iso(r["updated"]),
            }
            for name in changes:
                if name in hours:
                    value = r["series"].change_percent(self.now, hours[name])
                    item[f"price_change_percentage_{name}_in_currency"] = value
            items.append(item)
        return self._ok(items, SYNTHETIC if self.seed is not None else None)

    def _cg_trending(self, query, request):
        if self.seed is None:
            return self._ok({"coins": [], "nfts": [], "categories": []})
        coins = self._listed_coins()
        slot = self.now // (10 * MINUTE_MS)
        scored = sorted(
            coins,
            key=lambda r: -float(syn.uniform(syn.key_of(self.seed, r["symbol"], "trend"), slot)),
        )[:15]
        btc = next((r["price"] for r in coins if r["base"] == "BTC"), None)
        ranks = {r["id"]: k + 1 for k, r in enumerate(coins)}
        items = []
        for score, r in enumerate(scored):
            cap = r["price"] * r["supply"]["circulating_supply"]
            in_btc = r["price"] / btc if btc else None
            percent = (r["price"] / r["open"] - 1) * 100 if r["open"] else 0.0
            items.append(
                {
                    "item": {
                        "id": r["id"],
                        "coin_id": ranks[r["id"]],
                        "name": r["name"],
                        "symbol": r["base"],
                        "market_cap_rank": ranks[r["id"]],
                        "thumb": f"https://coin-images.coingecko.com/coins/images/0/thumb/{r['id']}.png",
                        "small": f"https://coin-images.coingecko.com/coins/images/0/small/{r['id']}.png",
                        "large": f"https://coin-images.coingecko.com/coins/images/0/large/{r['id']}.png",
                        "slug": r["id"],
                        "price_btc": in_btc,
                        "score": score,
                        "data": {
                            "price": r["price"],
                            "price_btc": f"{in_btc:.16f}" if in_btc is not None else None,
                            "price_change_percentage_24h": {"usd": round(percent, 5)},
                            "market_cap": f"${cap:,.0f}",
                            "market_cap_btc": f"{cap / btc:.2f}" if btc else None,
                            "total_volume": f"${r['volume']:,.0f}",
                            "total_volume_btc": f"{r['volume'] / btc:.2f}" if btc else None,
                            "sparkline": f"https://www.coingecko.com/coins/0/sparkline.svg?{r['id']}",
                            "content": None,
                        },
                    }
                }
            )
        return self._ok({"coins": items, "nfts": [], "categories": []}, SYNTHETIC)
