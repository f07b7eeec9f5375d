// Market state: per-coin window history keyed by (coin, window_start), merged from the
// snapshot and live updates. Pure functions so the merge rules are unit-tested.
import type { ServerMessage, WindowPoint } from "./types";

export const DEFAULT_HISTORY_LIMIT = 120;
export const DEFAULT_WINDOW_MS = 30_000;

export interface SourceStatus {
  source: string;
  live: boolean;
  detail: string;
}

export interface MarketState {
  /** Oldest first, at most `historyLimit` windows, one per window_start. */
  history: Readonly<Record<string, readonly WindowPoint[]>>;
  historyLimit: number;
  sources: Readonly<Record<string, SourceStatus>>;
  /** Wall-clock time (ms) the last snapshot or update arrived; null before the first. */
  lastUpdateAt: number | null;
  /** Window length inferred from the data, used to decide when the feed is stale. */
  windowMs: number;
}

export function initialMarketState(historyLimit = DEFAULT_HISTORY_LIMIT): MarketState {
  return { history: {}, historyLimit, sources: {}, lastUpdateAt: null, windowMs: DEFAULT_WINDOW_MS };
}

/**
 * Inserts or replaces `point` in a series sorted by startMs, then trims to `limit`.
 * The hot path (same window again, or the next window) touches only the tail.
 */
export function mergeWindow(
  series: readonly WindowPoint[],
  point: WindowPoint,
  limit: number,
): WindowPoint[] {
  const out = series.slice();
  const last = out[out.length - 1];
  if (last === undefined || last.startMs < point.startMs) {
    out.push(point);
  } else if (last.startMs === point.startMs) {
    out[out.length - 1] = point;
  } else {
    // Late or replayed window: binary search its slot.
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((out[mid] as WindowPoint).startMs < point.startMs) lo = mid + 1;
      else hi = mid;
    }
    if (out[lo]?.startMs === point.startMs) out[lo] = point;
    else out.splice(lo, 0, point);
  }
  return out.length > limit ? out.slice(out.length - limit) : out;
}

function mergeAll(
  base: Readonly<Record<string, readonly WindowPoint[]>>,
  points: readonly WindowPoint[],
  limit: number,
): Record<string, readonly WindowPoint[]> {
  const next: Record<string, readonly WindowPoint[]> = { ...base };
  for (const p of points) next[p.coin] = mergeWindow(next[p.coin] ?? [], p, limit);
  return next;
}

function inferWindowMs(points: readonly WindowPoint[], fallback: number): number {
  const p = points[0];
  const len = p ? p.endMs - p.startMs : 0;
  return len > 0 ? len : fallback;
}

export function applyMessage(state: MarketState, msg: ServerMessage, now: number): MarketState {
  switch (msg.type) {
    case "snapshot":
      // An empty snapshot (a freshly restarted server) must not blank the screen: keep the old
      // numbers, which the stale indicator then flags, until real data arrives.
      if (msg.data.length === 0) return state;
      // Otherwise the snapshot is the server's whole truth (e.g. after a reconnect): start over.
      return {
        ...state,
        history: mergeAll({}, msg.data, state.historyLimit),
        lastUpdateAt: now,
        windowMs: inferWindowMs(msg.data, state.windowMs),
      };
    case "market_update":
      if (msg.data.length === 0) return state;
      return {
        ...state,
        history: mergeAll(state.history, msg.data, state.historyLimit),
        lastUpdateAt: now,
        windowMs: inferWindowMs(msg.data, state.windowMs),
      };
    case "source_status":
      return {
        ...state,
        sources: { ...state.sources, [msg.source]: { source: msg.source, live: msg.live, detail: msg.detail } },
      };
  }
}

/** Applies a batch of messages (one animation frame's worth) in order. */
export function applyMessages(state: MarketState, msgs: readonly ServerMessage[], now: number): MarketState {
  return msgs.reduce((s, m) => applyMessage(s, m, now), state);
}

/** The newest window of every coin, ordered by market cap (largest first), then symbol. */
export function latestWindows(state: MarketState): WindowPoint[] {
  const out: WindowPoint[] = [];
  for (const series of Object.values(state.history)) {
    const last = series[series.length - 1];
    if (last) out.push(last);
  }
  return out.sort(
    (a, b) => (b.market_cap ?? -1) - (a.market_cap ?? -1) || a.symbol.localeCompare(b.symbol),
  );
}

/** True when nothing has arrived for two windows: the numbers on screen are old. */
export function isStale(state: MarketState, now: number): boolean {
  return state.lastUpdateAt !== null && now - state.lastUpdateAt > 2 * state.windowMs;
}

export function isSimulated(s: SourceStatus): boolean {
  return /simulat/i.test(s.source) || /simulat/i.test(s.detail);
}

/** A source that is not live, or is the simulator, must never look like live market data. */
export function sourceNotLive(s: SourceStatus): boolean {
  return !s.live || isSimulated(s);
}
