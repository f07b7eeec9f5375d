import { describe, expect, it, vi } from "vitest";
import { readFileSync } from "node:fs";
import { agg, T0 } from "../test/fixtures";
import { isSourceId, parseServerMessage, parseStatus, parseWindow } from "./protocol";
import { SOURCE_STATES, TRENDS, VOLATILITY_LEVELS } from "./types";

const quiet = () => ({ warn: vi.fn() });

describe("parseServerMessage", () => {
  it("parses a snapshot and pre-parses window times", () => {
    const log = quiet();
    const msg = parseServerMessage(JSON.stringify({ type: "snapshot", data: [agg("bitcoin", 0)] }), log);
    expect(msg?.type).toBe("snapshot");
    if (msg?.type !== "snapshot") throw new Error("unreachable");
    expect(msg.data[0]?.startMs).toBe(Date.parse("2026-11-24T22:00:00Z"));
    expect(msg.data[0]?.endMs).toBe(Date.parse("2026-11-24T22:00:30Z"));
    expect(msg.data[0]?.source).toBe("coingecko");
    expect(log.warn).not.toHaveBeenCalled();
  });

  it("accepts +00:00 offsets as well as Z", () => {
    const w = parseWindow({ ...agg("bitcoin", 0), window_start: "2026-11-24T22:00:00+00:00" });
    expect(typeof w).not.toBe("string");
  });

  it("parses a source_status list and pre-parses its times", () => {
    const log = quiet();
    const data = [
      {
        source: "coingecko",
        state: "degraded",
        detail: "timeout",
        last_good: "2026-11-24T21:59:00Z",
        updated_at: "2026-11-24T22:00:00+00:00",
      },
      { source: "simulated", state: "simulated", updated_at: "2026-11-24T22:00:01Z" },
    ];
    const msg = parseServerMessage(JSON.stringify({ type: "source_status", data }), log);
    expect(msg).toEqual({
      type: "source_status",
      data: [
        { ...data[0], lastGoodMs: Date.parse("2026-11-24T21:59:00Z"), updatedMs: T0 },
        { ...data[1], detail: "", last_good: null, lastGoodMs: null, updatedMs: T0 + 1000 },
      ],
    });
    expect(log.warn).not.toHaveBeenCalled();
  });

  it("accepts every state of the contract", () => {
    for (const state of SOURCE_STATES) {
      expect(parseStatus({ source: "x", state, updated_at: "2026-11-24T22:00:00Z" })).toMatchObject({ state });
    }
  });

  it("drops malformed statuses one by one, keeping the good ones", () => {
    const log = quiet();
    const good = { source: "coingecko", state: "live", updated_at: "2026-11-24T22:00:00Z" };
    const bad = [
      { ...good, source: "" },
      { ...good, source: "Coin Gecko" },
      { ...good, state: "healthy" },
      { ...good, updated_at: "soon" },
      { ...good, updated_at: undefined },
      { ...good, last_good: "never" },
      { ...good, last_good: 5 },
      { ...good, detail: 5 },
      { source: "coingecko", live: true, detail: "old shape" },
      "live",
    ];
    const msg = parseServerMessage({ type: "source_status", data: [good, ...bad] }, log);
    if (msg?.type !== "source_status") throw new Error("expected source_status");
    expect(msg.data.map((s) => s.source)).toEqual(["coingecko"]);
    expect(log.warn).toHaveBeenCalledTimes(bad.length);
  });

  it.each([
    ["not json", "{oops"],
    ["not an object", "[1,2]"],
    ["null", "null"],
    ["unknown type", '{"type":"hello"}'],
    ["missing type", '{"data":[]}'],
    ["data not a list", '{"type":"market_update","data":{}}'],
    ["old source_status shape", '{"type":"source_status","source":"coingecko","live":true,"detail":""}'],
    ["source_status data not a list", '{"type":"source_status","data":{"source":"x"}}'],
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
      { ...agg("g", 0), source: undefined },
      { ...agg("h", 0), source: "" },
      { ...agg("i", 0), source: "Simulated!" },
      { ...agg("j", 0), source: "x".repeat(41) },
      { ...agg("k", 0), source: 7 },
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

describe("source ids", () => {
  it("follow the pattern and length of cryptopulse/schema.py (schema.json)", () => {
    const schema = JSON.parse(readFileSync(new URL("../generated/schema.json", import.meta.url), "utf8"));
    const source = schema.$defs.WindowAggregate.properties.source;
    const pattern = new RegExp(source.pattern, "u");
    const ids = ["coingecko", "a.b_c-1", "x".repeat(source.maxLength), "x".repeat(source.maxLength + 1)];
    for (const id of [...ids, "", "Coin Gecko", "-x", "Simulated!", 7, null, undefined]) {
      const valid = typeof id === "string" && id.length >= 1 && id.length <= source.maxLength && pattern.test(id);
      expect(isSourceId(id), String(id)).toBe(valid);
    }
    expect(schema.$defs.SourceStatus.properties.source).toEqual(source);
    expect([...SOURCE_STATES]).toEqual(schema.$defs.SourceStatus.properties.state.enum);
  });
});

describe("enums", () => {
  it("are the schema's, in its order", () => {
    const schema = JSON.parse(readFileSync(new URL("../generated/schema.json", import.meta.url), "utf8"));
    const props = schema.$defs.WindowAggregate.properties;
    expect([...VOLATILITY_LEVELS]).toEqual(props.volatility.enum);
    expect([...TRENDS]).toEqual(props.trend.enum);
  });
});
