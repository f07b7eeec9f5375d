// What each bar-chart metric reads and how it is formatted.
import { formatMoneyCompact, formatPercent, formatQuotedCompact } from "./format";
import type { WindowPoint } from "./types";
import type { Metric } from "./url";

export interface MetricDef {
  label: string;
  value: (w: WindowPoint) => number | null;
  /** A value as text; a price in `quote`, its currency (null: not given, shown as dollars). */
  format: (v: number | null, quote?: string | null) => string;
  /** Diverging metrics are drawn from zero in both directions. */
  diverging: boolean;
}

export const METRIC_DEFS: Readonly<Record<Metric, MetricDef>> = {
  price: { label: "Price", value: (w) => w.close, format: formatQuotedCompact, diverging: false },
  change: { label: "24h change", value: (w) => w.avg_change_24h, format: (v) => formatPercent(v), diverging: true },
  volume: { label: "Volume", value: (w) => w.max_volume_24h, format: (v) => formatMoneyCompact(v), diverging: false },
  marketCap: {
    label: "Market cap",
    value: (w) => w.market_cap,
    format: (v) => formatMoneyCompact(v),
    diverging: false,
  },
};

/** The quote currency every window shares; null when they differ or none says. */
export function sharedQuote(windows: readonly WindowPoint[]): string | null {
  const quotes = new Set(windows.map((w) => w.quote ?? null));
  const [only] = quotes;
  return quotes.size === 1 && only !== undefined ? only : null;
}

export const METRIC_ORDER: readonly Metric[] = ["price", "change", "volume", "marketCap"];

/** Log scale when positive values span more than this ratio (BTC vs DOGE prices). */
export const LOG_RATIO = 50;

export function wantsLogScale(values: readonly number[]): boolean {
  const positive = values.filter((v) => v > 0);
  if (positive.length < 2) return false;
  return Math.max(...positive) / Math.min(...positive) > LOG_RATIO;
}

export const BAR_ROW = 24;
export const BAR_MARGIN = { top: 24, right: 64, bottom: 8, left: 56 };

/** The bar chart grows with the number of coins (one row each) and scrolls inside its card. */
export function barChartHeight(n: number): number {
  return BAR_MARGIN.top + BAR_MARGIN.bottom + Math.max(1, n) * BAR_ROW;
}
