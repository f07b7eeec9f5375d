import { expect, it } from "vitest";
import { trend, volatility } from "./classify";

// docs/ARCHITECTURE.md "Classification": lower bounds inclusive, trend Stable strictly inside ±2.
it("labels every boundary as classify.py does", () => {
  const cases: [number | null, string, string][] = [
    [null, "Stable", "➡️ Stable"],
    [0, "Stable", "➡️ Stable"],
    [1.99, "Stable", "➡️ Stable"],
    [2, "Moving", "📈 Rising"],
    [-2, "Moving", "📉 Falling"],
    [4.99, "Moving", "📈 Rising"],
    [5, "Volatile", "🚀 Surging"],
    [-5, "Volatile", "💥 Crashing"],
    [-4.99, "Moving", "📉 Falling"],
    [10, "High Volatility", "🚀 Surging"],
    [-19.99, "High Volatility", "💥 Crashing"],
    [20, "Extreme", "🚀 Surging"],
    [-20, "Extreme", "💥 Crashing"],
  ];
  for (const [change, vol, tr] of cases) {
    expect([volatility(change), trend(change)], String(change)).toEqual([vol, tr]);
  }
});
