// What the line and candle charts share around their marks: the svg with its test hooks, the
// grid and axes, the hover overlay and crosshair, and the one tooltip. The charts give the marks.
import type { ReactNode } from "react";
import type { CandlePoint } from "../lib/candles";
import { Axis } from "./Axis";
import { CandleTooltip } from "./CandleTooltip";
import { M, useAxes, useHover, type PriceFrame } from "./priceFrame";

interface Props {
  width: number;
  height: number;
  data: readonly CandlePoint[];
  frame: PriceFrame;
  view: "line" | "candles";
  label: string;
  source: string;
  finalCount: number;
  /** The prices' quote currency (null: not given, shown as dollars). */
  quote: string | null;
  /** Marks drawn before the data's marks, outside the plot area (gradients). */
  defs?: ReactNode;
  /** The crosshair's extra marks at the hovered point (x, y in the plot area). */
  crosshair?: (hx: number, hy: number) => ReactNode;
  children: ReactNode;
}

export function PriceChartFrame({
  width,
  height,
  data,
  frame,
  view,
  label,
  source,
  finalCount,
  quote,
  defs,
  crosshair,
  children,
}: Props) {
  const { x, y, innerW, innerH } = frame;
  const { xAxis, yAxis, grid } = useAxes(frame, quote);
  const { hovered, onMove, onLeave } = useHover(data, x);
  const hx = hovered ? x(hovered.startMs) : 0;
  const hy = hovered ? y(hovered.close) : 0;
  return (
    <div className="chart-wrap" style={{ width, height }}>
      <svg
        width={width}
        height={height}
        role="img"
        aria-label={label}
        data-testid="line-chart"
        data-view={view}
        data-points={data.length}
        data-final-count={finalCount}
        data-sources={source}
        data-quote={quote ?? undefined}
      >
        {defs && <defs>{defs}</defs>}
        <g transform={`translate(${M.left},${M.top})`}>
          <Axis axis={grid} className="grid" />
          <Axis axis={xAxis} transform={`translate(0,${innerH})`} />
          <Axis axis={yAxis} />
          {children}
          {hovered && (
            <g className="crosshair" pointerEvents="none">
              <line x1={hx} x2={hx} y1={0} y2={innerH} />
              {crosshair?.(hx, hy)}
            </g>
          )}
          <rect
            className="overlay"
            width={innerW}
            height={innerH}
            onPointerMove={onMove}
            onPointerDown={onMove}
            onPointerLeave={onLeave}
          />
        </g>
      </svg>
      {hovered && (
        <CandleTooltip
          candle={hovered}
          x={M.left + hx}
          y={M.top + hy}
          chartWidth={width}
          chartHeight={height}
          ohlc={view === "candles"}
          quote={quote}
        />
      )}
    </div>
  );
}
