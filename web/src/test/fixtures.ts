// Builders for windows and source statuses as the server sends them.
import { parseStatus, parseWindow } from "../lib/protocol";
import { INTERVAL_MS } from "../lib/range";
import type {
  Candle,
  HistoryResponse,
  Interval,
  SourceState,
  SourceStatus,
  StatusPoint,
  WindowAggregate,
  WindowPoint,
} from "../lib/types";

export const T0 = Date.parse("2026-11-24T22:00:00Z");
export const WIN = 30_000;

export function agg(coin: string, i: number, over: Partial<WindowAggregate> = {}): WindowAggregate {
  const price = over.close ?? 100 + i;
  return {
    source: "coingecko",
    coin,
    symbol: coin.slice(0, 3),
    window_start: new Date(T0 + i * WIN).toISOString(),
    window_end: new Date(T0 + (i + 1) * WIN).toISOString(),
    avg_price: price,
    open: price,
    high: price * 1.01,
    low: price * 0.99,
    close: price,
    avg_change_24h: 0,
    max_volume_24h: 1e9,
    market_cap: 1e10,
    tick_count: 3,
    volatility: "Stable",
    trend: "➡️ Stable",
    final: true,
    ...over,
  };
}

export function point(coin: string, i: number, over: Partial<WindowAggregate> = {}): WindowPoint {
  const p = parseWindow(agg(coin, i, over));
  if (typeof p === "string") throw new Error(p);
  return p;
}

export function status(source: string, state: SourceState, over: Partial<SourceStatus> = {}): StatusPoint {
  const p = parseStatus({
    source,
    state,
    detail: "",
    last_good: null,
    updated_at: new Date(T0).toISOString(),
    ...over,
  });
  if (typeof p === "string") throw new Error(p);
  return p;
}

/** A candle as GET /api/history sends it: `n` intervals of `intervalMs` after T0. */
export function candle(n: number, intervalMs: number, over: Partial<Candle> = {}): Candle {
  const price = over.close ?? 100 + Math.abs(n % 10);
  return {
    start: new Date(T0 + n * intervalMs).toISOString(),
    end: new Date(T0 + (n + 1) * intervalMs).toISOString(),
    open: price,
    high: price * 1.01,
    low: price * 0.99,
    close: price,
    avg_price: price,
    avg_change_24h: 0,
    max_volume_24h: 1e9,
    market_cap: 1e10,
    tick_count: 10,
    windows: intervalMs / WIN,
    volatility: "Stable",
    trend: "➡️ Stable",
    kind: "backfill",
    ...over,
  };
}

/**
 * What the server answers a history URL: one backfill candle per interval over [from, to),
 * as GET /api/history/{coin} does for a source that backfilled that span.
 */
export function historyAnswer(url: URL): HistoryResponse {
  const interval = (url.searchParams.get("interval") ?? "5m") as Interval;
  const step = INTERVAL_MS[interval];
  const from = Date.parse(url.searchParams.get("from") ?? "");
  const to = Date.parse(url.searchParams.get("to") ?? "");
  const candles: Candle[] = [];
  for (let t = Math.ceil(from / step) * step; t < to; t += step) candles.push(candle((t - T0) / step, step));
  return {
    source: url.searchParams.get("source") ?? "coingecko",
    coin: decodeURIComponent(url.pathname.split("/").pop() ?? ""),
    symbol: null,
    interval,
    start: new Date(from).toISOString(),
    end: new Date(to).toISOString(),
    candles,
  };
}
