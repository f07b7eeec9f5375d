// Traded volume per candle (base currency), as bars in a strip under the candles: its own y scale
// and axis (D3), the candles' x. Only candles with trades get a bar. Test hooks:
// `data-testid="volume-strip"` (data-max), `data-testid="volume-bar"` (data-start, data-volume).
import { axisLeft, scaleLinear } from "d3";
import { useMemo } from "react";
import type { CandlePoint } from "../lib/candles";
import { formatCompact } from "../lib/format";
import { Axis } from "./Axis";
import type { PriceFrame } from "./priceFrame";

interface Props {
  data: readonly CandlePoint[];
  x: PriceFrame["x"];
  innerW: number;
  top: number;
  height: number;
  /** The candles' body width. */
  barW: number;
}

export function VolumeStrip({ data, x, innerW, top, height, barW }: Props) {
  const { yv, axis, grid, max } = useMemo(() => {
    let max = 0;
    for (const d of data) max = Math.max(max, d.traded_volume ?? 0);
    const yv = scaleLinear()
      .domain([0, max || 1])
      .range([top + height, top])
      .nice(2);
    return {
      yv,
      max,
      axis: axisLeft(yv)
        .ticks(2)
        .tickFormat((v) => formatCompact(v as number))
        .tickSizeOuter(0),
      grid: axisLeft(yv)
        .ticks(2)
        .tickSize(-innerW)
        .tickFormat(() => ""),
    };
  }, [data, top, height, innerW]);
  const base = top + height;
  return (
    <g className="volume-strip" data-testid="volume-strip" data-max={max}>
      <Axis axis={grid} className="grid" />
      <Axis axis={axis} />
      {data.map((d) => {
        const v = d.traded_volume ?? 0;
        if (v <= 0) return null;
        const yy = yv(v);
        return (
          <rect
            key={d.startMs}
            className={`volume-bar ${d.close >= d.open ? "up" : "down"} ${d.kind}`}
            data-testid="volume-bar"
            data-start={new Date(d.startMs).toISOString()}
            data-volume={v}
            x={x(d.startMs) - barW / 2}
            y={yy}
            width={barW}
            height={Math.max(1, base - yy)}
          />
        );
      })}
      {/* Over the bars, so a tall first bar never hides it. */}
      <text className="strip-label" x={4} y={top} dy="0.9em">
        Traded volume
      </text>
    </g>
  );
}
