// Selected coin over the selected range as OHLC candles: body open→close, wick low→high, up/down
// colours; backfilled candles lighter and narrower. Each candle is a stable test hook:
// `data-testid="candle"`, `data-start` its start as toISOString() writes it (whatever the server
// wrote), `data-kind`. D3 gives scales and axes; React renders the marks.
import { memo } from "react";
import type { CandlePoint } from "../lib/candles";
import type { PriceChartProps } from "./LineChart";
import { PriceChartFrame } from "./PriceChartFrame";
import { usePriceFrame } from "./priceFrame";

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
  const { x, y } = frame;
  const candleW = Math.max(1, Math.min(24, (x(new Date(intervalMs)) - x(new Date(0))) * 0.7));
  return (
    <PriceChartFrame
      width={width}
      height={height}
      data={data}
      frame={frame}
      view="candles"
      label="Price candles over time"
      source={source}
      finalCount={finalCount}
    >
      <g data-testid="candles">
        {data.map((d) => (
          <CandleMark key={d.startMs} d={d} cx={x(d.startMs)} width={candleW} y={y} />
        ))}
      </g>
    </PriceChartFrame>
  );
});
