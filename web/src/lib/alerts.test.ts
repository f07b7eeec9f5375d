import { describe, expect, it } from "vitest";
import { point } from "../test/fixtures";
import { isAlert, newAlerts, selectAlerts } from "./alerts";

describe("alerts", () => {
  const calm = point("calm", 0, { avg_change_24h: 1, volatility: "Stable" });
  const up12 = point("up12", 0, { avg_change_24h: 12, volatility: "High Volatility", trend: "🚀 Surging" });
  const down25 = point("down25", 0, { avg_change_24h: -25, volatility: "Extreme", trend: "💥 Crashing" });
  const edge = point("edge", 0, { avg_change_24h: -10, volatility: "Volatile" });
  const justUnder = point("under", 0, { avg_change_24h: 9.99, volatility: "Volatile" });
  // Volatility label alone is enough (e.g. a classifier tweak on the server).
  const labelled = point("labelled", 0, { avg_change_24h: 3, volatility: "High Volatility" });
  const nullChange = point("nochange", 0, { avg_change_24h: null, volatility: "Stable" });

  it("selects High Volatility / Extreme coins and |change| >= 10", () => {
    expect(isAlert(up12)).toBe(true);
    expect(isAlert(down25)).toBe(true);
    expect(isAlert(edge)).toBe(true);
    expect(isAlert(labelled)).toBe(true);
    expect(isAlert(calm)).toBe(false);
    expect(isAlert(justUnder)).toBe(false);
    expect(isAlert(nullChange)).toBe(false);
  });

  it("sorts by |change|, largest first", () => {
    const out = selectAlerts([calm, up12, labelled, edge, down25, justUnder, nullChange]);
    expect(out.map((w) => w.coin)).toEqual(["down25", "up12", "edge", "labelled"]);
  });

  it("honours a custom threshold", () => {
    expect(selectAlerts([justUnder], 5).map((w) => w.coin)).toEqual(["under"]);
  });

  it("reports only coins that were not alerting before", () => {
    expect(newAlerts(new Set(["up12"]), [down25, up12]).map((w) => w.coin)).toEqual(["down25"]);
    expect(newAlerts(new Set(["up12", "down25"]), [down25, up12])).toEqual([]);
  });
});
