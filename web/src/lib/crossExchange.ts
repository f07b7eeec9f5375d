// The selected coin across sources: each source's last price (the close of its newest window), its
// age, and the spread between the highest and lowest in basis points. Sources are compared, never
// joined: each row is one source's own series. Prices in different quote currencies (USD, USDT)
// are never treated as the same: the view says when the spread mixes them. Pure, unit-tested.
import { staleAfterMs, type MarketState } from "./market";
import { sourceName } from "./sources";
import type { WindowPoint } from "./types";

export interface SourcePrice {
  source: string;
  /** Display name ("Binance"). */
  name: string;
  /** Close of the source's newest window for the coin. */
  price: number;
  /** Quote currency of the price; null when the window does not say. */
  quote: string | null;
  /** End of that window; its close is current up to then. */
  endMs: number;
  /** now minus `endMs`, never negative (an open window ends in the future). */
  ageMs: number;
  /** Older than the dashboard's stale limit: shown, but left out of the spread. */
  stale: boolean;
  /** The highest / lowest of the prices compared (neither when they are all equal). */
  highest: boolean;
  lowest: boolean;
}

export interface CrossExchange {
  /** Every source with a window for the coin, by display name. */
  rows: SourcePrice[];
  /** Rows that are not stale: the prices the spread compares. */
  compared: number;
  /** (max - min) / min * 10,000 over the compared prices; null with fewer than two. */
  spreadBps: number | null;
  /** The known quote currencies of the compared prices, sorted. */
  quotes: string[];
  /** Some compared price has no known quote currency. */
  unknownQuote: boolean;
  /** The compared prices are not all in one known quote currency: the spread mixes quotes. */
  mixedQuotes: boolean;
}

/** A window's quote currency, null when the source does not say (absent, null or empty). */
export function quoteOf(w: WindowPoint): string | null {
  return w.quote ? w.quote : null;
}

/** Basis points between two prices, relative to the lower: (high - low) / low * 10,000. */
export function spreadBps(high: number, low: number): number {
  return ((high - low) / low) * 10_000;
}

function sourcePrice(source: string, w: WindowPoint, now: number): SourcePrice {
  const ageMs = Math.max(0, now - w.endMs);
  return {
    source,
    name: sourceName(source),
    price: w.close,
    quote: quoteOf(w),
    endMs: w.endMs,
    ageMs,
    stale: ageMs > staleAfterMs(w.endMs - w.startMs),
    highest: false,
    lowest: false,
  };
}

/** The coin's last price from every source that has one, and the spread of the fresh ones. */
export function crossExchange(history: MarketState["history"], coin: string, now: number): CrossExchange {
  const rows: SourcePrice[] = [];
  for (const [source, coins] of Object.entries(history)) {
    const series = coins[coin];
    const last = series?.[series.length - 1];
    if (last !== undefined) rows.push(sourcePrice(source, last, now));
  }
  rows.sort((a, b) => a.name.localeCompare(b.name) || a.source.localeCompare(b.source));
  const fresh = rows.filter((r) => !r.stale);
  let hi: SourcePrice | null = null;
  let lo: SourcePrice | null = null;
  for (const r of fresh) {
    if (hi === null || r.price > hi.price) hi = r;
    if (lo === null || r.price < lo.price) lo = r;
  }
  // All equal: nothing is higher or lower than the rest.
  if (fresh.length >= 2 && hi !== null && lo !== null && hi.price > lo.price) {
    hi.highest = true;
    lo.lowest = true;
  }
  const quotes = [...new Set(fresh.map((r) => r.quote).filter((q): q is string => q !== null))].sort();
  const unknownQuote = fresh.some((r) => r.quote === null);
  return {
    rows,
    compared: fresh.length,
    spreadBps: fresh.length >= 2 && hi !== null && lo !== null ? spreadBps(hi.price, lo.price) : null,
    quotes,
    unknownQuote,
    mixedQuotes: fresh.length >= 2 && (quotes.length > 1 || unknownQuote),
  };
}

/** Why the spread is not one currency's, or null when it is. */
export function mixedQuotesText(v: CrossExchange): string | null {
  if (!v.mixedQuotes) return null;
  const unknown = v.rows.filter((r) => !r.stale && r.quote === null).map((r) => r.name);
  if (v.quotes.length > 1) {
    const also = unknown.length > 0 ? `, and no quote from ${unknown.join(", ")}` : "";
    return `Spread mixes quotes: ${v.quotes.join(" vs ")}${also}`;
  }
  return `Spread may mix quotes: no quote currency from ${unknown.join(", ")}`;
}
