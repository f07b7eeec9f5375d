// Runtime validation of server messages. The socket is an external input: anything that does
// not match the contract is dropped with a console warning instead of reaching React state.
import type { ServerMessage, SourceState, StatusPoint, Trend, Volatility, WindowPoint } from "./types";
import { SOURCE_STATES, TRENDS, VOLATILITY_LEVELS } from "./types";

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isFiniteNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isPositive = (v: unknown): v is number => isFiniteNum(v) && v > 0;
const isNullableNum = (v: unknown): v is number | null => v === null || isFiniteNum(v);
const isNonEmptyStr = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/** Source ids as cryptopulse/schema.py defines them (a test checks these against schema.json). */
export const SOURCE_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;
export const SOURCE_MAX_LENGTH = 40;
export const isSourceId = (v: unknown): v is string =>
  typeof v === "string" && v.length <= SOURCE_MAX_LENGTH && SOURCE_PATTERN.test(v);

/** Returns the parsed window, or a reason it was rejected. */
export function parseWindow(raw: unknown): WindowPoint | string {
  if (!isObj(raw)) return "not an object";
  const { source, coin, symbol, window_start, window_end, avg_price, open, high, low, close } = raw;
  if (!isNonEmptyStr(coin)) return "coin missing";
  // Without a valid source a window cannot be put in a series: never guess one.
  if (!isSourceId(source)) return `${coin}: source missing or invalid`;
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
    source,
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

/** Returns the parsed source status, or a reason it was rejected. */
export function parseStatus(raw: unknown): StatusPoint | string {
  if (!isObj(raw)) return "not an object";
  const { source, state, detail, last_good, updated_at } = raw;
  if (!isSourceId(source)) return "source missing or invalid";
  if (!SOURCE_STATES.includes(state as SourceState)) return `${source}: unknown state`;
  if (typeof updated_at !== "string") return `${source}: updated_at missing`;
  const updatedMs = Date.parse(updated_at);
  if (!Number.isFinite(updatedMs)) return `${source}: bad updated_at`;
  let lastGoodMs: number | null = null;
  if (last_good !== undefined && last_good !== null) {
    if (typeof last_good !== "string") return `${source}: bad last_good`;
    lastGoodMs = Date.parse(last_good);
    if (!Number.isFinite(lastGoodMs)) return `${source}: bad last_good`;
  }
  if (detail !== undefined && typeof detail !== "string") return `${source}: detail is not text`;
  return {
    source,
    state: state as SourceState,
    detail: detail ?? "",
    last_good: lastGoodMs === null ? null : (last_good as string),
    updated_at,
    lastGoodMs,
    updatedMs,
  };
}

function parseList<T>(
  items: readonly unknown[],
  parse: (raw: unknown) => T | string,
  what: string,
  log: ParseLog,
): T[] {
  const out: T[] = [];
  for (const item of items) {
    const parsed = parse(item);
    if (typeof parsed === "string") log.warn(`[cryptopulse] dropping ${what} (${parsed})`, item);
    else out.push(parsed);
  }
  return out;
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
    case "market_update":
    case "source_status": {
      if (!Array.isArray(raw.data)) {
        log.warn(`[cryptopulse] ignoring ${raw.type}: data is not a list`, raw);
        return null;
      }
      if (raw.type === "source_status") {
        return { type: raw.type, data: parseList(raw.data, parseStatus, "source status", log) };
      }
      return { type: raw.type, data: parseList(raw.data, parseWindow, "window", log) };
    }
    default:
      log.warn("[cryptopulse] ignoring unknown message type", raw.type);
      return null;
  }
}
