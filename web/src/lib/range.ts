// The chart's time range (in the URL next to the coin) and the candle interval drawn for each:
// about 100–300 candles per range, so every range reads well at dashboard widths.
import type { Interval } from "./types";

export type Range = "1h" | "24h" | "7d" | "30d";

export const RANGES: readonly Range[] = ["1h", "24h", "7d", "30d"];
export const DEFAULT_RANGE: Range = "24h";

const HOUR = 3_600_000;

export interface RangeDef {
  label: string;
  /** How far back the chart starts. */
  ms: number;
  interval: Interval;
}

export const RANGE_DEFS: Readonly<Record<Range, RangeDef>> = {
  "1h": { label: "1H", ms: HOUR, interval: "30s" }, // 120 candles
  "24h": { label: "24H", ms: 24 * HOUR, interval: "5m" }, // 288
  "7d": { label: "7D", ms: 7 * 24 * HOUR, interval: "1h" }, // 168
  "30d": { label: "30D", ms: 30 * 24 * HOUR, interval: "4h" }, // 180
};

/** cryptopulse/schema.py INTERVAL_SECONDS, in ms. */
export const INTERVAL_MS: Readonly<Record<Interval, number>> = {
  "30s": 30_000,
  "1m": 60_000,
  "5m": 300_000,
  "15m": 900_000,
  "1h": HOUR,
  "4h": 4 * HOUR,
  "1d": 24 * HOUR,
};

/** A range from a URL parameter: case-insensitive ("24H" or "24h"); anything else is null. */
export function parseRange(raw: string | null | undefined): Range | null {
  const r = raw?.trim().toLowerCase();
  return RANGES.find((x) => x === r) ?? null;
}

/** Start of the epoch-aligned bucket of `intervalMs` that holds `ms` (the server's buckets). */
export function bucketStart(ms: number, intervalMs: number): number {
  return Math.floor(ms / intervalMs) * intervalMs;
}

/** The first bucket the range shows at `now`: whole candles only, `ms` back at most. */
export function rangeStart(range: Range, now: number): number {
  const { ms, interval } = RANGE_DEFS[range];
  const step = INTERVAL_MS[interval];
  return bucketStart(now - ms, step) + step;
}
