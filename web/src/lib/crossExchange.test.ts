import { describe, expect, it } from "vitest";
import { point, T0, WIN } from "../test/fixtures";
import { crossExchange, mixedQuotesText, quoteOf, spreadBps } from "./crossExchange";
import type { MarketState } from "./market";
import type { WindowPoint } from "./types";

/** Window `i` of `source`'s bitcoin series closing at `close`, in `quote` (null: none given). */
function win(source: string, i: number, close: number, quote: string | null = "USD"): WindowPoint {
  return point("bitcoin", i, { source, close, open: close, high: close, low: close, avg_price: close, quote });
}

/** A market history from windows: source -> coin -> series (given oldest first). */
function history(...ws: WindowPoint[]): MarketState["history"] {
  const out: Record<string, Record<string, WindowPoint[]>> = {};
  for (const w of ws) ((out[w.source] ??= {})[w.coin] ??= []).push(w);
  return out;
}

/** Just after window `i` ended. */
const after = (i: number, ms = 0) => T0 + (i + 1) * WIN + ms;

describe("crossExchange", () => {
  it("takes each source's newest close, by display name, with its age", () => {
    const h = history(win("kraken", 3, 101), win("kraken", 4, 102), win("binance", 4, 100), win("coinbase", 3, 103));
    const v = crossExchange(h, "bitcoin", after(4, 2_000));
    expect(v.rows.map((r) => [r.source, r.name, r.price, r.ageMs])).toEqual([
      ["binance", "Binance", 100, 2_000],
      ["coinbase", "Coinbase", 103, 32_000],
      ["kraken", "Kraken", 102, 2_000],
    ]);
  });

  it("gives the spread in basis points between the highest and lowest, and marks them", () => {
    const v = crossExchange(
      history(win("binance", 0, 100), win("coinbase", 0, 100.5), win("kraken", 0, 100.2)),
      "bitcoin",
      after(0),
    );
    expect(v.spreadBps).toBeCloseTo(50, 9); // (100.5 - 100) / 100 * 10,000
    expect(v.compared).toBe(3);
    expect(v.rows.filter((r) => r.highest).map((r) => r.source)).toEqual(["coinbase"]);
    expect(v.rows.filter((r) => r.lowest).map((r) => r.source)).toEqual(["binance"]);
    expect(v.mixedQuotes).toBe(false);
    expect(v.quotes).toEqual(["USD"]);
  });

  it("marks neither highest nor lowest when the prices are equal", () => {
    const v = crossExchange(history(win("binance", 0, 100), win("kraken", 0, 100)), "bitcoin", after(0));
    expect(v.spreadBps).toBe(0);
    expect(v.rows.some((r) => r.highest || r.lowest)).toBe(false);
  });

  it("shows a stale price but leaves it out of the spread", () => {
    // Kraken's newest window ended 10 minutes ago (stale past 90 s with 30 s windows).
    const h = history(win("binance", 20, 100), win("coinbase", 20, 101), win("kraken", 0, 200));
    const v = crossExchange(h, "bitcoin", after(20, 1_000));
    const kraken = v.rows.find((r) => r.source === "kraken");
    expect(kraken?.stale).toBe(true);
    expect(kraken?.highest).toBe(false);
    expect(v.compared).toBe(2);
    expect(v.spreadBps).toBeCloseTo(100, 9);
    expect(v.rows.find((r) => r.highest)?.source).toBe("coinbase");
  });

  it("says the spread mixes quote currencies when they differ, never equating USD and USDT", () => {
    const v = crossExchange(
      history(win("binance", 0, 100, "USDT"), win("coinbase", 0, 100.1, "USD")),
      "bitcoin",
      after(0),
    );
    expect(v.rows.map((r) => r.quote)).toEqual(["USDT", "USD"]);
    expect(v.quotes).toEqual(["USD", "USDT"]);
    expect(v.mixedQuotes).toBe(true);
    expect(v.unknownQuote).toBe(false);
  });

  it("counts a price without a known quote as possibly mixed", () => {
    const v = crossExchange(
      history(win("binance", 0, 100, "USDT"), win("coingecko", 0, 100, null)),
      "bitcoin",
      after(0),
    );
    expect(v.rows.find((r) => r.source === "coingecko")?.quote).toBeNull();
    expect(v.quotes).toEqual(["USDT"]);
    expect(v.unknownQuote).toBe(true);
    expect(v.mixedQuotes).toBe(true);
  });

  it("compares nothing with one source, and skips sources without the coin", () => {
    const eth = point("ethereum", 0, { source: "kraken" });
    const v = crossExchange(history(win("binance", 0, 100), eth), "bitcoin", after(0));
    expect(v.rows.map((r) => r.source)).toEqual(["binance"]);
    expect(v.spreadBps).toBeNull();
    expect(v.mixedQuotes).toBe(false);
    expect(v.rows[0]?.highest).toBe(false);
    expect(crossExchange({}, "bitcoin", after(0)).rows).toEqual([]);
  });

  it("never gives a negative age for a window still open", () => {
    const v = crossExchange(history(win("binance", 5, 100)), "bitcoin", T0 + 5 * WIN + 1_000);
    expect(v.rows[0]?.ageMs).toBe(0);
    expect(v.rows[0]?.stale).toBe(false);
  });
});

describe("spreadBps and quoteOf", () => {
  it("is relative to the lower price", () => {
    expect(spreadBps(101, 100)).toBeCloseTo(100, 9);
    expect(spreadBps(100, 100)).toBe(0);
  });

  it("reads a window's quote, null when absent or empty", () => {
    expect(quoteOf(win("binance", 0, 1, "USDT"))).toBe("USDT");
    expect(quoteOf(win("binance", 0, 1, null))).toBeNull();
    expect(quoteOf({ ...win("binance", 0, 1, null), quote: "" })).toBeNull();
    expect(quoteOf({ ...win("binance", 0, 1, null), quote: undefined })).toBeNull();
  });
});

describe("mixedQuotesText", () => {
  const at = after(0);
  it("names the quotes mixed, and the sources that give none", () => {
    const two = history(win("binance", 0, 100, "USDT"), win("kraken", 0, 100, "USD"));
    expect(mixedQuotesText(crossExchange(two, "bitcoin", at))).toBe("Spread mixes quotes: USD vs USDT");
    const three = history(win("binance", 0, 100, "USDT"), win("kraken", 0, 100, "USD"), win("coingecko", 0, 1, null));
    expect(mixedQuotesText(crossExchange(three, "bitcoin", at))).toBe(
      "Spread mixes quotes: USD vs USDT, and no quote from CoinGecko",
    );
    const unknown = history(win("binance", 0, 100, "USDT"), win("coingecko", 0, 1, null));
    expect(mixedQuotesText(crossExchange(unknown, "bitcoin", at))).toBe(
      "Spread may mix quotes: no quote currency from CoinGecko",
    );
  });

  it("says nothing when every compared price is in one quote", () => {
    const same = history(win("binance", 0, 100, "USD"), win("kraken", 0, 100, "USD"));
    expect(mixedQuotesText(crossExchange(same, "bitcoin", at))).toBeNull();
  });
});
