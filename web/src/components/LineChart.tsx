// Selected coin over the selected range: the candles' closes as a line with a gradient fill.
// Backfilled candles (before the first live one) are drawn thinner and lighter.
// D3 gives the scales, the line/area generators and the axes; React renders the marks.
import { area, curveMonotoneX, line } from "d3";
import { memo, useId, useMemo } from "react";
import { firstLive, type CandlePoint } from "../lib/candles";
import { PriceChartFrame } from "./PriceChartFrame";
import { usePriceFrame } from "./priceFrame";

export interface PriceChartProps {
  width: number;
  height: number;
  data: readonly CandlePoint[];
  intervalMs: number;
  /** The source drawn (a series never joins two), exposed for end-to-end tests. */
  source: string;
  /** Closed live windows held, exposed for end-to-end tests of the whole pipeline. */
  finalCount: number;
  /** The prices' quote currency (the coin's latest window's; null: not given, shown as dollars). */
  quote?: string | null;
}

export const LineChart = memo(function LineChart({
  width,
  height,
  data,
  intervalMs,
  source,
  finalCount,
  quote = null,
}: PriceChartProps) {
  // useId() contains characters that are not safe inside url(#...).
  const gradientId = `grad-${useId().replace(/[^a-zA-Z0-9_-]/g, "")}`;
  const frame = usePriceFrame(data, width, height, intervalMs, false);
  const { x, y, innerW, innerH } = frame;

  const paths = useMemo(() => {
    const ln = line<CandlePoint>()
      .x((d) => x(d.startMs))
      .y((d) => y(d.close))
      .curve(curveMonotoneX);
    const ar = area<CandlePoint>()
      .x((d) => x(d.startMs))
      .y0(innerH)
      .y1((d) => y(d.close))
      .curve(curveMonotoneX);
    const all = data as CandlePoint[];
    const split = firstLive(data);
    // The backfill line runs up to the first live point, so the two parts join.
    return {
      area: ar(all) ?? "",
      backfill: split > 0 ? (ln(all.slice(0, Math.min(all.length, split + 1))) ?? "") : "",
      live: split < all.length ? (ln(all.slice(split)) ?? "") : "",
    };
  }, [data, x, y, innerH]);

  const first = data[0];
  const last = data[data.length - 1];
  const tone = !first || !last || last.close >= first.open ? "up" : "down";
  return (
    <PriceChartFrame
      width={width}
      height={height}
      data={data}
      frame={frame}
      view="line"
      label="Price over time"
      source={source}
      finalCount={finalCount}
      quote={quote}
      defs={
        <linearGradient id={gradientId} x1="0" x2="0" y1="0" y2="1">
          <stop offset="0%" className={`grad-${tone}`} stopOpacity={0.35} />
          <stop offset="100%" className={`grad-${tone}`} stopOpacity={0} />
        </linearGradient>
      }
      crosshair={(hx, hy) => (
        <>
          <line x1={0} x2={innerW} y1={hy} y2={hy} />
          <circle cx={hx} cy={hy} r={4} className={tone} />
        </>
      )}
    >
      <path className="area" d={paths.area} fill={`url(#${gradientId})`} />
      {paths.backfill && paths.live && (
        <path className={`price-line backfill ${tone}`} d={paths.backfill} data-testid="backfill-line" />
      )}
      {/* The live part; all of the line while nothing live has arrived. */}
      <path
        className={`price-line ${paths.live ? "" : "backfill"} ${tone}`}
        d={paths.live || paths.backfill}
        data-testid="price-line"
      />
      {data.length === 1 && last && <circle className={`dot ${tone}`} cx={x(last.startMs)} cy={y(last.close)} r={3} />}
    </PriceChartFrame>
  );
});
