// Volatility and trend labels of a 24 h change (percent), for candles rolled up here from live
// windows. The bands come from cryptopulse/classify.py, generated into classify.json (`npm run
// gen:schema`), with the labels classify.py gives at and around each boundary for the tests.
import table from "../generated/classify.json";
import type { Trend, Volatility } from "./types";

type Band<L> = readonly [number, L];

const VOLATILITY = table.volatility as unknown as readonly Band<Volatility>[];
const TREND_UP = table.trend_up as unknown as readonly Band<Trend>[];
const TREND_DOWN = table.trend_down as unknown as readonly Band<Trend>[];
const TREND_FLAT = table.trend_flat as Trend;

/** Lower bounds on |change| inclusive, highest first; unknown change counts as 0. */
export function volatility(change: number | null): Volatility {
  const magnitude = Math.abs(change ?? 0);
  const band = VOLATILITY.find(([bound]) => magnitude >= bound);
  return band ? band[1] : "Stable"; // the last band's bound is 0: never reached
}

/** Rising bands (change >= bound), then falling bands (change <= bound), else flat. */
export function trend(change: number | null): Trend {
  const c = change ?? 0;
  const up = TREND_UP.find(([bound]) => c >= bound);
  if (up) return up[1];
  const down = TREND_DOWN.find(([bound]) => c <= bound);
  return down ? down[1] : TREND_FLAT;
}
