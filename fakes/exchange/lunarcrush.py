"""The fake LunarCrush API under `/lunarcrush/api4`: public/coins/list/v2.

The coins are the ones the core lists for CoinGecko too, with their prices, changes and volumes from
the spot candles; the social metrics (galaxy score, alt rank, sentiment, ...) exist only with a
seed, else `null`. Any `Authorization: Bearer <key>` is accepted; without one, 401.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fakes.exchange import synthetic as syn
from fakes.exchange.core import SYNTHETIC, ApiError, ExchangeCore, Route, flat
from fakes.exchange.data import MINUTE_MS


class LunarCrush(ExchangeCore):
    """LunarCrush API v4, the one list the product reads."""

    def _venue_routes(self) -> dict[str, Route]:
        return {
            **super()._venue_routes(),
            "/lunarcrush/api4/public/coins/list/v2": Route("lunarcrush", self._lc_coins, flat(0)),
        }

    def _lc_coins(self, query, request):
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise ApiError(401, {"error": "Unauthorized: a valid API key is required"})
        try:
            limit = max(1, min(int(query.get("limit") or 10), 1000))
            page = max(0, int(query.get("page") or 0))
        except ValueError:
            raise ApiError(400, {"error": "invalid limit or page"}) from None
        sort = query.get("sort", "market_cap_rank")
        desc = query.get("desc", "").lower() in ("1", "true", "yes")
        coins = self._listed_coins()
        btc = next((r["price"] for r in coins if r["base"] == "BTC"), None)
        total_cap = sum(
            r["price"] * r["supply"]["circulating_supply"] for r in coins if r["supply"]
        )
        slot = self.now // (10 * MINUTE_MS)
        rows = []
        for rank, r in enumerate(coins, start=1):
            series = r["series"]
            i0, i1 = series.day_window(self.now)
            closes = series.candles.close[max(0, i0 - 1) : i1]
            returns = np.diff(np.log(closes)) if len(closes) > 1 else np.zeros(1)
            supply = r["supply"]
            cap = r["price"] * supply["circulating_supply"] if supply else None
            item: dict[str, Any] = {
                "id": rank,
                "symbol": r["base"],
                "name": r["name"],
                "price": r["price"],
                "price_btc": r["price"] / btc if btc else None,
                "volume_24h": round(r["volume"], 2),
                "volatility": round(float(np.std(returns)), 6),
                "circulating_supply": supply["circulating_supply"] if supply else None,
                "max_supply": supply["max_supply"] if supply else None,
                "percent_change_1h": series.change_percent(self.now, 1),
                "percent_change_24h": series.change_percent(self.now, 24),
                "percent_change_7d": series.change_percent(self.now, 168),
                "percent_change_30d": series.change_percent(self.now, 720),
                "market_cap": round(cap, 2) if cap is not None else None,
                "market_cap_rank": rank if supply else None,
                "interactions_24h": None,
                "social_volume_24h": None,
                "social_dominance": None,
                "market_dominance": round(cap / total_cap * 100, 4) if cap and total_cap else None,
                "market_dominance_prev": None,
                "galaxy_score": None,
                "galaxy_score_previous": None,
                "alt_rank": None,
                "alt_rank_previous": None,
                "sentiment": None,
                "categories": "",
                "blockchains": [],
                "last_updated_price": r["updated"] // 1000,
                "last_updated_price_by": "fake_exchange",
                "topic": f"{r['base'].lower()} {r['id'].replace('-', ' ')}",
                "logo": f"https://cdn.lunarcrush.com/{r['id']}.png",
            }
            if self.seed is not None:
                item.update(syn.social(syn.key_of(self.seed, r["symbol"], "social"), slot))
                item["market_dominance_prev"] = item["market_dominance"]
            rows.append(item)
        if rows and sort in rows[0]:

            def sort_key(item: dict[str, Any]) -> tuple[bool, Any]:
                value = item[sort]
                return (value is None, value if value is not None else 0)

            rows.sort(key=sort_key, reverse=desc)
            if desc:  # keep missing values last
                rows.sort(key=lambda item: item[sort] is None)
        body = {
            "config": {
                "sort": sort,
                "desc": desc,
                "limit": limit,
                "page": page,
                "total_rows": len(rows),
                "generated": self.now // 1000,
            },
            "data": rows[page * limit : (page + 1) * limit],
        }
        return self._ok(body, SYNTHETIC if self.seed is not None else None)
