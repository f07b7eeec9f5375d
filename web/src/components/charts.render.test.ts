// @vitest-environment happy-dom
// The price charts and the sparkline rendered to markup: their marks and test hooks.
import { act, createElement } from "react";
import { createRoot } from "react-dom/client";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { candlePoint, type CandlePoint } from "../lib/candles";
import { candle, point } from "../test/fixtures";
import { BarChart } from "./BarChart";
import { CoinTable } from "./CoinTable";
import { CandleChart } from "./CandleChart";
import { CandleTooltip } from "./CandleTooltip";
import { LineChart } from "./LineChart";
import { Sparkline } from "./Sparkline";

const MIN5 = 300_000;
const points = (kinds: readonly ("live" | "backfill")[]): CandlePoint[] =>
  kinds.map((kind, n) => {
    const c = candlePoint(candle(n, MIN5, { kind, open: 100, close: n % 2 === 0 ? 105 : 95, high: 110, low: 90 }));
    if (c === null) throw new Error("bad candle");
    return c;
  });
const dom = (html: string) => new DOMParser().parseFromString(html, "image/svg+xml");
const chartProps = (data: CandlePoint[]) => ({
  width: 600,
  height: 300,
  data,
  intervalMs: MIN5,
  source: "simulated",
  finalCount: 2,
});

describe("CandleChart", () => {
  const html = renderToStaticMarkup(
    createElement(CandleChart, chartProps(points(["backfill", "backfill", "live", "live"]))),
  );
  const doc = new DOMParser().parseFromString(html, "text/html");
  const marks = [...doc.querySelectorAll('[data-testid="candle"]')];

  it("draws one mark per candle, each with its start and kind", () => {
    expect(marks.map((m) => m.getAttribute("data-start"))).toEqual(
      [0, 1, 2, 3].map((n) => new Date(Date.parse("2026-11-24T22:00:00Z") + n * MIN5).toISOString()),
    );
    expect(marks.map((m) => m.getAttribute("data-kind"))).toEqual(["backfill", "backfill", "live", "live"]);
    const svg = doc.querySelector('[data-testid="line-chart"]');
    expect(svg?.getAttribute("data-points")).toBe("4");
    expect(svg?.getAttribute("data-sources")).toBe("simulated");
    expect(svg?.getAttribute("data-final-count")).toBe("2");
  });

  it("draws a body open→close and a wick low→high, coloured by direction", () => {
    const [up, down] = marks.slice(2);
    expect(up?.getAttribute("class")).toContain("up");
    expect(down?.getAttribute("class")).toContain("down");
    const wick = up?.querySelector("line");
    const body = up?.querySelector("rect");
    const [y1, y2] = [Number(wick?.getAttribute("y1")), Number(wick?.getAttribute("y2"))];
    const [top, h] = [Number(body?.getAttribute("y")), Number(body?.getAttribute("height"))];
    expect(y1).toBeLessThan(top); // the high is above the body
    expect(y2).toBeGreaterThan(top + h); // the low below it
  });

  it("draws backfill candles lighter (a class) and narrower", () => {
    const width = (m: Element | undefined) => Number(m?.querySelector("rect")?.getAttribute("width"));
    expect(marks[0]?.getAttribute("class")).toContain("backfill");
    expect(width(marks[0])).toBeLessThan(width(marks[2]));
  });
});

describe("LineChart", () => {
  it("draws the closes, the backfill part apart from the live part", () => {
    const doc = dom(
      renderToStaticMarkup(createElement(LineChart, chartProps(points(["backfill", "backfill", "live"])))),
    );
    const backfill = doc.querySelector('[data-testid="backfill-line"]');
    const live = doc.querySelector('[data-testid="price-line"]');
    expect(backfill?.getAttribute("class")).toContain("backfill");
    expect(live?.getAttribute("class")).not.toContain("backfill");
    // The backfill line reaches the first live point, where the live line starts.
    const end = /([\d.]+),([\d.]+)$/.exec(backfill?.getAttribute("d") ?? "")?.[0];
    const start = /^M([\d.]+),([\d.]+)/.exec(live?.getAttribute("d") ?? "")?.[0].slice(1);
    expect(end).toBeDefined();
    expect(end).toBe(start);
  });

  it("is one backfill line while nothing live has arrived", () => {
    const doc = dom(renderToStaticMarkup(createElement(LineChart, chartProps(points(["backfill", "backfill"])))));
    expect(doc.querySelector('[data-testid="backfill-line"]')).toBeNull();
    expect(doc.querySelector('[data-testid="price-line"]')?.getAttribute("class")).toContain("backfill");
  });
});

describe("Sparkline", () => {
  const render = (data: number[]) =>
    dom(renderToStaticMarkup(createElement(Sparkline, { width: 100, height: 20, data })));

  it("draws the closes across its box, rising green, falling red", () => {
    const doc = render([1, 3, 2, 4]);
    const d = doc.querySelector("path")?.getAttribute("d") ?? "";
    const xs = [...d.matchAll(/([\d.]+),([\d.]+)/g)].map((m) => Number(m[1]));
    const ys = [...d.matchAll(/([\d.]+),([\d.]+)/g)].map((m) => Number(m[2]));
    expect(xs).toEqual(
      [1.5, 100 / 3 + 0.5, 200 / 3 - 0.5, 98.5].map((v) => expect.closeTo(v, 2)) as unknown as number[],
    );
    expect(Math.max(...ys)).toBe(18.5); // the lowest close at the bottom
    expect(Math.min(...ys)).toBe(1.5); // the highest at the top
    expect(doc.querySelector("svg")?.getAttribute("class")).toContain("up");
    expect(render([4, 1]).querySelector("svg")?.getAttribute("class")).toContain("down");
  });

  it("draws nothing for fewer than two closes, and a flat line mid-height", () => {
    expect(render([5]).querySelector("path")).toBeNull();
    expect(render([]).querySelector("svg")?.getAttribute("data-points")).toBe("0");
    expect(render([2, 2]).querySelector("path")?.getAttribute("d")).toBe("M1.5,10L98.5,10");
  });
});

describe("CandleChart with trades", () => {
  /** Candles 0..5 with trades except 2 (ticker only); candle 4 is missing (no window). */
  const traded = [0, 1, 2, 3, 5].map((n) => {
    const trades = n === 2 ? {} : { vwap: 100 + n, traded_volume: 1 + n, trade_count: 10 * (n + 1) };
    const c = candlePoint(candle(n, MIN5, { kind: "live", open: 100, close: 104, high: 110, low: 90, ...trades }));
    if (c === null) throw new Error("bad candle");
    return c;
  });
  const render = (data: CandlePoint[]) =>
    new DOMParser().parseFromString(renderToStaticMarkup(createElement(CandleChart, chartProps(data))), "text/html");
  const nums = (els: Element[], attr: string) => els.map((e) => Number(e.getAttribute(attr)));

  it("draws the VWAP line through the candles that have one, broken at gaps", () => {
    const doc = render(traded);
    const path = doc.querySelector('[data-testid="vwap-line"]');
    expect(path?.getAttribute("data-points")).toBe("4");
    // Three runs: 0-1, then 3 alone (2 has no VWAP, 4 is missing), then 5 alone.
    expect(path?.getAttribute("d")?.match(/M/g)).toHaveLength(3);
  });

  it("draws one volume bar per candle with trades, in a strip under the candles", () => {
    const doc = render(traded);
    const bars = [...doc.querySelectorAll('[data-testid="volume-bar"]')];
    expect(bars.map((b) => b.getAttribute("data-volume"))).toEqual(["1", "2", "4", "6"]);
    const heights = nums(bars, "height");
    expect(heights[3]).toBeGreaterThan(heights[0] as number); // taller for more volume
    const bottoms = bars.map((b) => Number(b.getAttribute("y")) + Number(b.getAttribute("height")));
    expect(new Set(bottoms.map((v) => v.toFixed(6))).size).toBe(1); // one baseline
    const barTop = Math.min(...nums(bars, "y"));
    const wickLows = nums([...doc.querySelectorAll('[data-testid="candle"] line')], "y2");
    expect(Math.max(...wickLows)).toBeLessThan(barTop); // the candles stay above the strip
    expect(doc.querySelector('[data-testid="volume-strip"]')?.getAttribute("data-max")).toBe("6");
  });

  it("draws neither for ticker-only candles, which keep the whole height", () => {
    const ticker = traded.map((c) => ({ ...c, vwap: null, traded_volume: null, trade_count: null }));
    const doc = render(ticker);
    expect(doc.querySelector('[data-testid="vwap-line"]')).toBeNull();
    expect(doc.querySelector('[data-testid="volume-strip"]')).toBeNull();
    const lowest = (d: Document) => Math.max(...nums([...d.querySelectorAll('[data-testid="candle"] line')], "y2"));
    expect(lowest(doc)).toBeGreaterThan(lowest(render(traded)) + 40);
  });
});

describe("CandleTooltip", () => {
  const tip = (over: Partial<CandlePoint>, quote: string | null = null) => {
    const c = candlePoint(candle(0, MIN5));
    if (c === null) throw new Error("bad candle");
    const props = { candle: { ...c, ...over }, x: 10, y: 10, chartWidth: 600, chartHeight: 300, ohlc: true, quote };
    return new DOMParser().parseFromString(renderToStaticMarkup(createElement(CandleTooltip, props)), "text/html");
  };

  it("shows VWAP, traded volume and trades when the candle has them, and nothing of them otherwise", () => {
    const text = tip({ vwap: 97012.5, traded_volume: 12.3456, trade_count: 1234 }).querySelector(
      '[data-testid="tooltip-trades"]',
    )?.textContent;
    expect(text).toContain("VWAP $97,012.50");
    expect(text).toContain("Traded 12.35 · 1,234 trades");
    expect(tip({}).querySelector('[data-testid="tooltip-trades"]')).toBeNull();
  });

  it("shows prices in their quote currency: USDT is not the dollar", () => {
    const usdt = tip({ close: 97012.5, vwap: 97000, traded_volume: 1, trade_count: 2 }, "USDT").body.textContent ?? "";
    expect(usdt).toContain("97,012.50 USDT");
    expect(usdt).toContain("VWAP 97,000.00 USDT");
    expect(usdt).not.toContain("$");
    expect(tip({ close: 97012.5 }, "USD").body.textContent).toContain("$97,012.50");
  });
});

describe("the price axis", () => {
  // The axes are drawn by D3 into their <g> after render: a real (happy-dom) root, not markup.
  const labels = (quote: string | null): string[] => {
    (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
    const container = document.createElement("div");
    const root = createRoot(container);
    act(() => root.render(createElement(CandleChart, { ...chartProps(points(["live", "live"])), quote })));
    const ticks = [...container.querySelectorAll("g.tick text")].map((t) => t.textContent ?? "");
    act(() => root.unmount());
    return ticks.filter((t) => /\d/.test(t) && !t.includes(":"));
  };

  it("has dollar ticks for dollars (or no quote given) and bare numbers for another quote", () => {
    const usd = labels("USD");
    expect(usd.length).toBeGreaterThan(1);
    expect(usd.every((t) => t.startsWith("$"))).toBe(true);
    expect(labels(null)).toEqual(usd);
    const usdt = labels("USDT");
    expect(usdt).toEqual(usd.map((t) => t.slice(1)));
  });
});

describe("CoinTable prices", () => {
  it("are in each row's quote currency", () => {
    const data = [point("bitcoin", 0, { close: 97012.5, quote: "USDT" }), point("ethereum", 0, { close: 3000 })];
    const html = renderToStaticMarkup(
      createElement(CoinTable, { data, selected: null, onSelect: () => {}, sparklines: {} }),
    );
    const rows = [...new DOMParser().parseFromString(html, "text/html").querySelectorAll('[data-testid="coin-row"]')];
    const text = rows.map((r) => r.textContent ?? "");
    expect(text.find((t) => t.includes("97,012.50"))).toContain("97,012.50 USDT");
    expect(text.find((t) => t.includes("3,000.00"))).toContain("$3,000.00");
  });
});

describe("BarChart prices", () => {
  it("label each bar in its quote currency", () => {
    const data = [point("bitcoin", 0, { close: 97012.5, quote: "USDT" }), point("ethereum", 0, { close: 3000 })];
    const props = { width: 600, height: 200, data, metric: "price" as const, selected: null, onSelect: () => {} };
    const values = [
      ...dom(renderToStaticMarkup(createElement(BarChart, props))).querySelectorAll("text.bar-value"),
    ].map((t) => t.textContent);
    expect(values).toEqual(["97.01K USDT", "$3K"]);
  });
});
