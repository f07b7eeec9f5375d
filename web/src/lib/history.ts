// The history reads: GET /api/history/{coin} and GET /api/sparklines. Their answers are outside
// input: each is checked by a validator compiled from schema.json (src/generated/validators.js),
// then against the question asked; a candle that does not fit is dropped and counted, never drawn.
import type { ErrorObject } from "ajv";
import { validateHistory, validateSparklines } from "../generated/validators";
import type { Interval } from "./types";
import { candlePoint, type CandlePoint } from "./candles";
import { apiUrl } from "./token";

/** The most bytes of an answer read (the server caps a history at `history.max_points` candles). */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export interface HistoryQuery {
  source: string;
  coin: string;
  interval: Interval;
  fromMs: number;
  toMs: number;
}

/** An /api/* URL on the server the socket talks to, with `params` as its query. */
function endpoint(socketUrl: string, path: string, params: Record<string, string>): string {
  const url = new URL(apiUrl(socketUrl, path));
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

export function historyUrl(socketUrl: string, q: HistoryQuery): string {
  return endpoint(socketUrl, `/api/history/${encodeURIComponent(q.coin)}`, {
    interval: q.interval,
    from: new Date(q.fromMs).toISOString(),
    to: new Date(q.toMs).toISOString(),
    source: q.source,
  });
}

export function sparklinesUrl(socketUrl: string, source: string, hours = 24): string {
  return endpoint(socketUrl, "/api/sparklines", { source, hours: String(hours) });
}

function reason(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  return e ? `${e.instancePath.slice(1) || "answer"} ${e.message ?? "is invalid"}` : "invalid";
}

export interface ParsedHistory {
  candles: CandlePoint[];
  /** Candles dropped, and why (the first reason). */
  dropped: number;
  droppedReason: string | null;
}

/**
 * The candles of a history answer that belong to the question: its source, coin and interval, a
 * start in [from, to), oldest first, one per start. Throws when the answer itself is malformed.
 */
export function parseHistory(raw: unknown, q: HistoryQuery): ParsedHistory {
  if (!validateHistory(raw)) throw new Error(`history answer: ${reason(validateHistory.errors)}`);
  if (raw.source !== q.source || raw.coin !== q.coin || raw.interval !== q.interval) {
    throw new Error(`history answer is for ${raw.source}/${raw.coin}/${raw.interval}`);
  }
  const candles: CandlePoint[] = [];
  let dropped = 0;
  let droppedReason: string | null = null;
  const drop = (why: string) => {
    dropped++;
    droppedReason ??= why;
  };
  for (const c of raw.candles) {
    const p = candlePoint(c);
    const prev = candles[candles.length - 1];
    if (p === null) drop(`bad time in candle ${c.start}`);
    else if (p.startMs < q.fromMs || p.startMs >= q.toMs) drop(`candle ${c.start} outside the range asked`);
    else if (prev !== undefined && p.startMs <= prev.startMs) drop(`candle ${c.start} out of order or repeated`);
    else if (!(p.low <= Math.min(p.open, p.close) && Math.max(p.open, p.close) <= p.high)) {
      drop(`candle ${c.start} inconsistent`);
    } else candles.push(p);
  }
  return { candles, dropped, droppedReason };
}

/** Each coin's closes from a sparklines answer for `source` (throws when malformed). */
export function parseSparklines(raw: unknown, source: string): Readonly<Record<string, readonly number[]>> {
  if (!validateSparklines(raw)) throw new Error(`sparklines answer: ${reason(validateSparklines.errors)}`);
  if (raw.source !== source) throw new Error(`sparklines answer is for ${raw.source}`);
  // A plain object without a prototype: a coin called "__proto__" is just a key.
  const out: Record<string, readonly number[]> = Object.create(null) as Record<string, readonly number[]>;
  for (const [coin, closes] of Object.entries(raw.closes)) out[coin] = closes;
  return out;
}

/** Reads a JSON answer of at most MAX_RESPONSE_BYTES; a non-2xx status is an error naming it. */
export async function readJson(response: Response): Promise<unknown> {
  if (!response.ok) throw new HttpError(response.status);
  const declared = Number(response.headers.get("content-length") ?? 0);
  if (declared > MAX_RESPONSE_BYTES) throw new Error(`answer of ${declared} bytes is too large`);
  const text = await response.text();
  if (text.length > MAX_RESPONSE_BYTES) throw new Error(`answer of ${text.length} characters is too large`);
  return JSON.parse(text) as unknown;
}

export class HttpError extends Error {
  constructor(readonly status: number) {
    super(status === 401 ? "not authorized (token)" : `HTTP ${status}`);
  }
}
