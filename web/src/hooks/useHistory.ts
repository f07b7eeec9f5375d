// The selected coin's candles over the selected range: the server's history (/api/history) up to
// the oldest live window this page holds, then the socket's live windows rolled up here
// (lib/candles). Fetches again when the coin, source or range changes (the previous request is
// aborted), when the socket reconnects, and after a failure (with backoff). Charts never fetch.
import { useEffect, useMemo, useRef, useState } from "react";
import { backoffDelay } from "../lib/backoff";
import { holdWindows, keepFrom, lastRange, mergeCandles, rollup, type CandlePoint } from "../lib/candles";
import { HttpError, historyUrl, parseHistory, readJson, type HistoryQuery } from "../lib/history";
import { INTERVAL_MS, RANGE_DEFS, rangeStart, type Range } from "../lib/range";
import { authHeaders } from "../lib/token";
import type { WindowPoint } from "../lib/types";
import type { Interval } from "../lib/types";

export type HistoryStatus = "idle" | "loading" | "ready" | "error";

export interface HistoryView {
  /** Oldest first, one per start, the last `range` up to the live edge. */
  candles: readonly CandlePoint[];
  interval: Interval;
  intervalMs: number;
  status: HistoryStatus;
  error: string | null;
}

/** One answer, for one source, coin and range. */
interface Loaded {
  key: string;
  source: string;
  coin: string;
  range: Range;
  /** Windows starting before this come from the history, the others from the socket. */
  boundaryMs: number;
  candles: readonly CandlePoint[];
  error: string | null;
}

/** The live windows taken since `key`'s boundary, and the series they were last taken from. */
interface Held {
  key: string;
  series: readonly WindowPoint[];
  windows: readonly WindowPoint[];
}

const NO_HELD: Held = { key: "", series: [], windows: [] };
const NONE: readonly CandlePoint[] = [];

const belongsTo = (series: readonly WindowPoint[], source: string, coin: string) =>
  series[0]?.source === source && series[0]?.coin === coin;

export function useHistory(
  socketUrl: string,
  source: string | null,
  coin: string | null,
  range: Range,
  live: readonly WindowPoint[],
  token: string | null,
  connected: boolean,
): HistoryView {
  const { interval, ms: rangeMs } = RANGE_DEFS[range];
  const intervalMs = INTERVAL_MS[interval];
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [generation, setGeneration] = useState(0);
  // Failed fetches in a row (for the backoff) and a counter whose change retries.
  const failures = useRef(0);
  const [retries, setRetries] = useState(0);
  // The live series when a fetch starts (it sets the boundary), without refetching on each update.
  const liveRef = useRef(live);
  useEffect(() => {
    liveRef.current = live;
  }, [live]);

  const hasLive = source !== null && coin !== null && belongsTo(live, source, coin);
  useEffect(() => {
    if (source === null || coin === null) return;
    const ctrl = new AbortController();
    let retry: ReturnType<typeof setTimeout> | undefined;
    const now = Date.now();
    const series = belongsTo(liveRef.current, source, coin) ? liveRef.current : [];
    const oldest = series[0]?.startMs;
    const q: HistoryQuery = { source, coin, interval, fromMs: rangeStart(range, now), toMs: oldest ?? now };
    // The boundary is part of the key: read again up to the first live windows (below), the live
    // windows must be taken again from the new boundary, not kept from the old one.
    const key = `${source}\u0000${coin}\u0000${range}\u0000${generation}\u0000${q.toMs}`;
    const base = { key, source, coin, range, boundaryMs: q.toMs };
    const load = async () => {
      // The live windows already reach back past the range: nothing to ask.
      if (q.toMs <= q.fromMs) return setLoaded({ ...base, candles: NONE, error: null });
      try {
        const init: RequestInit = { headers: authHeaders(token), cache: "no-store", signal: ctrl.signal };
        const parsed = parseHistory(await readJson(await fetch(historyUrl(socketUrl, q), init)), q);
        if (parsed.dropped > 0) {
          console.warn(`[cryptopulse] dropped ${parsed.dropped} history candles (${parsed.droppedReason})`);
        }
        failures.current = 0;
        setLoaded({ ...base, candles: parsed.candles, error: null });
      } catch (err) {
        if (ctrl.signal.aborted) return;
        const error = err instanceof Error ? err.message : "history unavailable";
        setLoaded({ ...base, candles: NONE, error });
        // A refused token is the socket's business (it asks for one); anything else is retried.
        if (!(err instanceof HttpError && err.status === 401)) {
          failures.current += 1;
          retry = setTimeout(() => setRetries((n) => n + 1), backoffDelay(failures.current + 1));
        }
      }
    };
    void load();
    return () => {
      ctrl.abort();
      clearTimeout(retry);
    };
    // `hasLive`: fetched before any live window was held, the boundary was the clock; once windows
    // arrive (the one open then starts before it), the history must end at the oldest of them.
  }, [socketUrl, source, coin, range, interval, token, generation, retries, hasLive]);

  // A reconnect may have missed windows: ask again (what is shown stays until the answer). The
  // first connection is not a reconnect: the fetch above waits for its data anyway.
  const wasConnected = useRef(connected);
  const everConnected = useRef(connected);
  useEffect(() => {
    if (connected && !wasConnected.current && everConnected.current) setGeneration((g) => g + 1);
    wasConnected.current = connected;
    everConnected.current ||= connected;
  }, [connected]);

  const current =
    loaded !== null && loaded.source === source && loaded.coin === coin && loaded.range === range ? loaded : null;

  // Take the new live windows (state derived from the previous render's, updated during render).
  const [held, setHeld] = useState<Held>(NO_HELD);
  let windows = held.windows;
  if (current !== null && (held.key !== current.key || held.series !== live)) {
    const fresh = held.key === current.key ? held.windows : NONE_WINDOWS;
    const newest = live[live.length - 1];
    windows =
      newest !== undefined && belongsTo(live, current.source, current.coin)
        ? holdWindows(fresh, live, current.boundaryMs, keepFrom(newest.startMs, intervalMs, rangeMs))
        : fresh;
    setHeld({ key: current.key, series: live, windows });
  } else if (current === null) {
    // Until the history arrives, the live windows alone (no boundary yet).
    windows = hasLive ? live : NONE_WINDOWS;
  }

  const history = current?.candles ?? NONE;
  const candles = useMemo(
    () => lastRange(mergeCandles(history, rollup(windows, intervalMs)), rangeMs),
    [history, windows, intervalMs, rangeMs],
  );

  const status: HistoryStatus =
    source === null || coin === null ? "idle" : current === null ? "loading" : current.error ? "error" : "ready";
  return { candles, interval, intervalMs, status, error: current?.error ?? null };
}

const NONE_WINDOWS: readonly WindowPoint[] = [];
