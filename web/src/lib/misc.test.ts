import { describe, expect, it } from "vitest";
import { point } from "../test/fixtures";
import { backoffDelay } from "./backoff";
import { coinName } from "./coins";
import { barChartHeight, METRIC_DEFS, sharedQuote, wantsLogScale } from "./metrics";
import { sortWindows } from "./sort";
import { DEFAULT_VIEW, readView, socketUrl, writeView, type ViewState } from "./url";

describe("backoffDelay", () => {
  const opts = { baseMs: 500, maxMs: 8000 };
  it("grows exponentially and is capped", () => {
    expect(backoffDelay(0, opts, () => 0.999)).toBeLessThanOrEqual(500);
    expect(backoffDelay(3, opts, () => 0)).toBe(2000);
    expect(backoffDelay(3, opts, () => 0.999)).toBeLessThanOrEqual(4000);
    expect(backoffDelay(30, opts, () => 0.999)).toBeLessThanOrEqual(8000);
  });
  it("jitters between half and the full ceiling", () => {
    const lo = backoffDelay(2, opts, () => 0);
    const hi = backoffDelay(2, opts, () => 0.999);
    expect(lo).toBe(1000);
    expect(hi).toBeGreaterThan(1990);
  });
});

describe("sortWindows", () => {
  const rows = [
    point("bitcoin", 0, {
      close: 97000,
      avg_change_24h: -2,
      market_cap: 1.9e12,
      volatility: "Moving",
      trend: "📉 Falling",
    }),
    point("dogecoin", 0, {
      close: 0.1,
      avg_change_24h: 25,
      market_cap: null,
      volatility: "Extreme",
      trend: "🚀 Surging",
    }),
    point("ethereum", 0, {
      close: 3500,
      avg_change_24h: null,
      market_cap: 4e11,
      volatility: "Stable",
      trend: "➡️ Stable",
    }),
  ];
  const coins = (key: Parameters<typeof sortWindows>[1], dir: "asc" | "desc") =>
    sortWindows(rows, key, dir).map((w) => w.coin);

  it("sorts numbers both ways", () => {
    expect(coins("price", "desc")).toEqual(["bitcoin", "ethereum", "dogecoin"]);
    expect(coins("price", "asc")).toEqual(["dogecoin", "ethereum", "bitcoin"]);
  });
  it("keeps missing values last in either direction", () => {
    expect(coins("marketCap", "asc")).toEqual(["ethereum", "bitcoin", "dogecoin"]);
    expect(coins("change", "desc")).toEqual(["dogecoin", "bitcoin", "ethereum"]);
    expect(coins("change", "asc")).toEqual(["bitcoin", "dogecoin", "ethereum"]);
  });
  it("sorts labels by severity, not alphabetically", () => {
    expect(coins("volatility", "desc")).toEqual(["dogecoin", "bitcoin", "ethereum"]);
    expect(coins("trend", "desc")).toEqual(["dogecoin", "ethereum", "bitcoin"]);
    expect(coins("symbol", "asc")).toEqual(["bitcoin", "dogecoin", "ethereum"]);
  });
});

describe("url view state", () => {
  const view = (over: Partial<ViewState>): ViewState => ({ ...DEFAULT_VIEW, ...over });
  it("round-trips and omits defaults", () => {
    expect(readView("")).toEqual({ source: null, coin: null, metric: "price", chart: "line", range: "24h" });
    expect(readView("?coin=solana&metric=change&chart=candles&range=7d")).toEqual({
      source: null,
      coin: "solana",
      metric: "change",
      chart: "candles",
      range: "7d",
    });
    expect(readView("?coin=all&metric=bogus")).toEqual(DEFAULT_VIEW);
    expect(writeView("", view({ coin: "solana" }))).toBe("?coin=solana");
    expect(writeView("?coin=solana&ws=%2Fother", view({ metric: "volume" }))).toBe("?ws=%2Fother&metric=volume");
  });

  it("keeps the chosen source in the URL", () => {
    expect(readView("?source=simulated&coin=bitcoin").source).toBe("simulated");
    expect(readView("?source=Not%20a%20source").source).toBeNull();
    expect(readView("?source=").source).toBeNull();
    expect(writeView("?coin=bitcoin", view({ source: "replay", coin: "bitcoin" }))).toBe("?coin=bitcoin&source=replay");
    expect(writeView("?source=replay", DEFAULT_VIEW)).toBe("");
  });

  it("keeps the range next to the coin; unknown ranges fall back to 24H", () => {
    expect(writeView("?coin=bitcoin", view({ coin: "bitcoin", range: "30d" }))).toBe("?coin=bitcoin&range=30d");
    expect(writeView("?coin=bitcoin&range=7d", view({ coin: "bitcoin" }))).toBe("?coin=bitcoin");
    expect(readView("?range=1H").range).toBe("1h");
    for (const bad of ["?range=2h", "?range=", "?range=24", "?range=%00", `?range=${"7d".repeat(1000)}`]) {
      expect(readView(bad).range).toBe("24h");
    }
    // What a link says is what the next reader gets.
    for (const range of ["1h", "24h", "7d", "30d"] as const) {
      expect(readView(writeView("", view({ range }))).range).toBe(range);
    }
  });

  it("connects to /ws on the same origin unless configured", () => {
    expect(socketUrl({ protocol: "http:", host: "localhost:8000", search: "" })).toBe("ws://localhost:8000/ws");
    expect(socketUrl({ protocol: "https:", host: "x.io", search: "" })).toBe("wss://x.io/ws");
    expect(socketUrl({ protocol: "http:", host: "h", search: "?ws=/feed" })).toBe("ws://h/feed");
    expect(socketUrl({ protocol: "http:", host: "h", search: "" }, "wss://api.example/ws")).toBe(
      "wss://api.example/ws",
    );
  });
});

describe("misc", () => {
  it("names coins", () => {
    expect(coinName("bitcoin")).toBe("Bitcoin");
    expect(coinName("avalanche-2")).toBe("Avalanche");
    expect(coinName("shiba-inu")).toBe("Shiba Inu");
    expect(coinName("matic-network-2")).toBe("Matic Network");
  });
  it("picks a log scale only when values span orders of magnitude", () => {
    expect(wantsLogScale([97000, 0.1, 3500])).toBe(true);
    expect(wantsLogScale([100, 120, 90])).toBe(false);
    expect(wantsLogScale([5])).toBe(false);
  });
  it("gives every coin a bar row", () => {
    expect(barChartHeight(100)).toBeGreaterThan(barChartHeight(10));
  });
  it("writes a price in its quote currency, the other metrics as before", () => {
    expect(METRIC_DEFS.price.format(97012.5, "USDT")).toBe("97.01K USDT");
    expect(METRIC_DEFS.price.format(97012.5, null)).toBe("$97.01K");
    expect(METRIC_DEFS.marketCap.format(1.92e12, "USDT")).toBe("$1.92T");
  });
  it("finds the quote currency all windows share, if any", () => {
    const usdt = (coin: string) => point(coin, 0, { quote: "USDT" });
    expect(sharedQuote([usdt("bitcoin"), usdt("ethereum")])).toBe("USDT");
    expect(sharedQuote([usdt("bitcoin"), point("ethereum", 0, { quote: "USD" })])).toBeNull();
    expect(sharedQuote([usdt("bitcoin"), point("ethereum", 0)])).toBeNull();
    expect(sharedQuote([])).toBeNull();
  });
});
