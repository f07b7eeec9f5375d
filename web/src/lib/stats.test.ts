import { describe, expect, it } from "vitest";
import { point } from "../test/fixtures";
import { marketStats } from "./stats";

describe("marketStats", () => {
  it("summarises the latest windows", () => {
    const s = marketStats([
      point("a", 0, { avg_change_24h: 4, market_cap: 100 }),
      point("b", 0, { avg_change_24h: -8, market_cap: 50 }),
      point("c", 0, { avg_change_24h: 0, market_cap: null }),
      point("d", 0, { avg_change_24h: null, market_cap: 10 }),
    ]);
    expect(s.coinCount).toBe(4);
    expect(s.totalMarketCap).toBe(160);
    expect(s.avgChange).toBeCloseTo(-4 / 3);
    expect(s.gainers).toBe(1);
    expect(s.losers).toBe(1);
    expect(s.mostVolatile?.coin).toBe("b");
  });

  it("handles an empty market", () => {
    expect(marketStats([])).toEqual({
      coinCount: 0,
      totalMarketCap: null,
      avgChange: null,
      gainers: 0,
      losers: 0,
      mostVolatile: null,
    });
  });
});
