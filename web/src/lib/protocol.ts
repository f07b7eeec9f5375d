// Runtime validation of server messages. The socket is an external input: anything that does
// not match the contract is dropped with a console warning instead of reaching React state.
import type { ServerMessage, Trend, Volatility, WindowPoint } from "./types";
import { TRENDS, VOLATILITY_LEVELS } from "./types";

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isFiniteNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isPositive = (v: unknown): v is number => isFiniteNum(v) && v > 0;
const isNullableNum = (v: unknown): v is number | null => v === null || isFiniteNum(v);
const isNonEmptyStr = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/** Returns the parsed window, or a reason it was rejected. */
export function parseWindow(raw: unknown): WindowPoint | string {
  if (!isObj(raw)) return "not an object";
  const { coin, symbol, window_start, window_end, avg_price, open, high, low, close } = raw;
  if (!isNonEmptyStr(coin)) return "coin missing";
  if (!isNonEmptyStr(symbol)) return `${coin}: symbol missing`;
  if (typeof window_start !== "string" || typeof window_end !== "string") {
    return `${coin}: window times missing`;
  }
  const startMs = Date.parse(window_start);
  const endMs = Date.parse(window_end);
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) return `${coin}: bad window time`;
  for (const [name, v] of Object.entries({ avg_price, open, high, low, close })) {
    if (!isPositive(v)) return `${coin}: ${name} must be a positive number`;
  }
  for (const name of ["avg_change_24h", "max_volume_24h", "market_cap"] as const) {
    // The schema requires these keys but allows null; tolerate absence as null.
    if (raw[name] !== undefined && !isNullableNum(raw[name])) return `${coin}: ${name} is not a number`;
  }
  if (!VOLATILITY_LEVELS.includes(raw.volatility as Volatility)) return `${coin}: unknown volatility`;
  if (!TRENDS.includes(raw.trend as Trend)) return `${coin}: unknown trend`;
  return {
    coin,
    symbol,
    window_start,
    window_end,
    startMs,
    endMs,
    avg_price: avg_price as number,
    open: open as number,
    high: high as number,
    low: low as number,
    close: close as number,
    avg_change_24h: (raw.avg_change_24h ?? null) as number | null,
    max_volume_24h: (raw.max_volume_24h ?? null) as number | null,
    market_cap: (raw.market_cap ?? null) as number | null,
    tick_count: isFiniteNum(raw.tick_count) ? raw.tick_count : 1,
    volatility: raw.volatility as Volatility,
    trend: raw.trend as Trend,
    final: raw.final === true,
  };
}

export interface ParseLog {
  warn: (...args: unknown[]) => void;
}

/**
 * Parses one WebSocket frame. Returns null (and logs why) for anything malformed or unknown;
 * inside a valid data message, bad windows are dropped one by one so good ones still land.
 */
export function parseServerMessage(text: unknown, log: ParseLog = console): ServerMessage | null {
  let raw: unknown;
  try {
    raw = typeof text === "string" ? JSON.parse(text) : text;
  } catch {
    log.warn("[cryptopulse] ignoring non-JSON message", text);
    return null;
  }
  if (!isObj(raw)) {
    log.warn("[cryptopulse] ignoring message that is not an object", raw);
    return null;
  }
  switch (raw.type) {
    case "snapshot":
    case "market_update": {
      if (!Array.isArray(raw.data)) {
        log.warn(`[cryptopulse] ignoring ${raw.type}: data is not a list`, raw);
        return null;
      }
      const data: WindowPoint[] = [];
      for (const item of raw.data) {
        const parsed = parseWindow(item);
        if (typeof parsed === "string") log.warn(`[cryptopulse] dropping window (${parsed})`, item);
        else data.push(parsed);
      }
      return { type: raw.type, data };
    }
    case "source_status": {
      if (!isNonEmptyStr(raw.source) || typeof raw.live !== "boolean") {
        log.warn("[cryptopulse] ignoring malformed source_status", raw);
        return null;
      }
      return {
        type: "source_status",
        source: raw.source,
        live: raw.live,
        detail: typeof raw.detail === "string" ? raw.detail : "",
      };
    }
    default:
      log.warn("[cryptopulse] ignoring unknown message type", raw.type);
      return null;
  }
}
