// Header statistics over the latest window of each coin.
import type { WindowPoint } from "./types";

export interface MarketStats {
  coinCount: number;
  totalMarketCap: number | null;
  avgChange: number | null;
  gainers: number;
  losers: number;
  mostVolatile: WindowPoint | null;
}

export function marketStats(latest: readonly WindowPoint[]): MarketStats {
  let cap = 0;
  let capCount = 0;
  let changeSum = 0;
  let changeCount = 0;
  let gainers = 0;
  let losers = 0;
  let mostVolatile: WindowPoint | null = null;
  for (const w of latest) {
    if (w.market_cap !== null) {
      cap += w.market_cap;
      capCount++;
    }
    const c = w.avg_change_24h;
    if (c !== null) {
      changeSum += c;
      changeCount++;
      if (c > 0) gainers++;
      else if (c < 0) losers++;
      if (mostVolatile === null || Math.abs(c) > Math.abs(mostVolatile.avg_change_24h ?? 0)) {
        mostVolatile = w;
      }
    }
  }
  return {
    coinCount: latest.length,
    totalMarketCap: capCount > 0 ? cap : null,
    avgChange: changeCount > 0 ? changeSum / changeCount : null,
    gainers,
    losers,
    mostVolatile,
  };
}
