// Selected coin over the selected range as OHLC candles: body open→close, wick low→high, up/down
// colours; backfilled candles lighter and narrower. When candles hold trades, their VWAP as a line
// over the candles (broken where a candle has none or is missing) and their traded volume as bars
// in a strip underneath (VolumeStrip); ticker-only data draws neither and keeps the whole height.
// Test hooks: each candle `data-testid="candle"`, `data-start` its start as toISOString() writes
// it (whatever the server wrote), `data-kind`; `data-testid="vwap-line"` (data-points: candles with
// a VWAP). D3 gives scales, the line and axes; React renders the marks.
import { line } from "d3";
import { memo, useMemo } from "react";
import { hasTrades, withGaps, type CandlePoint } from "../lib/candles";
import type { PriceChartProps } from "./LineChart";
import { PriceChartFrame } from "./PriceChartFrame";
import { usePriceFrame, type PriceFrame } from "./priceFrame";
import { VolumeStrip } from "./VolumeStrip";

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

/** The VWAP line's path through the candles that have one; "" when none has. */
function useVwapPath(data: readonly CandlePoint[], intervalMs: number, { x, y }: PriceFrame) {
  return useMemo(() => {
    const gen = line<CandlePoint | null>()
      .defined((d) => d !== null && d.vwap !== null)
      .x((d) => x((d as CandlePoint).startMs))
      .y((d) => y((d as CandlePoint).vwap as number));
    const points = data.reduce((n, d) => n + (d.vwap !== null ? 1 : 0), 0);
    return { d: points > 0 ? (gen(withGaps(data, intervalMs)) ?? "") : "", points };
  }, [data, intervalMs, x, y]);
}

export const CandleChart = memo(function CandleChart({
  width,
  height,
  data,
  intervalMs,
  source,
  finalCount,
  quote = null,
}: PriceChartProps) {
  const traded = useMemo(() => hasTrades(data), [data]);
  const frame = usePriceFrame(data, width, height, intervalMs, true, traded);
  const { x, y, strip, innerW } = frame;
  const candleW = Math.max(1, Math.min(24, (x(new Date(intervalMs)) - x(new Date(0))) * 0.7));
  const vwap = useVwapPath(data, intervalMs, frame);
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
      quote={quote}
    >
      <g data-testid="candles">
        {data.map((d) => (
          <CandleMark key={d.startMs} d={d} cx={x(d.startMs)} width={candleW} y={y} />
        ))}
      </g>
      {vwap.d && (
        <>
          <path className="vwap-line" d={vwap.d} data-testid="vwap-line" data-points={vwap.points} />
          <text className="vwap-legend" x={innerW - 4} y={0} dy="0.9em" textAnchor="end">
            — VWAP
          </text>
        </>
      )}
      {strip && <VolumeStrip data={data} x={x} innerW={innerW} top={strip.top} height={strip.height} barW={candleW} />}
    </PriceChartFrame>
  );
});
