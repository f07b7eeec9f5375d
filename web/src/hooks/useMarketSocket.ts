// The one owner of the WebSocket: connects, parses, batches messages per animation frame
// into the market reducer, and reconnects with backoff + jitter when the server goes away.
import { useEffect, useReducer, useRef, useState } from "react";
import { backoffDelay } from "../lib/backoff";
import { applyMessages, initialMarketState, type MarketState } from "../lib/market";
import { parseServerMessage } from "../lib/protocol";
import type { ServerMessage } from "../lib/types";

export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "offline";

export interface Connection {
  status: ConnectionStatus;
  /** Consecutive failed attempts since the last successful open. */
  attempt: number;
  /** When the next reconnect attempt fires (ms epoch), while waiting. */
  retryAt: number | null;
}

// After this many failures in a row we call it "offline" (still retrying, just less often).
const OFFLINE_AFTER = 4;
const FLUSH_FALLBACK_MS = 250;

function reducer(state: MarketState, batch: readonly ServerMessage[]): MarketState {
  return applyMessages(state, batch);
}

export function useMarketSocket(url: string, historyLimit?: number): { market: MarketState; connection: Connection } {
  const [market, dispatch] = useReducer(reducer, historyLimit, initialMarketState);
  const [connection, setConnection] = useState<Connection>({ status: "connecting", attempt: 0, retryAt: null });
  const queue = useRef<ServerMessage[]>([]);

  useEffect(() => {
    let socket: WebSocket | null = null;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    let frame: number | undefined;
    let attempt = 0;
    let disposed = false;

    // Many messages may arrive per frame (100 coins, bursts after a reconnect): render once.
    const flush = () => {
      if (frame !== undefined) cancelAnimationFrame(frame);
      clearTimeout(flushTimer);
      frame = undefined;
      flushTimer = undefined;
      const batch = queue.current;
      if (batch.length === 0) return;
      queue.current = [];
      dispatch(batch);
    };
    const scheduleFlush = () => {
      if (frame !== undefined || flushTimer !== undefined) return;
      frame = requestAnimationFrame(flush);
      // rAF does not run in background tabs; the timer keeps state current there too.
      flushTimer = setTimeout(flush, FLUSH_FALLBACK_MS);
    };

    const scheduleReconnect = () => {
      if (disposed) return;
      const delay = backoffDelay(attempt);
      attempt += 1;
      const offline = attempt >= OFFLINE_AFTER || (typeof navigator !== "undefined" && navigator.onLine === false);
      setConnection({ status: offline ? "offline" : "reconnecting", attempt, retryAt: Date.now() + delay });
      retryTimer = setTimeout(connect, delay);
    };

    function connect() {
      if (disposed) return;
      let ws: WebSocket;
      try {
        ws = new WebSocket(url);
      } catch (err) {
        console.error("[cryptopulse] cannot open WebSocket", url, err);
        scheduleReconnect();
        return;
      }
      socket = ws;
      ws.onopen = () => {
        attempt = 0;
        setConnection({ status: "connected", attempt: 0, retryAt: null });
      };
      ws.onmessage = (ev: MessageEvent) => {
        const msg = parseServerMessage(ev.data);
        if (msg === null) return;
        queue.current.push(msg);
        scheduleFlush();
      };
      ws.onclose = () => {
        if (socket !== ws) return;
        socket = null;
        flush();
        scheduleReconnect();
      };
      // onclose always follows onerror; reconnecting is handled there.
      ws.onerror = () => undefined;
    }

    // Coming back online should not wait out a long backoff.
    const onOnline = () => {
      if (socket === null && !disposed) {
        clearTimeout(retryTimer);
        attempt = 0;
        connect();
      }
    };
    window.addEventListener("online", onOnline);
    connect();

    return () => {
      disposed = true;
      window.removeEventListener("online", onOnline);
      clearTimeout(retryTimer);
      clearTimeout(flushTimer);
      if (frame !== undefined) cancelAnimationFrame(frame);
      const ws = socket;
      socket = null;
      ws?.close();
    };
  }, [url]);

  return { market, connection };
}
