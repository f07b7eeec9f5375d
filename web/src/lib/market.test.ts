import { describe, expect, it } from "vitest";
import { point, status, T0, WIN } from "../test/fixtures";
import {
  applyMessage,
  applyMessages,
  dataAge,
  DEFAULT_WINDOW_MS,
  defaultSource,
  initialMarketState,
  knownSources,
  mergeWindow,
  sourceView,
  staleAfterMs,
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

const snap = (data: ReturnType<typeof point>[]) => ({ type: "snapshot" as const, data });
const upd = (data: ReturnType<typeof point>[]) => ({ type: "market_update" as const, data });
const cg = (s: ReturnType<typeof initialMarketState>) => s.history.coingecko ?? {};

describe("applyMessage", () => {
  it("loads full history from the snapshot, bounded and sorted", () => {
    const data = [5, 1, 3, 0, 4, 2].map((i) => point("btc", i)).concat([point("eth", 0)]);
    const s = applyMessage(initialMarketState(4), snap(data));
    expect(cg(s).btc?.map((w) => w.close)).toEqual([102, 103, 104, 105]);
    expect(cg(s).eth).toHaveLength(1);
  });

  it("a snapshot replaces previous state (fresh start after reconnect)", () => {
    let s = applyMessage(initialMarketState(), snap([point("old", 0), point("x", 0, { source: "simulated" })]));
    s = applyMessage(s, snap([point("new", 0)]));
    expect(Object.keys(s.history)).toEqual(["coingecko"]);
    expect(Object.keys(cg(s))).toEqual(["new"]);
  });

  it("an empty snapshot (restarted server) keeps what is on screen", () => {
    const s1 = applyMessage(initialMarketState(), snap([point("btc", 0)]));
    const s2 = applyMessage(s1, snap([]));
    expect(s2).toBe(s1);
  });

  it("updates replace the open window and grow history live", () => {
    let s = applyMessage(initialMarketState(), snap([point("btc", 0)]));
    s = applyMessages(s, [
      upd([point("btc", 1, { close: 200, final: false })]),
      upd([point("btc", 1, { close: 201, final: false })]),
      upd([point("eth", 1)]),
    ]);
    expect(cg(s).btc?.map((w) => w.close)).toEqual([100, 201]);
    expect(cg(s).eth).toHaveLength(1);
  });

  it("keeps untouched coins' and sources' arrays identical so memoised charts skip them", () => {
    const s1 = applyMessage(
      initialMarketState(),
      snap([point("btc", 0), point("eth", 0), point("btc", 0, { source: "simulated" })]),
    );
    const s2 = applyMessage(s1, upd([point("btc", 1)]));
    expect(cg(s2).eth).toBe(cg(s1).eth);
    expect(cg(s2).btc).not.toBe(cg(s1).btc);
    expect(s2.history.simulated).toBe(s1.history.simulated);
  });

  it("keeps each source's windows in its own series, even for the same coin and window", () => {
    let s = applyMessage(
      initialMarketState(),
      snap([point("bitcoin", 0, { close: 100 }), point("bitcoin", 0, { source: "simulated", close: 5 })]),
    );
    s = applyMessages(s, [
      upd([point("bitcoin", 1, { source: "simulated", close: 6 })]),
      upd([point("bitcoin", 0, { source: "replay", close: 77 })]),
    ]);
    expect(s.history.coingecko?.bitcoin?.map((w) => w.close)).toEqual([100]);
    expect(s.history.simulated?.bitcoin?.map((w) => w.close)).toEqual([5, 6]);
    expect(s.history.replay?.bitcoin?.map((w) => w.close)).toEqual([77]);
    for (const [src, coins] of Object.entries(s.history)) {
      for (const series of Object.values(coins)) expect(series.every((w) => w.source === src)).toBe(true);
    }
    expect(sourceView(s, "coingecko").latest.map((w) => w.close)).toEqual([100]);
    expect(sourceView(s, "simulated").latest.map((w) => w.close)).toEqual([6]);
    expect(sourceView(s, "simulated").history.bitcoin).toHaveLength(2);
    expect(sourceView(s, "binance").latest).toEqual([]);
    expect(sourceView(s, null).latest).toEqual([]);
  });

  it("a source_status list replaces the previous one without touching data", () => {
    const s1 = applyMessage(initialMarketState(), snap([point("btc", 0)]));
    const s2 = applyMessage(s1, {
      type: "source_status",
      data: [status("coingecko", "degraded"), status("simulated", "simulated")],
    });
    expect(Object.keys(s2.statuses).sort()).toEqual(["coingecko", "simulated"]);
    expect(s2.history).toBe(s1.history);
    const s3 = applyMessage(s2, { type: "source_status", data: [status("coingecko", "live")] });
    expect(Object.keys(s3.statuses)).toEqual(["coingecko"]);
    expect(s3.statuses.coingecko?.state).toBe("live");
    expect(knownSources(s3)).toEqual(["coingecko"]);
    expect(knownSources(s2)).toEqual(["coingecko", "simulated"]);
  });
});

describe("defaultSource", () => {
  it("is null with nothing known", () => {
    expect(defaultSource(initialMarketState())).toBeNull();
  });

  it("is the source with the newest status heartbeat (the running one)", () => {
    let s = applyMessage(
      initialMarketState(),
      // The newest window is simulated (an earlier run), but coingecko is the one reporting now.
      snap([point("btc", 5, { source: "simulated" }), point("btc", 0)]),
    );
    s = applyMessage(s, {
      type: "source_status",
      data: [
        status("simulated", "simulated", { updated_at: new Date(T0 - 3_600_000).toISOString() }),
        status("coingecko", "connecting", { updated_at: new Date(T0).toISOString() }),
      ],
    });
    expect(defaultSource(s)).toBe("coingecko");
  });

  it("stays on one of several running sources while their heartbeats take turns", () => {
    let s = initialMarketState();
    const at = (ms: number) => new Date(T0 + ms).toISOString();
    for (let i = 0; i < 4; i++) {
      // The server sends every source's latest status; here coinbase's heartbeat is the newer.
      const data = [
        status("binance", "live", { updated_at: at(i * 10_000) }),
        status("coinbase", "live", { updated_at: at(i * 10_000 + 5_000) }),
        status("kraken", "live", { updated_at: at(-600_000) }), // an earlier run's
      ];
      s = applyMessage(s, { type: "source_status", data });
      expect(defaultSource(s)).toBe("binance");
    }
  });

  it("falls back to the source of the newest window without statuses", () => {
    const s = applyMessage(
      initialMarketState(),
      snap([point("btc", 3, { source: "replay" }), point("btc", 5, { source: "simulated" }), point("eth", 4)]),
    );
    expect(defaultSource(s)).toBe("simulated");
    expect(knownSources(s)).toEqual(["coingecko", "replay", "simulated"]);
  });

  it("picks a status-only source (no data yet) when it is the running one", () => {
    let s = applyMessage(initialMarketState(), snap([point("btc", 0, { source: "simulated" })]));
    s = applyMessage(s, { type: "source_status", data: [status("binance", "connecting")] });
    expect(defaultSource(s)).toBe("binance");
    expect(sourceView(s, "binance").status?.state).toBe("connecting");
  });
});

describe("selectors", () => {
  it("latest has one newest window per coin, largest market cap first", () => {
    const s = applyMessage(
      initialMarketState(),
      snap([
        point("small", 0, { market_cap: 1 }),
        point("big", 0, { market_cap: 1e12 }),
        point("big", 1, { market_cap: 2e12 }),
      ]),
    );
    const latest = sourceView(s, "coingecko").latest;
    expect(latest.map((w) => [w.coin, w.market_cap])).toEqual([
      ["big", 2e12],
      ["small", 1],
    ]);
  });

  it("infers the window length per source", () => {
    const s = applyMessage(
      initialMarketState(),
      snap([
        point("btc", 0),
        point("btc", 0, {
          source: "simulated",
          window_start: new Date(T0).toISOString(),
          window_end: new Date(T0 + 5_000).toISOString(),
        }),
      ]),
    );
    expect(sourceView(s, "coingecko").windowMs).toBe(WIN);
    expect(sourceView(s, "simulated").windowMs).toBe(5_000);
    expect(sourceView(s, "none").windowMs).toBe(DEFAULT_WINDOW_MS);
  });
});

describe("data age", () => {
  // Newest coingecko window: i = 2, ends at T0 + 3 windows.
  const s = applyMessage(initialMarketState(), snap([point("btc", 0), point("btc", 2), point("eth", 1)]));
  const view = sourceView(s, "coingecko");
  const end = T0 + 3 * WIN;

  it("is now minus the newest window's end", () => {
    expect(view.newestEndMs).toBe(end);
    expect(dataAge(view, end + 12_000)).toEqual({ ageMs: 12_000, stale: false });
  });

  it("is zero, not negative, while the newest window is still open", () => {
    expect(dataAge(view, end - 10_000)).toEqual({ ageMs: 0, stale: false });
  });

  it("turns stale past three windows (90 s at 30 s windows)", () => {
    expect(staleAfterMs(WIN)).toBe(90_000);
    expect(dataAge(view, end + 90_000).stale).toBe(false);
    expect(dataAge(view, end + 90_001).stale).toBe(true);
  });

  it("never calls data stale sooner than 90 s, even with short windows", () => {
    expect(staleAfterMs(5_000)).toBe(90_000);
    expect(staleAfterMs(60_000)).toBe(180_000);
  });

  it("has no age (and is not stale) without data", () => {
    expect(dataAge(sourceView(s, "simulated"), end + 1e9)).toEqual({ ageMs: null, stale: false });
  });

  it("measures only the selected source", () => {
    const mixed = applyMessage(s, upd([point("btc", 100, { source: "simulated" })]));
    expect(dataAge(sourceView(mixed, "coingecko"), end + 100_000).stale).toBe(true);
    expect(dataAge(sourceView(mixed, "simulated"), end + 100_000).stale).toBe(false);
  });
});
