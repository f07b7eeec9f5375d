// Each coin's closes over the last 24 h for the coins table (GET /api/sparklines), fetched for the
// selected source and again every few minutes; on a failure the last answer stays on screen.
import { useEffect, useState } from "react";
import { parseSparklines, readJson, sparklinesUrl } from "../lib/history";
import { authHeaders } from "../lib/token";

export type Sparklines = Readonly<Record<string, readonly number[]>>;

/** Often enough for a 24 h line of 5 min candles. */
export const SPARKLINES_REFRESH_MS = 5 * 60_000;
const EMPTY: Sparklines = {};

export function useSparklines(socketUrl: string, source: string | null, token: string | null): Sparklines {
  const [state, setState] = useState<{ source: string; closes: Sparklines } | null>(null);

  useEffect(() => {
    if (source === null) return;
    const ctrl = new AbortController();
    const load = async () => {
      try {
        const init: RequestInit = { headers: authHeaders(token), cache: "no-store", signal: ctrl.signal };
        const closes = parseSparklines(await readJson(await fetch(sparklinesUrl(socketUrl, source), init)), source);
        setState({ source, closes });
      } catch (err) {
        if (!ctrl.signal.aborted)
          console.warn("[cryptopulse] sparklines unavailable:", err instanceof Error ? err.message : err);
      }
    };
    void load();
    const timer = setInterval(() => void load(), SPARKLINES_REFRESH_MS);
    return () => {
      ctrl.abort();
      clearInterval(timer);
    };
  }, [socketUrl, source, token]);

  // Another source's lines are never shown, not even while this one's load.
  return state !== null && state.source === source ? state.closes : EMPTY;
}
