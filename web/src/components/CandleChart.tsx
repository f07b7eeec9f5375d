// Selected coin over the selected range as OHLC candles: body open→close, wick low→high, up/down
// colours; backfilled candles lighter and narrower. Each candle is a stable test hook:
// `data-testid="candle"`, `data-start` its start as toISOString() writes it (whatever the server
// wrote), `data-kind`. D3 gives scales and axes; React renders the marks.
import { memo } from "react";
import type { CandlePoint } from "../lib/candles";
import { Axis } from "./Axis";
import { CandleTooltip } from "./CandleTooltip";
import type { PriceChartProps } from "./LineChart";
import { M, useAxes, useHover, usePriceFrame } from "./priceFrame";

interface MarkProps {
  d: CandlePoint;
  cx: number;
  width: number;
  y: (v: number) => number;
}

function CandleMark({ d, cx, width, y }: MarkProps) {
  const up = d.close >= d.open;
  const top = y(Math.max(d.open, d.close));
  const bodyH = Math.max(1, Math.abs(y(d.open) - y(d.close)));
  // Backfill bodies are narrower as well as lighter, so the difference does not rest on colour.
  const w = d.kind === "backfill" ? Math.max(1, width * 0.6) : width;
  return (
    <g
      className={`candle ${up ? "up" : "down"} ${d.kind}`}
      data-testid="candle"
      data-start={new Date(d.startMs).toISOString()}
      data-kind={d.kind}
    >
      <line x1={cx} x2={cx} y1={y(d.high)} y2={y(d.low)} />
      <rect x={cx - w / 2} y={top} width={w} height={bodyH} />
    </g>
  );
}

export const CandleChart = memo(function CandleChart({
  width,
  height,
  data,
  intervalMs,
  source,
  finalCount,
}: PriceChartProps) {
  const frame = usePriceFrame(data, width, height, intervalMs, true);
  const { x, y, innerW, innerH } = frame;
  const { xAxis, yAxis, grid } = useAxes(frame);
  const { hovered, onMove, onLeave } = useHover(data, x);
  const candleW = Math.max(1, Math.min(24, (x(new Date(intervalMs)) - x(new Date(0))) * 0.7));
  const hx = hovered ? x(hovered.startMs) : 0;
  const hy = hovered ? y(hovered.close) : 0;

  return (
    <div className="chart-wrap" style={{ width, height }}>
      <svg
        width={width}
        height={height}
        role="img"
        aria-label="Price candles over time"
        data-testid="line-chart"
        data-view="candles"
        data-points={data.length}
        data-final-count={finalCount}
        data-sources={source}
      >
        <g transform={`translate(${M.left},${M.top})`}>
          <Axis axis={grid} className="grid" />
          <Axis axis={xAxis} transform={`translate(0,${innerH})`} />
          <Axis axis={yAxis} />
          <g data-testid="candles">
            {data.map((d) => (
              <CandleMark key={d.startMs} d={d} cx={x(d.startMs)} width={candleW} y={y} />
            ))}
          </g>
          {hovered && (
            <g className="crosshair" pointerEvents="none">
              <line x1={hx} x2={hx} y1={0} y2={innerH} />
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
        <CandleTooltip candle={hovered} x={M.left + hx} y={M.top + hy} chartWidth={width} chartHeight={height} ohlc />
      )}
    </div>
  );
});
