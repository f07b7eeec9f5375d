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
  innerH: number;
  x: ReturnType<typeof scaleTime<number, number>>;
  y: ReturnType<typeof scaleLinear<number, number>>;
}

/** Scales over `data`: `ohlc` spans lows to highs (candles), else closes (line). */
export function usePriceFrame(
  data: readonly CandlePoint[],
  width: number,
  height: number,
  intervalMs: number,
  ohlc: boolean,
): PriceFrame {
  const innerW = Math.max(10, width - M.left - M.right);
  const innerH = Math.max(10, height - M.top - M.bottom);
  return useMemo(() => {
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
    }
    if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
    const span = hi - lo || Math.abs(hi) * 0.01 || 1;
    const y = scaleLinear()
      .domain([Math.max(0, lo - span * 0.08), hi + span * 0.08])
      .range([innerH, 0])
      .nice();
    return { innerW, innerH, x, y };
  }, [data, intervalMs, ohlc, innerW, innerH]);
}

/** The x axis, the price axis and the horizontal grid of a frame. */
export function useAxes({ x, y, innerW, innerH }: PriceFrame) {
  return useMemo(() => {
    const [from, to] = x.domain();
    const fmt = timeTickFormat((to?.getTime() ?? 0) - (from?.getTime() ?? 0));
    const count = Math.max(2, Math.floor(innerH / 45));
    const money = moneyTickFormat(y.ticks(count));
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
  }, [x, y, innerW, innerH]);
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
