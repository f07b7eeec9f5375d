// Volatility and trend labels of a 24 h change (percent), for candles rolled up here from live
// windows. The same bands as cryptopulse/classify.py (its table is in docs/ARCHITECTURE.md);
// classify.test.ts checks every boundary.
import type { Trend, Volatility } from "./types";

/** (lower bound on |change|, inclusive; label), highest first. */
const VOLATILITY_BANDS: readonly (readonly [number, Volatility])[] = [
  [20, "Extreme"],
  [10, "High Volatility"],
  [5, "Volatile"],
  [2, "Moving"],
];

/** Unknown change counts as 0, as in classify.py. */
export function volatility(change: number | null): Volatility {
  const magnitude = Math.abs(change ?? 0);
  return VOLATILITY_BANDS.find(([bound]) => magnitude >= bound)?.[1] ?? "Stable";
}

export function trend(change: number | null): Trend {
  const c = change ?? 0;
  if (c >= 5) return "🚀 Surging";
  if (c >= 2) return "📈 Rising";
  if (c <= -5) return "💥 Crashing";
  if (c <= -2) return "📉 Falling";
  return "➡️ Stable";
}
