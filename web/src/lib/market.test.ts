import { describe, expect, it } from "vitest";
import { point, WIN } from "../test/fixtures";
import {
  applyMessage,
  applyMessages,
  initialMarketState,
  isStale,
  latestWindows,
  mergeWindow,
  sourceNotLive,
} from "./market";

describe("mergeWindow", () => {
  it("appends a newer window", () => {
    const s = mergeWindow([point("btc", 0)], point("btc", 1), 10);
    expect(s.map((w) => w.startMs)).toEqual([point("btc", 0).startMs, point("btc", 1).startMs]);
  });

  it("replaces a window with the same window_start instead of adding a point", () => {
    const open = point("btc", 0, { close: 100, final: false });
    const closed = point("btc", 0, { close: 105, final: true });
    const s = mergeWindow([open], closed, 10);
    expect(s).toHaveLength(1);
    expect(s[0]?.close).toBe(105);
    expect(s[0]?.final).toBe(true);
  });

  it("inserts or replaces late windows in order", () => {
    const base = [point("btc", 0), point("btc", 2), point("btc", 3)];
    const inserted = mergeWindow(base, point("btc", 1), 10);
    expect(inserted.map((w) => w.close)).toEqual([100, 101, 102, 103]);
    const replaced = mergeWindow(base, point("btc", 2, { close: 999 }), 10);
    expect(replaced.map((w) => w.close)).toEqual([100, 999, 103]);
  });

  it("bounds history, dropping the oldest", () => {
    let s = mergeWindow([], point("btc", 0), 3);
    for (let i = 1; i < 10; i++) s = mergeWindow(s, point("btc", i), 3);
    expect(s.map((w) => w.close)).toEqual([107, 108, 109]);
  });

  it("does not mutate its input (React state stays immutable)", () => {
    const base = [point("btc", 0)];
    mergeWindow(base, point("btc", 0, { close: 1 }), 10);
    expect(base[0]?.close).toBe(100);
  });
});

describe("applyMessage", () => {
  it("loads full history from the snapshot, bounded and sorted", () => {
    const data = [5, 1, 3, 0, 4, 2].map((i) => point("btc", i)).concat([point("eth", 0)]);
    const s = applyMessage(initialMarketState(4), { type: "snapshot", data }, 1000);
    expect(s.history.btc?.map((w) => w.close)).toEqual([102, 103, 104, 105]);
    expect(s.history.eth).toHaveLength(1);
    expect(s.lastUpdateAt).toBe(1000);
    expect(s.windowMs).toBe(WIN);
  });

  it("a snapshot replaces previous state (fresh start after reconnect)", () => {
    let s = applyMessage(initialMarketState(), { type: "snapshot", data: [point("old", 0)] }, 1);
    s = applyMessage(s, { type: "snapshot", data: [point("new", 0)] }, 2);
    expect(Object.keys(s.history)).toEqual(["new"]);
  });

  it("an empty snapshot (restarted server) keeps what is on screen", () => {
    const s1 = applyMessage(initialMarketState(), { type: "snapshot", data: [point("btc", 0)] }, 1);
    const s2 = applyMessage(s1, { type: "snapshot", data: [] }, 2);
    expect(s2).toBe(s1);
  });

  it("updates replace the open window and grow history live", () => {
    let s = applyMessage(initialMarketState(), { type: "snapshot", data: [point("btc", 0)] }, 1);
    s = applyMessages(
      s,
      [
        { type: "market_update", data: [point("btc", 1, { close: 200, final: false })] },
        { type: "market_update", data: [point("btc", 1, { close: 201, final: false })] },
        { type: "market_update", data: [point("eth", 1)] },
      ],
      5,
    );
    expect(s.history.btc?.map((w) => w.close)).toEqual([100, 201]);
    expect(s.history.eth).toHaveLength(1);
    expect(s.lastUpdateAt).toBe(5);
  });

  it("keeps untouched coins' arrays identical so memoised charts skip them", () => {
    const s1 = applyMessage(initialMarketState(), { type: "snapshot", data: [point("btc", 0), point("eth", 0)] }, 1);
    const s2 = applyMessage(s1, { type: "market_update", data: [point("btc", 1)] }, 2);
    expect(s2.history.eth).toBe(s1.history.eth);
    expect(s2.history.btc).not.toBe(s1.history.btc);
  });

  it("records source status without touching data", () => {
    const s = applyMessage(initialMarketState(), { type: "source_status", source: "coingecko", live: false, detail: "x" }, 1);
    expect(s.sources.coingecko).toEqual({ source: "coingecko", live: false, detail: "x" });
    expect(s.lastUpdateAt).toBeNull();
  });
});

describe("selectors", () => {
  it("latestWindows returns one newest window per coin, largest market cap first", () => {
    const s = applyMessage(
      initialMarketState(),
      {
        type: "snapshot",
        data: [point("small", 0, { market_cap: 1 }), point("big", 0, { market_cap: 1e12 }), point("big", 1, { market_cap: 2e12 })],
      },
      1,
    );
    const latest = latestWindows(s);
    expect(latest.map((w) => [w.coin, w.market_cap])).toEqual([
      ["big", 2e12],
      ["small", 1],
    ]);
  });

  it("is stale only after two windows without data", () => {
    const s = applyMessage(initialMarketState(), { type: "snapshot", data: [point("btc", 0)] }, 0);
    expect(isStale(initialMarketState(), 1e9)).toBe(false);
    expect(isStale(s, 2 * WIN)).toBe(false);
    expect(isStale(s, 2 * WIN + 1)).toBe(true);
  });

  it("simulated or unreachable sources are never live", () => {
    expect(sourceNotLive({ source: "coingecko", live: true, detail: "" })).toBe(false);
    expect(sourceNotLive({ source: "coingecko", live: false, detail: "timeout" })).toBe(true);
    expect(sourceNotLive({ source: "simulated", live: true, detail: "" })).toBe(true);
  });
});
