// What the line and candle charts share: margins, the time and price scales, the axes and the
// hovered candle. D3 computes; the charts render.
import { axisBottom, axisLeft, bisector, scaleLinear, scaleTime, timeFormat } from "d3";
import { useMemo, useState } from "react";
import type { CandlePoint } from "../lib/candles";
import { moneyTickFormat } from "../lib/format";

export const M = { top: 12, right: 16, bottom: 28, left: 64 };
const byStart = bisector<CandlePoint, number>((d) => d.startMs);
export const hhmmss = timeFormat("%H:%M:%S");
const hhmm = timeFormat("%H:%M");
const dayHour = timeFormat("%d %b %H:%M");
const day = timeFormat("%d %b");

/** Tick labels that differ across the span: seconds for minutes, days for weeks. */
function timeTickFormat(spanMs: number): (d: Date) => string {
  if (spanMs < 10 * 60_000) return hhmmss;
  if (spanMs <= 36 * 3_600_000) return hhmm;
  if (spanMs <= 8 * 86_400_000) return dayHour;
  return day;
}

export interface PriceFrame {
  innerW: number;
  /** The plot area's height: the time axis is drawn below it. */
  innerH: number;
  /** The price scale's height: `innerH`, less the volume strip and its gap when there is one. */
  priceH: number;
  /** The volume strip at the bottom of the plot area (top and height), or null. */
  strip: { top: number; height: number } | null;
  x: ReturnType<typeof scaleTime<number, number>>;
  y: ReturnType<typeof scaleLinear<number, number>>;
}

/** The volume strip's height in a plot area of `innerH`, and the gap above it. */
export function volumeStrip(innerH: number): { height: number; gap: number } {
  return { height: Math.round(Math.min(96, Math.max(36, innerH * 0.22))), gap: 10 };
}

/**
 * Scales over `data`: `ohlc` spans lows to highs (candles, and their VWAPs), else closes (line).
 * With `volume`, the bottom of the plot area is kept for a volume strip under the prices.
 */
export function usePriceFrame(
  data: readonly CandlePoint[],
  width: number,
  height: number,
  intervalMs: number,
  ohlc: boolean,
  volume = false,
): PriceFrame {
  const innerW = Math.max(10, width - M.left - M.right);
  const innerH = Math.max(10, height - M.top - M.bottom);
  return useMemo(() => {
    const v = volumeStrip(innerH);
    const strip = volume ? { top: innerH - v.height, height: v.height } : null;
    const priceH = strip ? Math.max(10, strip.top - v.gap) : innerH;
    const first = data[0];
    const last = data[data.length - 1];
    // Candles need half an interval of room at each end; a single point needs some span at all.
    const pad = ohlc || data.length < 2 ? intervalMs / 2 : 0;
    const x = scaleTime()
      .domain([new Date((first?.startMs ?? 0) - pad), new Date((last?.startMs ?? 1) + pad)])
      .range([0, innerW]);
    let lo = Infinity;
    let hi = -Infinity;
    for (const d of data) {
      lo = Math.min(lo, ohlc ? d.low : d.close);
      hi = Math.max(hi, ohlc ? d.high : d.close);
      // A VWAP lies within low..high; kept in view even if a rounding puts it a hair outside.
      if (ohlc && d.vwap !== null) [lo, hi] = [Math.min(lo, d.vwap), Math.max(hi, d.vwap)];
    }
    if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
    const span = hi - lo || Math.abs(hi) * 0.01 || 1;
    const y = scaleLinear()
      .domain([Math.max(0, lo - span * 0.08), hi + span * 0.08])
      .range([priceH, 0])
      .nice();
    return { innerW, innerH, priceH, strip, x, y };
  }, [data, intervalMs, ohlc, innerW, innerH, volume]);
}

/** The x axis, the price axis and the horizontal grid of a frame. */
export function useAxes({ x, y, innerW, priceH }: PriceFrame, quote: string | null = null) {
  return useMemo(() => {
    const [from, to] = x.domain();
    const fmt = timeTickFormat((to?.getTime() ?? 0) - (from?.getTime() ?? 0));
    const count = Math.max(2, Math.floor(priceH / 45));
    const money = moneyTickFormat(y.ticks(count), quote);
    return {
      xAxis: axisBottom(x)
        .ticks(Math.max(2, Math.floor(innerW / 90)))
        .tickFormat((d) => fmt(d as Date))
        .tickSizeOuter(0),
      yAxis: axisLeft(y)
        .ticks(count)
        .tickFormat((d) => money(d as number))
        .tickSizeOuter(0),
      grid: axisLeft(y)
        .ticks(count)
        .tickSize(-innerW)
        .tickFormat(() => ""),
    };
  }, [x, y, innerW, priceH, quote]);
}

/** The candle nearest the pointer (by start), set from pointer events on an overlay rect. */
export function useHover(data: readonly CandlePoint[], x: PriceFrame["x"]) {
  const [index, setIndex] = useState<number | null>(null);
  const onMove = (e: React.PointerEvent<SVGRectElement>) => {
    if (data.length === 0) return;
    const r = e.currentTarget.getBoundingClientRect();
    const t = x.invert(e.clientX - r.left).getTime();
    const i = byStart.center(data as CandlePoint[], t);
    setIndex(Math.max(0, Math.min(data.length - 1, i)));
  };
  const hovered = index !== null ? data[index] : undefined;
  return { hovered, onMove, onLeave: () => setIndex(null) };
}
