// Runtime validation of server messages. The socket is an external input: anything that does
// not match the contract is dropped with a console warning instead of reaching React state.
// The checks are compiled from schema.json (src/generated/validators.js), never written here.
import type { ErrorObject } from "ajv";
import { validateSourceId, validateStatus, validateWindow } from "../generated/validators";
import type { ServerMessage, StatusPoint, WindowPoint } from "./types";

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** A source id as cryptopulse/schema.py defines it. */
export const isSourceId = (v: unknown): v is string => validateSourceId(v);

/** Why a value failed its validator, naming the item (`what`) when it has one. */
function reason(what: unknown, errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  const problem = e ? `${e.instancePath.slice(1) || "value"} ${e.message ?? "is invalid"}` : "invalid";
  return typeof what === "string" && what ? `${what}: ${problem}` : problem;
}

/** Milliseconds of an ISO time the schema accepted (a leap second still fails here). */
function epochMs(iso: string): number | null {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
}

/** Returns the parsed window, or a reason it was rejected. */
export function parseWindow(raw: unknown): WindowPoint | string {
  if (!isObj(raw)) return "not an object";
  const w = { ...raw }; // the validator fills defaults in place: never in the caller's object
  if (!validateWindow(w)) return reason(raw.coin, validateWindow.errors);
  const startMs = epochMs(w.window_start);
  const endMs = epochMs(w.window_end);
  if (startMs === null || endMs === null) return `${w.coin}: bad window time`;
  return { ...w, startMs, endMs };
}

/** Returns the parsed source status, or a reason it was rejected. */
export function parseStatus(raw: unknown): StatusPoint | string {
  if (!isObj(raw)) return "not an object";
  const s = { ...raw };
  if (!validateStatus(s)) return reason(raw.source, validateStatus.errors);
  const updatedMs = epochMs(s.updated_at);
  const lastGoodMs = s.last_good ? epochMs(s.last_good) : null;
  if (updatedMs === null || (s.last_good && lastGoodMs === null)) return `${s.source}: bad time`;
  return { ...s, detail: s.detail ?? "", last_good: s.last_good ?? null, lastGoodMs, updatedMs };
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
