import { describe, expect, it } from "vitest";
import type { Interval } from "../generated/types";
import { bucketStart, INTERVAL_MS, parseRange, RANGE_DEFS, RANGES, rangeStart } from "./range";

const T = Date.parse("2026-11-24T22:07:12.345Z");

describe("ranges and their intervals", () => {
  it("maps each range to the interval the design chose", () => {
    const intervals = Object.fromEntries(RANGES.map((r) => [RANGE_DEFS[r].label, RANGE_DEFS[r].interval]));
    expect(intervals).toEqual({ "1H": "30s", "24H": "5m", "7D": "1h", "30D": "4h" });
  });

  it("draws between 100 and 300 candles for every range", () => {
    for (const r of RANGES) {
      const { ms, interval } = RANGE_DEFS[r];
      const n = ms / INTERVAL_MS[interval];
      expect(n, r).toBeGreaterThanOrEqual(100);
      expect(n, r).toBeLessThanOrEqual(300);
    }
  });

  it("knows every interval of the contract in ms (schema.py INTERVAL_SECONDS)", () => {
    const seconds: Record<Interval, number> = {
      "30s": 30,
      "1m": 60,
      "5m": 300,
      "15m": 900,
      "1h": 3600,
      "4h": 14_400,
      "1d": 86_400,
    };
    for (const [k, s] of Object.entries(seconds)) expect(INTERVAL_MS[k as Interval]).toBe(s * 1000);
  });

  it("parses ranges case-insensitively and refuses anything else", () => {
    expect(parseRange("7D")).toBe("7d");
    expect(parseRange(" 30d ")).toBe("30d");
    expect(parseRange("1w")).toBeNull();
    expect(parseRange(null)).toBeNull();
    expect(parseRange("__proto__")).toBeNull();
  });

  it("starts a range at a whole, epoch-aligned candle", () => {
    expect(bucketStart(T, 300_000)).toBe(Date.parse("2026-11-24T22:05:00Z"));
    expect(bucketStart(Date.parse("2026-11-24T22:05:00Z"), 300_000)).toBe(Date.parse("2026-11-24T22:05:00Z"));
    expect(rangeStart("24h", T)).toBe(Date.parse("2026-11-23T22:10:00Z"));
    expect(rangeStart("1h", T)).toBe(Date.parse("2026-11-24T21:07:30Z"));
    // 4 h buckets are aligned to the epoch (UTC midnight), as the server's are.
    expect(rangeStart("30d", T)).toBe(Date.parse("2026-10-26T00:00:00Z"));
  });
});
