// The one owner of the WebSocket: connects, parses, batches messages per animation frame
// into the market reducer, and reconnects with backoff + jitter when the server goes away.
// With a token (server setting `api.protect_reads`) it offers it as a subprotocol; when the server
// refuses it, the hook stops (no retries) until another token is offered.
import { useEffect, useReducer, useRef, useState } from "react";
import { backoffDelay } from "../lib/backoff";
import { applyMessages, initialMarketState, type MarketState } from "../lib/market";
import { parseServerMessage } from "../lib/protocol";
import { apiUrl, authHeaders, isRefusedClose, socketProtocols } from "../lib/token";
import type { ServerMessage } from "../lib/types";
import type { Credential } from "./useToken";

/** "unauthorized": the server wants a token this page does not have (or it refused the one offered). */
export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "offline" | "unauthorized";

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
const CONNECTING: Connection = { status: "connecting", attempt: 0, retryAt: null };

// A refused token also drops what an earlier token showed.
function reducer(state: MarketState, batch: readonly ServerMessage[] | "reset"): MarketState {
  return batch === "reset" ? initialMarketState(state.historyLimit) : applyMessages(state, batch);
}

// What the dashboard asks when the socket fails before opening: 401 means the token is missing
// or wrong (the browser does not tell a refused handshake from an unreachable server).
const PROBE_PATH = "/api/sources";

export function useMarketSocket(
  url: string,
  historyLimit: number | undefined,
  credential: Credential,
): { market: MarketState; connection: Connection } {
  const [market, dispatch] = useReducer(reducer, historyLimit, initialMarketState);
  // The state names the credential it is about: a new one is "connecting" from its first render.
  const [state, setState] = useState(() => ({ credential, connection: CONNECTING }));
  const queue = useRef<ServerMessage[]>([]);

  useEffect(() => {
    let socket: WebSocket | null = null;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    let frame: number | undefined;
    let attempt = 0;
    let disposed = false;
    let refused = false;
    const { token } = credential;
    const probe = new AbortController();
    let checking = false;
    const setConnection = (connection: Connection) => setState({ credential, connection });

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

    const refuse = () => {
      refused = true;
      queue.current = [];
      dispatch("reset");
      setConnection({ status: "unauthorized", attempt, retryAt: null });
    };

    // Refused (401), or just not reachable (then the usual backoff)?
    const checkToken = async () => {
      checking = true;
      let status = 0;
      try {
        const init: RequestInit = { headers: authHeaders(token), cache: "no-store", signal: probe.signal };
        status = (await fetch(apiUrl(url, PROBE_PATH), init)).status;
      } catch {
        // unreachable: retry as usual
      }
      checking = false;
      if (disposed) return;
      if (status === 401) refuse();
      else scheduleReconnect();
    };

    function connect() {
      if (disposed || refused) return;
      let ws: WebSocket;
      let opened = false;
      try {
        ws = new WebSocket(url, socketProtocols(token));
      } catch (err) {
        // The error's text may quote the offered subprotocols, i.e. the token: log its name only.
        console.error("[cryptopulse] cannot open WebSocket", url, err instanceof Error ? err.name : "error");
        scheduleReconnect();
        return;
      }
      socket = ws;
      ws.onopen = () => {
        opened = true;
        attempt = 0;
        setConnection({ status: "connected", attempt: 0, retryAt: null });
      };
      ws.onmessage = (ev: MessageEvent) => {
        const msg = parseServerMessage(ev.data);
        if (msg === null) return;
        queue.current.push(msg);
        scheduleFlush();
      };
      ws.onclose = (ev: CloseEvent) => {
        if (socket !== ws) return;
        socket = null;
        flush();
        if (isRefusedClose(ev.code, ev.reason)) refuse();
        else if (!opened) void checkToken();
        else scheduleReconnect();
      };
      // onclose always follows onerror; reconnecting is handled there.
      ws.onerror = () => undefined;
    }

    // Coming back online should not wait out a long backoff.
    const onOnline = () => {
      if (socket === null && !disposed && !refused && !checking) {
        clearTimeout(retryTimer);
        attempt = 0;
        connect();
      }
    };
    window.addEventListener("online", onOnline);
    connect();

    return () => {
      disposed = true;
      probe.abort();
      window.removeEventListener("online", onOnline);
      clearTimeout(retryTimer);
      clearTimeout(flushTimer);
      if (frame !== undefined) cancelAnimationFrame(frame);
      const ws = socket;
      socket = null;
      ws?.close();
    };
  }, [url, credential]);

  const connection = state.credential === credential ? state.connection : CONNECTING;
  return { market, connection };
}
