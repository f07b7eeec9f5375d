// @vitest-environment happy-dom
// The price charts and the sparkline rendered to markup: their marks and test hooks.
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { candlePoint, type CandlePoint } from "../lib/candles";
import { candle } from "../test/fixtures";
import { CandleChart } from "./CandleChart";
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
