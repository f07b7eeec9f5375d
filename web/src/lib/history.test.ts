import { describe, expect, it } from "vitest";
import { candle, T0 } from "../test/fixtures";
import { historyUrl, parseHistory, parseSparklines, readJson, sparklinesUrl, type HistoryQuery } from "./history";

const MIN5 = 300_000;
const q: HistoryQuery = { source: "simulated", coin: "bitcoin", interval: "5m", fromMs: T0, toMs: T0 + 10 * MIN5 };
const answer = (candles: unknown[], over: Record<string, unknown> = {}) => ({
  source: "simulated",
  coin: "bitcoin",
  symbol: "btc",
  interval: "5m",
  start: new Date(q.fromMs).toISOString(),
  end: new Date(q.toMs).toISOString(),
  candles,
  ...over,
});

describe("history URLs", () => {
  it("asks the server the socket talks to, with the range as ISO times", () => {
    const url = new URL(historyUrl("wss://h.example/ws", { ...q, coin: "avalanche-2" }));
    expect(url.origin + url.pathname).toBe("https://h.example/api/history/avalanche-2");
    expect(Object.fromEntries(url.searchParams)).toEqual({
      interval: "5m",
      from: "2026-11-24T22:00:00.000Z",
      to: "2026-11-24T22:50:00.000Z",
      source: "simulated",
    });
    expect(sparklinesUrl("ws://127.0.0.1:8000/ws", "coingecko")).toBe(
      "http://127.0.0.1:8000/api/sparklines?source=coingecko&hours=24",
    );
  });
});

describe("parseHistory", () => {
  it("takes the candles of the question", () => {
    const parsed = parseHistory(answer([candle(0, MIN5), candle(1, MIN5)]), q);
    expect(parsed.dropped).toBe(0);
    expect(parsed.candles.map((c) => c.startMs)).toEqual([T0, T0 + MIN5]);
  });

  it("refuses an answer that breaks the contract or answers another question", () => {
    expect(() => parseHistory({ candles: [] }, q)).toThrow(/history answer/);
    expect(() => parseHistory(answer([{ ...candle(0, MIN5), close: -1 }]), q)).toThrow(/close/);
    expect(() => parseHistory(answer([{ ...candle(0, MIN5), extra: 1 }]), q)).toThrow();
    expect(() => parseHistory(answer([], { coin: "ethereum" }), q)).toThrow(/ethereum/);
    expect(() => parseHistory(answer([], { interval: "1h" }), q)).toThrow(/1h/);
    expect(() => parseHistory("[]", q)).toThrow();
  });

  it("drops, and counts, candles outside the range, repeated, out of order or inconsistent", () => {
    const parsed = parseHistory(
      answer([
        candle(-1, MIN5), // before `from`
        candle(0, MIN5),
        candle(0, MIN5), // repeated
        candle(2, MIN5),
        candle(1, MIN5), // out of order
        candle(3, MIN5, { high: 1 }), // high below open
        candle(10, MIN5), // at `to`: after the boundary, the live windows' part
      ]),
      q,
    );
    expect(parsed.candles.map((c) => c.startMs)).toEqual([T0, T0 + 2 * MIN5]);
    expect(parsed.dropped).toBe(5);
    expect(parsed.droppedReason).toMatch(/outside the range/);
  });
});

describe("parseSparklines", () => {
  const body = { source: "simulated", interval: "5m", start: "2026-11-23T22:00:00Z", end: "2026-11-24T22:00:00Z" };
  it("takes each coin's closes; a coin named like a prototype key is just a key", () => {
    const out = parseSparklines({ ...body, closes: { bitcoin: [1, 2], ["__proto__"]: [3] } }, "simulated");
    expect(out.bitcoin).toEqual([1, 2]);
    expect(Object.keys(out).sort()).toEqual(["__proto__", "bitcoin"].sort());
  });
  it("refuses another source's or a malformed answer", () => {
    expect(() => parseSparklines({ ...body, closes: {} }, "coingecko")).toThrow(/simulated/);
    expect(() => parseSparklines({ ...body, closes: { bitcoin: ["1"] } }, "simulated")).toThrow();
  });
});

describe("readJson", () => {
  it("names the status of a refusal and bounds what it reads", async () => {
    await expect(readJson(new Response("{}", { status: 401 }))).rejects.toThrow(/token/);
    await expect(readJson(new Response("{}", { status: 503 }))).rejects.toThrow(/503/);
    const big = new Response("x", { headers: { "content-length": String(64 * 1024 * 1024) } });
    await expect(readJson(big)).rejects.toThrow(/too large/);
    await expect(readJson(new Response('{"a":1}'))).resolves.toEqual({ a: 1 });
  });
});
