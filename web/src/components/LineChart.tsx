// Selected coin over time: close price as a line with a gradient fill, or OHLC candles.
// D3 gives scales, the line/area generators and axes; React renders the marks.
import { area, axisBottom, axisLeft, bisector, curveMonotoneX, line, scaleLinear, scaleTime, timeFormat } from "d3";
import { memo, useId, useMemo, useState } from "react";
import { formatDateTime, formatPercent, formatPrice, formatPriceCompact, moneyTickFormat } from "../lib/format";
import type { WindowPoint } from "../lib/types";
import type { ChartView } from "../lib/url";
import { Axis } from "./Axis";
import { ChartTooltip } from "./ChartTooltip";

const M = { top: 12, right: 16, bottom: 28, left: 64 };
const byStart = bisector<WindowPoint, number>((d) => d.startMs);
const hhmm = timeFormat("%H:%M");
const hhmmss = timeFormat("%H:%M:%S");

interface Props {
  width: number;
  height: number;
  data: readonly WindowPoint[];
  view: ChartView;
  windowMs: number;
}

export const LineChart = memo(function LineChart({ width, height, data, view, windowMs }: Props) {
  // useId() contains characters that are not safe inside url(#...).
  const gradientId = `grad-${useId().replace(/[^a-zA-Z0-9_-]/g, "")}`;
  const [hoverIdx, setHoverIdx] = useState<number | null>(null);
  const innerW = Math.max(10, width - M.left - M.right);
  const innerH = Math.max(10, height - M.top - M.bottom);

  // Closed (final) windows shown, exposed for end-to-end tests of the whole pipeline.
  const finalCount = useMemo(() => data.filter((d) => d.final).length, [data]);
  // The sources drawn (always exactly one: a series never joins two sources), for the same tests.
  const sources = useMemo(() => [...new Set(data.map((d) => d.source))].sort().join(" "), [data]);

  const { x, y } = useMemo(() => {
    const first = data[0];
    const last = data[data.length - 1];
    // Candles need half a window of room at each end; a single point needs some span at all.
    const pad = view === "candles" || data.length < 2 ? windowMs / 2 : 0;
    const x = scaleTime()
      .domain([new Date((first?.startMs ?? 0) - pad), new Date((last?.startMs ?? 1) + pad)])
      .range([0, innerW]);
    let lo = Infinity;
    let hi = -Infinity;
    for (const d of data) {
      lo = Math.min(lo, view === "candles" ? d.low : d.close);
      hi = Math.max(hi, view === "candles" ? d.high : d.close);
    }
    if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
    const span = hi - lo || Math.abs(hi) * 0.01 || 1;
    const y = scaleLinear()
      .domain([Math.max(0, lo - span * 0.08), hi + span * 0.08])
      .range([innerH, 0])
      .nice();
    return { x, y };
  }, [data, view, windowMs, innerW, innerH]);

  const { linePath, areaPath } = useMemo(() => {
    const ln = line<WindowPoint>()
      .x((d) => x(d.startMs))
      .y((d) => y(d.close))
      .curve(curveMonotoneX);
    const ar = area<WindowPoint>()
      .x((d) => x(d.startMs))
      .y0(innerH)
      .y1((d) => y(d.close))
      .curve(curveMonotoneX);
    return { linePath: ln(data as WindowPoint[]) ?? "", areaPath: ar(data as WindowPoint[]) ?? "" };
  }, [data, x, y, innerH]);

  const xAxis = useMemo(() => {
    // Short spans (seconds-long windows in a demo) need seconds, or every tick reads the same.
    const [from, to] = x.domain();
    const span = (to?.getTime() ?? 0) - (from?.getTime() ?? 0);
    const fmt = span < 10 * 60_000 ? hhmmss : hhmm;
    return axisBottom(x)
      .ticks(Math.max(2, Math.floor(innerW / 90)))
      .tickFormat((d) => fmt(d as Date))
      .tickSizeOuter(0);
  }, [x, innerW]);
  const yAxis = useMemo(() => {
    const count = Math.max(2, Math.floor(innerH / 45));
    const fmt = moneyTickFormat(y.ticks(count));
    return axisLeft(y)
      .ticks(count)
      .tickFormat((d) => fmt(d as number))
      .tickSizeOuter(0);
  }, [y, innerH]);
  const grid = useMemo(
    () =>
      axisLeft(y)
        .ticks(Math.max(2, Math.floor(innerH / 45)))
        .tickSize(-innerW)
        .tickFormat(() => ""),
    [y, innerH, innerW],
  );

  const first = data[0];
  const last = data[data.length - 1];
  const trendUp = !first || !last || last.close >= first.open;
  const tone = trendUp ? "up" : "down";
  const hovered = hoverIdx !== null ? data[hoverIdx] : undefined;
  const candleW = Math.max(1, Math.min(24, (x(new Date(windowMs)) - x(new Date(0))) * 0.7));

  const onMove = (e: React.PointerEvent<SVGRectElement>) => {
    if (data.length === 0) return;
    const r = e.currentTarget.getBoundingClientRect();
    const t = x.invert(e.clientX - r.left).getTime();
    const i = byStart.center(data as WindowPoint[], t);
    setHoverIdx(Math.max(0, Math.min(data.length - 1, i)));
  };

  const hx = hovered ? x(hovered.startMs) : 0;
  const hy = hovered ? y(hovered.close) : 0;

  return (
    <div className="chart-wrap" style={{ width, height }}>
      <svg
        width={width}
        height={height}
        role="img"
        aria-label="Price over time"
        data-testid="line-chart"
        data-final-count={finalCount}
        data-sources={sources}
      >
        <defs>
          <linearGradient id={gradientId} x1="0" x2="0" y1="0" y2="1">
            <stop offset="0%" className={`grad-${tone}`} stopOpacity={0.35} />
            <stop offset="100%" className={`grad-${tone}`} stopOpacity={0} />
          </linearGradient>
        </defs>
        <g transform={`translate(${M.left},${M.top})`}>
          <Axis axis={grid} className="grid" />
          <Axis axis={xAxis} transform={`translate(0,${innerH})`} />
          <Axis axis={yAxis} />
          {view === "line" ? (
            <>
              <path className="area" d={areaPath} fill={`url(#${gradientId})`} />
              <path className={`price-line ${tone}`} d={linePath} data-testid="price-line" />
              {data.length === 1 && last && (
                <circle className={`dot ${tone}`} cx={x(last.startMs)} cy={y(last.close)} r={3} />
              )}
            </>
          ) : (
            <g data-testid="candles">
              {data.map((d) => {
                const cx = x(d.startMs);
                const up = d.close >= d.open;
                const top = y(Math.max(d.open, d.close));
                const bodyH = Math.max(1, Math.abs(y(d.open) - y(d.close)));
                return (
                  <g key={d.startMs} className={`candle ${up ? "up" : "down"}`}>
                    <line x1={cx} x2={cx} y1={y(d.high)} y2={y(d.low)} />
                    <rect x={cx - candleW / 2} y={top} width={candleW} height={bodyH} />
                  </g>
                );
              })}
            </g>
          )}
          {hovered && (
            <g className="crosshair" pointerEvents="none">
              <line x1={hx} x2={hx} y1={0} y2={innerH} />
              <line x1={0} x2={innerW} y1={hy} y2={hy} />
              <circle cx={hx} cy={hy} r={4} className={tone} />
            </g>
          )}
          <rect
            className="overlay"
            width={innerW}
            height={innerH}
            onPointerMove={onMove}
            onPointerDown={onMove}
            onPointerLeave={() => setHoverIdx(null)}
          />
        </g>
      </svg>
      {hovered && (
        <ChartTooltip x={M.left + hx} y={M.top + hy} chartWidth={width} chartHeight={height}>
          <div className="muted">
            {formatDateTime(hovered.startMs)} – {hhmmss(new Date(hovered.endMs))}
          </div>
          <strong>{formatPrice(hovered.close)}</strong>
          {view === "candles" && (
            <div className="ohlc">
              O {formatPriceCompact(hovered.open)} H {formatPriceCompact(hovered.high)} L{" "}
              {formatPriceCompact(hovered.low)} C {formatPriceCompact(hovered.close)}
            </div>
          )}
          <div className={(hovered.avg_change_24h ?? 0) >= 0 ? "up" : "down"}>
            24h {formatPercent(hovered.avg_change_24h)}
          </div>
          <div>{hovered.volatility}</div>
        </ChartTooltip>
      )}
    </div>
  );
});
