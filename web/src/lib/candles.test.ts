import { describe, expect, it } from "vitest";
import { candle, point, T0, WIN } from "../test/fixtures";
import {
  candlePoint,
  combine,
  firstLive,
  hasTrades,
  holdWindows,
  keepFrom,
  lastRange,
  mergeCandles,
  rollup,
  windowCandle,
  withGaps,
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

describe("trades in candles", () => {
  /** Ten windows of one 5 min bucket; windows 2, 3 and 7 hold no trades (ticker ticks only). */
  function tradedWindows(bucket = 0): WindowPoint[] {
    return Array.from({ length: 10 }, (_, k) => {
      const i = bucket * 10 + k;
      const traded = ![2, 3, 7].includes(k);
      return point("bitcoin", i, {
        open: 100,
        close: 100,
        high: 120,
        low: 90,
        avg_price: 100,
        vwap: traded ? 95 + k : null,
        traded_volume: traded ? 0.5 + k : null,
        trade_count: traded ? 3 + k : null,
      });
    });
  }
  const traded = (ws: WindowPoint[]) => ws.filter((w) => w.traded_volume != null);
  const expected = (ws: WindowPoint[]) => {
    const t = traded(ws);
    const volume = t.reduce((n, w) => n + (w.traded_volume ?? 0), 0);
    return {
      vwap: t.reduce((s, w) => s + (w.vwap ?? 0) * (w.traded_volume ?? 0), 0) / volume,
      traded_volume: volume,
      trade_count: t.reduce((n, w) => n + (w.trade_count ?? 0), 0),
    };
  };

  it("weights the VWAP by traded volume, sums volume and trades, over the windows that traded", () => {
    const ws = tradedWindows();
    const [c] = rollup(ws, MIN5);
    const e = expected(ws);
    expect(c?.vwap).toBeCloseTo(e.vwap, 10);
    expect(c?.traded_volume).toBeCloseTo(e.traded_volume, 10);
    expect(c?.trade_count).toBe(e.trade_count);
    // Not the plain mean of the windows' VWAPs: the volume weights it.
    const plain = traded(ws).reduce((s, w) => s + (w.vwap ?? 0), 0) / traded(ws).length;
    expect(Math.abs((c?.vwap ?? 0) - plain)).toBeGreaterThan(0.1);
  });

  it("is null when no window traded, and keeps a lone window's figures", () => {
    const ticker = bucketWindows(); // no trade fields at all
    expect(rollup(ticker, MIN5).map((c) => [c.vwap, c.traded_volume, c.trade_count])).toEqual([[null, null, null]]);
    const ws = tradedWindows();
    const quiet = rollup(ws.slice(2, 4), MIN5)[0];
    expect([quiet?.vwap, quiet?.traded_volume, quiet?.trade_count]).toEqual([null, null, null]);
    const one = rollup(ws.slice(3, 5), MIN5)[0]; // a window without trades, then one with
    expect([one?.vwap, one?.traded_volume, one?.trade_count]).toEqual([99, 4.5, 7]);
  });

  it("gives the same trade figures however the windows were grouped", () => {
    const parts = tradedWindows().map((w) => windowCandle(w, MIN5));
    const left = parts.reduce((a, b) => combine(a, b));
    const halves = combine(
      parts.slice(0, 4).reduce((x, y) => combine(x, y)),
      parts.slice(4).reduce((x, y) => combine(x, y)),
    );
    expect(halves.vwap).toBeCloseTo(left.vwap as number, 10);
    expect(halves.traded_volume).toBeCloseTo(left.traded_volume as number, 10);
    expect(halves.trade_count).toBe(left.trade_count);
  });

  it("combines the boundary bucket exactly: the history's trades + the live part's = all its windows'", () => {
    const ws = [...tradedWindows(0), ...tradedWindows(1)];
    // The boundary cuts bucket 1 after its third window (one with trades, two without before it).
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
    const cut = merged[1] as CandlePoint;
    const e = expected(ws.slice(10));
    expect(cut.vwap).toBeCloseTo(e.vwap, 10);
    expect(cut.traded_volume).toBeCloseTo(e.traded_volume, 10);
    expect(cut.trade_count).toBe(e.trade_count);
    // And with the history's side from the server (a Candle as GET /api/history sends it).
    const server = cp(
      candle(1, MIN5, {
        kind: "live",
        vwap: history[1]?.vwap ?? null,
        traded_volume: history[1]?.traded_volume ?? null,
        trade_count: history[1]?.trade_count ?? null,
      }),
    );
    const fromServer = mergeCandles([server], live)[0] as CandlePoint;
    expect(fromServer.vwap).toBeCloseTo(e.vwap, 10);
    expect(fromServer.trade_count).toBe(e.trade_count);
  });

  it("keeps the combined VWAP within low..high, as the server does", () => {
    const at = (n: number, vwap: number) =>
      cp(candle(n, WIN, { kind: "live", high: 110, low: 90, vwap, traded_volume: 1, trade_count: 1 }));
    const c = combine(at(0, 110 + 1e-9), at(1, 110 + 1e-9)); // a hair above, as the last bits can put it
    expect(c.vwap).toBe(110);
  });

  it("keeps the live part's trades when the server's candle has none (ticker-only, or an older server)", () => {
    const server = cp(candle(0, MIN5, { kind: "live" })); // no trade fields at all
    expect([server.vwap, server.traded_volume, server.trade_count]).toEqual([null, null, null]);
    const live = rollup(tradedWindows().slice(4), MIN5);
    const merged = mergeCandles([server], live)[0] as CandlePoint;
    expect(merged.vwap).toBeCloseTo(live[0]?.vwap as number, 12);
    expect(merged.trade_count).toBe(live[0]?.trade_count);
  });
});

describe("withGaps and hasTrades", () => {
  it("puts one null where candles are missing, none between neighbours", () => {
    const cs = [0, 1, 4, 5, 7].map((n) => cp(candle(n, MIN5)));
    expect(withGaps(cs, MIN5).map((c) => (c === null ? null : (c.startMs - T0) / MIN5))).toEqual([
      0,
      1,
      null,
      4,
      5,
      null,
      7,
    ]);
    expect(withGaps([], MIN5)).toEqual([]);
  });

  it("sees trades only in a candle with traded volume", () => {
    const ticker = [0, 1].map((n) => cp(candle(n, MIN5)));
    expect(hasTrades(ticker)).toBe(false);
    expect(hasTrades([...ticker, cp(candle(2, MIN5, { vwap: 100, traded_volume: 0.1, trade_count: 1 }))])).toBe(true);
  });
});
