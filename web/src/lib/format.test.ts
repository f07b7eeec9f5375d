import { describe, expect, it } from "vitest";
import {
  formatAmount,
  formatBps,
  formatCompact,
  formatDuration,
  formatMoneyCompact,
  formatPercent,
  formatPrice,
  formatQuoted,
  formatPriceCompact,
  moneyTickFormat,
  formatQuotedCompact,
} from "./format";

describe("formatCompact", () => {
  it.each([
    [0, "0"],
    [999, "999"],
    [1000, "1K"],
    [1234, "1.23K"],
    [1_500_000, "1.5M"],
    [31_250_000_000, "31.25B"],
    [1_920_000_000_000, "1.92T"],
    [2.5e15, "2500T"],
    [-4_200_000, "-4.2M"],
    [0.5, "0.5"],
  ])("%d -> %s", (v, out) => expect(formatCompact(v)).toBe(out));

  it("promotes 999_999 to 1M instead of 1000K", () => {
    expect(formatCompact(999_999)).toBe("1M");
  });

  it("shows a dash for missing and non-finite values", () => {
    expect(formatCompact(null)).toBe("—");
    expect(formatCompact(undefined)).toBe("—");
    expect(formatCompact(Number.NaN)).toBe("—");
    expect(formatCompact(Number.POSITIVE_INFINITY)).toBe("—");
  });
});

describe("formatPrice", () => {
  it("uses cents with grouping at and above one dollar", () => {
    expect(formatPrice(97012.5)).toBe("$97,012.50");
    expect(formatPrice(1)).toBe("$1.00");
  });
  it("keeps four significant digits below a dollar", () => {
    expect(formatPrice(0.08123)).toBe("$0.08123");
    expect(formatPrice(0.5)).toBe("$0.5000");
    expect(formatPrice(0.00001234)).toBe("$0.00001234");
  });
  it("compacts large prices for axes", () => {
    expect(formatPriceCompact(97012.5)).toBe("$97.01K");
    expect(formatPriceCompact(12.3)).toBe("$12.30");
    expect(formatMoneyCompact(1.92e12)).toBe("$1.92T");
    expect(formatMoneyCompact(null)).toBe("—");
  });
  it("gives the same digits without the dollar sign for prices shown with their quote", () => {
    expect(formatAmount(97012.5)).toBe("97,012.50");
    expect(formatAmount(0.08123)).toBe("0.08123");
    expect(formatAmount(0)).toBe("0.00");
    expect(formatAmount(null)).toBe("—");
  });
});

describe("formatQuoted", () => {
  it("writes dollars as before, any other quote after the amount", () => {
    expect(formatQuoted(97012.5, "USD")).toBe("$97,012.50");
    expect(formatQuoted(97012.5, null)).toBe("$97,012.50");
    expect(formatQuoted(97012.5, undefined)).toBe("$97,012.50");
    expect(formatQuoted(97012.5, "USDT")).toBe("97,012.50 USDT");
    expect(formatQuoted(null, "USDT")).toBe("—");
  });
});

describe("formatQuotedCompact", () => {
  it("is formatPriceCompact in dollars, the compact amount and the quote otherwise", () => {
    expect(formatQuotedCompact(97012.5, "USD")).toBe("$97.01K");
    expect(formatQuotedCompact(97012.5, null)).toBe("$97.01K");
    expect(formatQuotedCompact(97012.5, "USDT")).toBe("97.01K USDT");
    expect(formatQuotedCompact(12.5, "USDT")).toBe("12.50 USDT");
    expect(formatQuotedCompact(null, "USDT")).toBe("—");
  });
});

describe("formatBps", () => {
  it("keeps two decimals for small spreads, one above ten", () => {
    expect(formatBps(3.254)).toBe("3.25 bps");
    expect(formatBps(0)).toBe("0.00 bps");
    expect(formatBps(42.14)).toBe("42.1 bps");
    expect(formatBps(null)).toBe("—");
  });
});

describe("formatPercent", () => {
  it("always signs the change", () => {
    expect(formatPercent(1.844)).toBe("+1.84%");
    expect(formatPercent(-1.846)).toBe("-1.85%");
    expect(formatPercent(0)).toBe("0.00%");
  });
  it("never shows a negative zero", () => {
    expect(formatPercent(-0.001)).toBe("0.00%");
  });
  it("handles null", () => expect(formatPercent(null)).toBe("—"));
});

describe("formatDuration", () => {
  it.each([
    [-5, "0 s"],
    [0, "0 s"],
    [12_900, "12 s"],
    [65_000, "1 min"],
    [2 * 3_600_000, "2 h"],
    [47 * 3_600_000, "47 h"],
    [3 * 86_400_000, "3 d"],
  ])("%d ms -> %s", (ms, out) => expect(formatDuration(ms)).toBe(out));
});

describe("moneyTickFormat", () => {
  it("adds digits until every tick label is distinct", () => {
    const ticks = [1040, 1045, 1050, 1055, 1060];
    expect(ticks.map(moneyTickFormat(ticks))).toEqual(["$1.04K", "$1.045K", "$1.05K", "$1.055K", "$1.06K"]);
  });
  it("stays short when ticks are far apart", () => {
    const ticks = [93000, 94000, 95000];
    expect(ticks.map(moneyTickFormat(ticks))).toEqual(["$93K", "$94K", "$95K"]);
  });
  it("writes a dollar sign only for dollars: the price above the chart names another quote", () => {
    const ticks = [93000, 94000, 95000];
    expect(ticks.map(moneyTickFormat(ticks, "USD"))).toEqual(["$93K", "$94K", "$95K"]);
    expect(ticks.map(moneyTickFormat(ticks, "USDT"))).toEqual(["93K", "94K", "95K"]);
  });
});
