// Table sorting. Missing values always sink to the bottom, whatever the direction.
import type { WindowPoint } from "./types";
import { TRENDS, VOLATILITY_LEVELS } from "./types";

export type SortKey = "symbol" | "price" | "change" | "volume" | "marketCap" | "volatility" | "trend";
export type SortDir = "asc" | "desc";

function sortValue(w: WindowPoint, key: SortKey): number | string | null {
  switch (key) {
    case "symbol":
      return w.symbol.toLowerCase();
    case "price":
      return w.close;
    case "change":
      return w.avg_change_24h;
    case "volume":
      return w.max_volume_24h;
    case "marketCap":
      return w.market_cap;
    case "volatility":
      return VOLATILITY_LEVELS.indexOf(w.volatility);
    case "trend":
      // Surging ranks highest.
      return TRENDS.length - TRENDS.indexOf(w.trend);
  }
}

export function sortWindows(rows: readonly WindowPoint[], key: SortKey, dir: SortDir): WindowPoint[] {
  const sign = dir === "asc" ? 1 : -1;
  return rows.slice().sort((a, b) => {
    const va = sortValue(a, key);
    const vb = sortValue(b, key);
    if (va === null && vb === null) return a.symbol.localeCompare(b.symbol);
    if (va === null) return 1;
    if (vb === null) return -1;
    const cmp = typeof va === "string" ? va.localeCompare(vb as string) : va - (vb as number);
    return cmp !== 0 ? sign * cmp : a.symbol.localeCompare(b.symbol);
  });
}
