import { expect, it } from "vitest";
import table from "../generated/classify.json";
import { trend, volatility } from "./classify";

// The cases are classify.py's own labels at and around every boundary (generated).
it("labels every boundary as classify.py does", () => {
  expect(table.cases.length).toBeGreaterThan(20);
  for (const [change, vol, tr] of table.cases as [number | null, string, string][]) {
    expect([volatility(change), trend(change)], String(change)).toEqual([vol, tr]);
  }
});
