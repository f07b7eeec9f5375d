// Candles of the selected range: the server's history (/api/history) up to a boundary, then the
// live 30 s windows of the WebSocket rolled up here by the server's rules. The history covers the
// windows that start before the boundary (the oldest live window held when it was fetched), the
// live windows the rest, so no window is counted twice and none is missed; the one bucket that
// holds the boundary gets a part from each, combined exactly. Pure functions, unit-tested.
import { trend, volatility } from "./classify";
import { bucketStart } from "./range";
import type { Candle, WindowAggregate, WindowPoint } from "./types";

/** The trade fields of windows and candles (generated types): absent or null without trades. */
type TradeFields = Pick<WindowAggregate & Candle, "vwap" | "traded_volume" | "trade_count">;
/** The same, always present. */
export type Trades = { [K in keyof TradeFields]-?: NonNullable<TradeFields[K]> | null };

/** A candle with its times parsed once, and its trade fields always present (null: no trades). */
export interface CandlePoint extends Omit<Candle, keyof Trades>, Trades {
  startMs: number;
  endMs: number;
  /** Ticks of the windows whose 24 h change is known: the weight of `avg_change_24h`. */
  changeTicks: number;
}

/** The trade fields of a window or a candle, null when absent (a ticker-only source, an older server). */
export function trades(x: TradeFields): Trades {
  return { vwap: x.vwap ?? null, traded_volume: x.traded_volume ?? null, trade_count: x.trade_count ?? null };
}

/** A server candle with its times parsed, or null when they do not parse. */
export function candlePoint(c: Candle): CandlePoint | null {
  const startMs = Date.parse(c.start);
  const endMs = Date.parse(c.end);
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs) || endMs <= startMs) return null;
  return { ...c, ...trades(c), startMs, endMs, changeTicks: c.avg_change_24h === null ? 0 : c.tick_count };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** One window as a candle of its epoch-aligned bucket of `intervalMs`. */
export function windowCandle(w: WindowPoint, intervalMs: number): CandlePoint {
  const startMs = bucketStart(w.startMs, intervalMs);
  const endMs = startMs + intervalMs;
  return {
    start: iso(startMs),
    end: iso(endMs),
    startMs,
    endMs,
    open: w.open,
    high: w.high,
    low: w.low,
    close: w.close,
    avg_price: w.avg_price,
    avg_change_24h: w.avg_change_24h,
    max_volume_24h: w.max_volume_24h,
    market_cap: w.market_cap,
    tick_count: w.tick_count,
    windows: 1,
    volatility: w.volatility,
    trend: w.trend,
    kind: w.kind ?? "live",
    changeTicks: w.avg_change_24h === null ? 0 : w.tick_count,
    ...trades(w),
  };
}

function weighted(a: number | null, wa: number, b: number | null, wb: number): number | null {
  if (a === null || wa <= 0) return b;
  if (b === null || wb <= 0) return a;
  return (a * wa + b * wb) / (wa + wb);
}

const maxKnown = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));
const sumKnown = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : a + b);

/**
 * The VWAP of two parts: their VWAPs weighted by traded volume, over the parts that traded
 * (volume > 0); null when neither did. The server's candle rule, so a candle is the same rolled
 * up here or there.
 */
export function combineVwap(a: Trades, b: Trades): number | null {
  const va = a.vwap !== null && (a.traded_volume ?? 0) > 0 ? (a.traded_volume as number) : 0;
  const vb = b.vwap !== null && (b.traded_volume ?? 0) > 0 ? (b.traded_volume as number) : 0;
  if (va === 0 && vb === 0) return null;
  if (va === 0) return b.vwap;
  if (vb === 0) return a.vwap;
  return ((a.vwap as number) * va + (b.vwap as number) * vb) / (va + vb);
}

/**
 * Two parts of one bucket, `a` made of earlier windows than `b`: open of the first, close of the
 * last, max high, min low, tick-weighted price and change, last market cap, max volume, summed
 * ticks; VWAP weighted by traded volume, summed traded volume and trades (null when neither part
 * traded). Associative, so a candle is the same however its windows were grouped.
 */
export function combine(a: CandlePoint, b: CandlePoint): CandlePoint {
  const change = weighted(a.avg_change_24h, a.changeTicks, b.avg_change_24h, b.changeTicks);
  const startMs = Math.min(a.startMs, b.startMs);
  const endMs = Math.max(a.endMs, b.endMs);
  const [high, low] = [Math.max(a.high, b.high), Math.min(a.low, b.low)];
  // Kept within low..high, as the server keeps it: only the sums' last bits can move it out.
  const vwap = combineVwap(a, b);
  return {
    start: iso(startMs),
    end: iso(endMs),
    startMs,
    endMs,
    open: a.open,
    high,
    low,
    close: b.close,
    avg_price: weighted(a.avg_price, a.tick_count, b.avg_price, b.tick_count) ?? b.avg_price,
    avg_change_24h: change,
    max_volume_24h: maxKnown(a.max_volume_24h, b.max_volume_24h),
    market_cap: b.market_cap ?? a.market_cap,
    tick_count: a.tick_count + b.tick_count,
    windows: a.windows + b.windows,
    volatility: volatility(change),
    trend: trend(change),
    kind: a.kind === "backfill" && b.kind === "backfill" ? "backfill" : "live",
    changeTicks: a.changeTicks + b.changeTicks,
    vwap: vwap === null ? null : Math.min(Math.max(vwap, low), high),
    traded_volume: sumKnown(a.traded_volume, b.traded_volume),
    trade_count: sumKnown(a.trade_count, b.trade_count),
  };
}

/** Windows (oldest first, one per start) rolled into candles of `intervalMs`, oldest first. */
export function rollup(windows: readonly WindowPoint[], intervalMs: number): CandlePoint[] {
  const out: CandlePoint[] = [];
  for (const w of windows) {
    const c = windowCandle(w, intervalMs);
    const last = out[out.length - 1];
    if (last !== undefined && last.startMs === c.startMs) out[out.length - 1] = combine(last, c);
    else out.push(c);
  }
  return out;
}

/**
 * The live windows to roll up: `held` (the ones already taken, oldest first) with the series'
 * windows that start at or after `boundaryMs`, one per start (a later record of a window replaces
 * the earlier one, in whatever order they came). Kept apart from the socket's series, which keeps
 * only its last windows: a window it drops stays here, until it starts before `keepFromMs` (no
 * candle of the range shown holds it any more), so a page left open for days holds a range's worth.
 * Returns `held` itself when nothing changed.
 */
export function holdWindows(
  held: readonly WindowPoint[],
  series: readonly WindowPoint[],
  boundaryMs: number,
  keepFromMs = -Infinity,
): readonly WindowPoint[] {
  const byStart = new Map<number, WindowPoint>();
  for (const w of held) byStart.set(w.startMs, w);
  let changed = false;
  for (const w of series) {
    if (w.startMs < boundaryMs || byStart.get(w.startMs) === w) continue;
    byStart.set(w.startMs, w);
    changed = true;
  }
  if (!changed) return held;
  return [...byStart.values()].filter((w) => w.startMs >= keepFromMs).sort((a, b) => a.startMs - b.startMs);
}

/**
 * The earliest window start a range's candles can still hold: `lastRange` keeps the candles that
 * start within `rangeMs` of the newest candle's end, and windows start at or after their candle.
 */
export function keepFrom(newestStartMs: number, intervalMs: number, rangeMs: number): number {
  return Math.floor(newestStartMs / intervalMs) * intervalMs - rangeMs;
}

/**
 * History candles and live candles (each oldest first, one per start) as one series: a bucket in
 * both is the history's part (earlier windows) combined with the live part.
 */
export function mergeCandles(history: readonly CandlePoint[], live: readonly CandlePoint[]): CandlePoint[] {
  const out: CandlePoint[] = [];
  let i = 0;
  let j = 0;
  while (i < history.length || j < live.length) {
    const h = history[i];
    const l = live[j];
    if (h !== undefined && (l === undefined || h.startMs < l.startMs)) {
      out.push(h);
      i++;
    } else if (l !== undefined && (h === undefined || l.startMs < h.startMs)) {
      out.push(l);
      j++;
    } else if (h !== undefined && l !== undefined) {
      out.push(combine(h, l));
      i++;
      j++;
    }
  }
  return out;
}

/** Index of the first candle that is not backfill (data.length when all are). */
export function firstLive(data: readonly CandlePoint[]): number {
  const i = data.findIndex((d) => d.kind !== "backfill");
  return i === -1 ? data.length : i;
}

/** The candles of the last `rangeMs` up to the newest one: the range follows the live edge. */
export function lastRange(candles: readonly CandlePoint[], rangeMs: number): readonly CandlePoint[] {
  const last = candles[candles.length - 1];
  if (last === undefined) return candles;
  const from = last.endMs - rangeMs;
  let i = 0;
  while (i < candles.length && (candles[i] as CandlePoint).startMs < from) i++;
  return i === 0 ? candles : candles.slice(i);
}

/**
 * The candles with a null wherever one or more candles are missing (no window in that interval),
 * so that a line drawn through them (d3's `line().defined`) breaks there: gaps stay gaps.
 */
export function withGaps(data: readonly CandlePoint[], intervalMs: number): (CandlePoint | null)[] {
  const out: (CandlePoint | null)[] = [];
  let prev: CandlePoint | undefined;
  for (const d of data) {
    if (prev !== undefined && d.startMs - prev.startMs > intervalMs) out.push(null);
    out.push(d);
    prev = d;
  }
  return out;
}

/** Whether any candle holds trades: the candle chart keeps a volume strip only then. */
export function hasTrades(data: readonly CandlePoint[]): boolean {
  return data.some((d) => (d.traded_volume ?? 0) > 0);
}
