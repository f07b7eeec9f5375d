import { describe, expect, it } from "vitest";
import { candle, point, T0, WIN } from "../test/fixtures";
import {
  candlePoint,
  combine,
  firstLive,
  holdWindows,
  keepFrom,
  lastRange,
  mergeCandles,
  rollup,
  windowCandle,
  type CandlePoint,
} from "./candles";
import type { WindowPoint } from "./types";

const MIN5 = 300_000;

/** Ten windows of one 5 min bucket, each with its own numbers. */
function bucketWindows(bucket = 0): WindowPoint[] {
  return Array.from({ length: 10 }, (_, k) => {
    const i = bucket * 10 + k;
    return point("bitcoin", i, {
      open: 100 + k,
      close: 101 + k,
      high: 110 + k,
      low: 90 + k,
      avg_price: 100 + k,
      avg_change_24h: k % 3 === 0 ? null : k - 4,
      max_volume_24h: k === 4 ? null : 1e9 + k,
      market_cap: k === 9 ? null : 1e10 + k,
      tick_count: k + 1,
    });
  });
}

const cp = (c: ReturnType<typeof candle>): CandlePoint => {
  const p = candlePoint(c);
  if (p === null) throw new Error("bad candle");
  return p;
};

/** The numbers of a candle, without its label strings. */
const numbers = (c: CandlePoint) => ({
  start: c.start,
  end: c.end,
  open: c.open,
  high: c.high,
  low: c.low,
  close: c.close,
  avg_price: c.avg_price,
  avg_change_24h: c.avg_change_24h,
  max_volume_24h: c.max_volume_24h,
  market_cap: c.market_cap,
  tick_count: c.tick_count,
  windows: c.windows,
  kind: c.kind,
});

describe("rollup", () => {
  it("rolls windows into epoch-aligned candles by the server's rules", () => {
    const ws = bucketWindows();
    const [c, ...rest] = rollup(ws, MIN5);
    expect(rest).toEqual([]);
    const ticks = ws.reduce((n, w) => n + w.tick_count, 0);
    const known = ws.filter((w) => w.avg_change_24h !== null);
    const changeTicks = known.reduce((n, w) => n + w.tick_count, 0);
    expect(c).toBeDefined();
    expect(numbers(c as CandlePoint)).toEqual({
      start: new Date(T0).toISOString(),
      end: new Date(T0 + MIN5).toISOString(),
      open: 100, // of the first window
      close: 110, // of the last
      high: 119,
      low: 90,
      avg_price: ws.reduce((s, w) => s + w.avg_price * w.tick_count, 0) / ticks,
      avg_change_24h: expect.closeTo(
        known.reduce((s, w) => s + (w.avg_change_24h ?? 0) * w.tick_count, 0) / changeTicks,
        12,
      ),
      max_volume_24h: 1e9 + 9,
      market_cap: 1e10 + 8, // the last known one
      tick_count: ticks,
      windows: 10,
      kind: "live",
    });
    expect(c?.volatility).toBe("Stable");
  });

  it("gives the same candle however its windows are grouped (combine is associative)", () => {
    const parts = bucketWindows().map((w) => windowCandle(w, MIN5));
    const leftFold = parts.reduce((a, b) => combine(a, b));
    const [a, b, ...rest] = parts as [CandlePoint, CandlePoint, ...CandlePoint[]];
    const rightFold = combine(
      a,
      combine(
        b,
        rest.reduce((x, y) => combine(x, y)),
      ),
    );
    const halves = combine(
      parts.slice(0, 5).reduce((x, y) => combine(x, y)),
      parts.slice(5).reduce((x, y) => combine(x, y)),
    );
    for (const other of [rightFold, halves]) {
      const n = numbers(other);
      const l = numbers(leftFold);
      expect({ ...n, avg_price: 0, avg_change_24h: 0 }).toEqual({ ...l, avg_price: 0, avg_change_24h: 0 });
      expect(n.avg_price).toBeCloseTo(l.avg_price, 10);
      expect(n.avg_change_24h).toBeCloseTo(l.avg_change_24h as number, 10);
    }
  });

  it("puts each window in its own interval's bucket; 30 s candles are the windows", () => {
    const ws = [...bucketWindows(0), ...bucketWindows(2)];
    expect(rollup(ws, MIN5).map((c) => c.startMs)).toEqual([T0, T0 + 2 * MIN5]); // gaps stay gaps
    const thirty = rollup(ws, WIN);
    expect(thirty.map((c) => c.startMs)).toEqual(ws.map((w) => w.startMs));
    expect(thirty.every((c) => c.windows === 1)).toBe(true);
  });

  it("is backfill only when every window is", () => {
    const ws = bucketWindows().map((w, k) => ({ ...w, kind: k < 9 ? ("backfill" as const) : ("live" as const) }));
    expect(rollup(ws.slice(0, 9), MIN5)[0]?.kind).toBe("backfill");
    expect(rollup(ws, MIN5)[0]?.kind).toBe("live");
  });
});

describe("holdWindows", () => {
  const boundary = T0 + 3 * WIN;

  it("takes the windows from the boundary on, one per start", () => {
    const series = Array.from({ length: 6 }, (_, i) => point("bitcoin", i));
    const held = holdWindows([], series, boundary);
    expect(held.map((w) => w.startMs)).toEqual([3, 4, 5].map((i) => T0 + i * WIN));
    // Nothing new: the same array (so memos hold).
    expect(holdWindows(held, series, boundary)).toBe(held);
  });

  it("replaces a window updated again, in whatever order updates come, and never adds one", () => {
    let held = holdWindows([], [point("bitcoin", 5, { close: 1 })], boundary);
    held = holdWindows(held, [point("bitcoin", 3), point("bitcoin", 5, { close: 2 })], boundary);
    held = holdWindows(held, [point("bitcoin", 4), point("bitcoin", 5, { close: 3 }), point("bitcoin", 4)], boundary);
    expect(held.map((w) => [w.startMs, w.close])).toEqual([
      [T0 + 3 * WIN, 103],
      [T0 + 4 * WIN, 104],
      [T0 + 5 * WIN, 3],
    ]);
  });

  it("lets go of the windows no candle of the range holds any more", () => {
    const series = Array.from({ length: 8 }, (_, i) => point("bitcoin", i));
    // 2-window candles over a 4-window range: the newest (7) is in the candle from 6, so the
    // range's candles start at 2 at the earliest.
    const keep = keepFrom(T0 + 7 * WIN, 2 * WIN, 4 * WIN);
    expect(keep).toBe(T0 + 2 * WIN);
    const held = holdWindows([], series, T0, keep);
    expect(held.map((w) => w.startMs)).toEqual([2, 3, 4, 5, 6, 7].map((i) => T0 + i * WIN));
    const shown = lastRange(rollup(held, 2 * WIN), 4 * WIN);
    expect(shown).toEqual(lastRange(rollup(series, 2 * WIN), 4 * WIN)); // nothing shown is lost
  });

  it("keeps windows the socket's bounded series has dropped since", () => {
    const held = holdWindows([], [point("bitcoin", 3), point("bitcoin", 4)], boundary);
    const later = holdWindows(held, [point("bitcoin", 5)], boundary); // 3 and 4 trimmed upstream
    expect(later.map((w) => w.startMs)).toEqual([3, 4, 5].map((i) => T0 + i * WIN));
  });
});

describe("mergeCandles", () => {
  it("combines the boundary bucket exactly: history part + live part = all its windows", () => {
    // The page held live windows from the 4th window of bucket 1 on; the history has the rest.
    const ws = [...bucketWindows(0), ...bucketWindows(1), ...bucketWindows(2)];
    const boundary = T0 + 13 * WIN;
    const history = rollup(
      ws.filter((w) => w.startMs < boundary),
      MIN5,
    );
    const live = rollup(
      ws.filter((w) => w.startMs >= boundary),
      MIN5,
    );
    const merged = mergeCandles(history, live);
    const whole = rollup(ws, MIN5);
    expect(merged.map(numbers)).toEqual(whole.map(numbers));
    expect(merged.map((c) => c.startMs)).toEqual([T0, T0 + MIN5, T0 + 2 * MIN5]);
  });

  it("never repeats a start, with server candles on one side", () => {
    const history = [0, 1, 2].map((n) => cp(candle(n, MIN5)));
    const live = rollup([...bucketWindows(2), ...bucketWindows(3)], MIN5);
    const merged = mergeCandles(history, live);
    expect(merged.map((c) => c.startMs)).toEqual([0, 1, 2, 3].map((n) => T0 + n * MIN5));
    const boundaryCandle = merged[2] as CandlePoint;
    expect(boundaryCandle.open).toBe(history[2]?.open); // the history's part came first
    expect(boundaryCandle.close).toBe(live[0]?.close);
    expect(boundaryCandle.tick_count).toBe((history[2]?.tick_count ?? 0) + (live[0]?.tick_count ?? 0));
    expect(boundaryCandle.kind).toBe("live");
    expect(merged[0]?.kind).toBe("backfill");
    expect(firstLive(merged)).toBe(2);
  });

  it("is the history alone, or the live part alone, when the other is empty", () => {
    const history = [0, 1].map((n) => cp(candle(n, MIN5)));
    expect(mergeCandles(history, [])).toEqual(history);
    const live = rollup(bucketWindows(), MIN5);
    expect(mergeCandles([], live)).toEqual(live);
    expect(firstLive(history)).toBe(2);
  });
});

describe("lastRange", () => {
  it("keeps the candles of the last range up to the newest", () => {
    const cs = Array.from({ length: 300 }, (_, n) => cp(candle(n, MIN5)));
    const day = lastRange(cs, 24 * 3_600_000);
    expect(day).toHaveLength(288);
    expect(day[day.length - 1]).toBe(cs[cs.length - 1]);
    expect(lastRange(day, 24 * 3_600_000)).toBe(day);
  });
});

describe("candlePoint", () => {
  it("refuses a candle whose times do not parse or run backwards", () => {
    expect(candlePoint({ ...candle(0, MIN5), start: "yesterday" })).toBeNull();
    expect(candlePoint({ ...candle(0, MIN5), end: new Date(T0 - 1).toISOString() })).toBeNull();
    expect(candlePoint(candle(0, MIN5))?.changeTicks).toBe(10);
    expect(candlePoint(candle(0, MIN5, { avg_change_24h: null }))?.changeTicks).toBe(0);
  });
});
