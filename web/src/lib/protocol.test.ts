import { describe, expect, it, vi } from "vitest";
import { agg } from "../test/fixtures";
import { parseServerMessage, parseWindow } from "./protocol";

const quiet = () => ({ warn: vi.fn() });

describe("parseServerMessage", () => {
  it("parses a snapshot and pre-parses window times", () => {
    const log = quiet();
    const msg = parseServerMessage(JSON.stringify({ type: "snapshot", data: [agg("bitcoin", 0)] }), log);
    expect(msg?.type).toBe("snapshot");
    if (msg?.type !== "snapshot") throw new Error("unreachable");
    expect(msg.data[0]?.startMs).toBe(Date.parse("2026-11-24T22:00:00Z"));
    expect(msg.data[0]?.endMs).toBe(Date.parse("2026-11-24T22:00:30Z"));
    expect(log.warn).not.toHaveBeenCalled();
  });

  it("accepts +00:00 offsets as well as Z", () => {
    const w = parseWindow({ ...agg("bitcoin", 0), window_start: "2026-11-24T22:00:00+00:00" });
    expect(typeof w).not.toBe("string");
  });

  it("parses source_status", () => {
    const msg = parseServerMessage('{"type":"source_status","source":"coingecko","live":false,"detail":"timeout"}', quiet());
    expect(msg).toEqual({ type: "source_status", source: "coingecko", live: false, detail: "timeout" });
  });

  it.each([
    ["not json", "{oops"],
    ["not an object", "[1,2]"],
    ["null", "null"],
    ["unknown type", '{"type":"hello"}'],
    ["missing type", '{"data":[]}'],
    ["data not a list", '{"type":"market_update","data":{}}'],
    ["bad source_status", '{"type":"source_status","live":"yes"}'],
  ])("ignores and logs: %s", (_, text) => {
    const log = quiet();
    expect(parseServerMessage(text, log)).toBeNull();
    expect(log.warn).toHaveBeenCalledOnce();
  });

  it("drops malformed windows but keeps the good ones", () => {
    const log = quiet();
    const bad = [
      { ...agg("a", 0), avg_price: -1 },
      { ...agg("b", 0), window_start: "yesterday" },
      { ...agg("c", 0), volatility: "Wild" },
      { ...agg("d", 0), trend: "up" },
      { ...agg("e", 0), avg_change_24h: "3" },
      { ...agg("f", 0), close: Number.NaN },
      42,
    ];
    const msg = parseServerMessage({ type: "market_update", data: [agg("bitcoin", 0), ...bad] }, log);
    if (msg?.type !== "market_update") throw new Error("expected update");
    expect(msg.data.map((w) => w.coin)).toEqual(["bitcoin"]);
    expect(log.warn).toHaveBeenCalledTimes(bad.length);
  });

  it("treats absent nullable numbers as null", () => {
    const raw: Record<string, unknown> = { ...agg("x", 0) };
    delete raw.market_cap;
    const w = parseWindow(raw);
    if (typeof w === "string") throw new Error(w);
    expect(w.market_cap).toBeNull();
  });
});
