// Market state: window history per source, then per coin, keyed by (source, coin, window_start),
// merged from the snapshot and live updates, plus every source's latest status. Two sources never
// share a series: everything the dashboard draws comes from one source's slice (`sourceView`).
// Pure functions so the merge rules are unit-tested.
import type { ServerMessage, StatusPoint, WindowPoint } from "./types";

export const DEFAULT_HISTORY_LIMIT = 120;
export const DEFAULT_WINDOW_MS = 30_000;

/** One source's series: coin -> windows, oldest first, at most `historyLimit`, one per window_start. */
export type SourceHistory = Readonly<Record<string, readonly WindowPoint[]>>;

export interface MarketState {
  /** source -> coin -> series. */
  history: Readonly<Record<string, SourceHistory>>;
  historyLimit: number;
  /** The latest complete list of source statuses, by source. */
  statuses: Readonly<Record<string, StatusPoint>>;
}

export function initialMarketState(historyLimit = DEFAULT_HISTORY_LIMIT): MarketState {
  return { history: {}, historyLimit, statuses: {} };
}

/**
 * Inserts or replaces `point` in a series sorted by startMs, then trims to `limit`.
 * The hot path (same window again, or the next window) touches only the tail.
 */
export function mergeWindow(series: readonly WindowPoint[], point: WindowPoint, limit: number): WindowPoint[] {
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

/** Merges `points` into `base`, copying only the sources and coins they touch. */
function mergeAll(
  base: Readonly<Record<string, SourceHistory>>,
  points: readonly WindowPoint[],
  limit: number,
): Record<string, SourceHistory> {
  const next: Record<string, SourceHistory> = { ...base };
  const copied = new Map<string, Record<string, readonly WindowPoint[]>>();
  for (const p of points) {
    let coins = copied.get(p.source);
    if (coins === undefined) {
      coins = { ...next[p.source] };
      copied.set(p.source, coins);
      next[p.source] = coins;
    }
    coins[p.coin] = mergeWindow(coins[p.coin] ?? [], p, limit);
  }
  return next;
}

export function applyMessage(state: MarketState, msg: ServerMessage): MarketState {
  switch (msg.type) {
    case "snapshot":
      // An empty snapshot (a freshly restarted server) must not blank the screen: keep the old
      // numbers, which the data age then flags as stale, until real data arrives.
      if (msg.data.length === 0) return state;
      // Otherwise the snapshot is the server's whole truth (e.g. after a reconnect): start over.
      return { ...state, history: mergeAll({}, msg.data, state.historyLimit) };
    case "market_update":
      if (msg.data.length === 0) return state;
      return { ...state, history: mergeAll(state.history, msg.data, state.historyLimit) };
    case "source_status": {
      // The list is complete each time: it replaces the previous one.
      const statuses: Record<string, StatusPoint> = {};
      for (const s of msg.data) statuses[s.source] = s;
      return { ...state, statuses };
    }
  }
}

/** Applies a batch of messages (one animation frame's worth) in order. */
export function applyMessages(state: MarketState, msgs: readonly ServerMessage[]): MarketState {
  return msgs.reduce(applyMessage, state);
}

/** Every source that has data or a status, sorted by name. */
export function knownSources(state: MarketState): string[] {
  const names = new Set([...Object.keys(state.history), ...Object.keys(state.statuses)]);
  return [...names].sort();
}

/**
 * The source shown when the URL names none: the running one, i.e. the status with the newest
 * heartbeat (`updated_at`); without statuses, the source of the newest window; null when empty.
 */
/** Statuses this close to the newest one are the running producer's (store.py RUNNING_WITHIN). */
export const RUNNING_WITHIN_MS = 60_000;

export function defaultSource(state: MarketState): string | null {
  // As the server picks it: of the statuses as recent as the newest (the running producer
  // repeats them; an earlier run's stay on the compacted topic), the first by name, so the
  // several sources of one producer do not take turns.
  const statuses = Object.values(state.statuses);
  if (statuses.length > 0) {
    const newest = Math.max(...statuses.map((s) => s.updatedMs));
    return statuses
      .filter((s) => newest - s.updatedMs <= RUNNING_WITHIN_MS)
      .map((s) => s.source)
      .sort()[0] as string;
  }
  let newest: WindowPoint | null = null;
  for (const coins of Object.values(state.history)) {
    for (const series of Object.values(coins)) {
      const last = series[series.length - 1];
      if (last && (newest === null || last.endMs > newest.endMs)) newest = last;
    }
  }
  return newest?.source ?? null;
}

/** One source's slice of the market: all the dashboard draws. */
export interface SourceView {
  source: string | null;
  /** coin -> series of this source only. */
  history: SourceHistory;
  /** The newest window of every coin, largest market cap first, then symbol. */
  latest: WindowPoint[];
  status: StatusPoint | null;
  /** End (ms) of this source's newest window; null without data. */
  newestEndMs: number | null;
  /** Window length inferred from this source's newest window (30 s until data says otherwise). */
  windowMs: number;
}

const EMPTY: SourceHistory = {};

export function sourceView(state: MarketState, source: string | null): SourceView {
  const history = (source !== null ? state.history[source] : undefined) ?? EMPTY;
  const latest: WindowPoint[] = [];
  let newest: WindowPoint | null = null;
  for (const series of Object.values(history)) {
    const last = series[series.length - 1];
    if (!last) continue;
    latest.push(last);
    if (newest === null || last.endMs > newest.endMs) newest = last;
  }
  latest.sort((a, b) => (b.market_cap ?? -1) - (a.market_cap ?? -1) || a.symbol.localeCompare(b.symbol));
  const len = newest ? newest.endMs - newest.startMs : 0;
  return {
    source,
    history,
    latest,
    status: (source !== null ? state.statuses[source] : undefined) ?? null,
    newestEndMs: newest?.endMs ?? null,
    windowMs: len > 0 ? len : DEFAULT_WINDOW_MS,
  };
}

/**
 * Past this age the data is stale: three windows (90 s with the default 30 s windows), and never
 * less than 90 s, because CoinGecko refreshes its public quotes about once a minute and is polled
 * every 30 s, so with short windows a gap of a minute or more between windows is normal.
 */
export const STALE_MIN_MS = 90_000;
export const STALE_WINDOWS = 3;

export function staleAfterMs(windowMs: number): number {
  return Math.max(STALE_WINDOWS * windowMs, STALE_MIN_MS);
}

export interface DataAge {
  /** now minus the newest window's end, never negative (an open window ends in the future). */
  ageMs: number | null;
  stale: boolean;
}

export function dataAge(view: Pick<SourceView, "newestEndMs" | "windowMs">, now: number): DataAge {
  if (view.newestEndMs === null) return { ageMs: null, stale: false };
  const ageMs = Math.max(0, now - view.newestEndMs);
  return { ageMs, stale: ageMs > staleAfterMs(view.windowMs) };
}

/** A producer repeats its status about every 10 s; a status older than this is no longer current. */
export const HEARTBEAT_LATE_MS = 45_000;

export function heartbeatLate(status: StatusPoint, now: number): boolean {
  return now - status.updatedMs > HEARTBEAT_LATE_MS;
}
