// The price charts' tooltip for one candle (inside the charts' one tooltip box, ChartTooltip).
import type { CandlePoint } from "../lib/candles";
import { formatDateTime, formatPercent, formatPrice, formatPriceCompact } from "../lib/format";
import { ChartTooltip } from "./ChartTooltip";
import { hhmmss } from "./priceFrame";

interface Props {
  candle: CandlePoint;
  /** Pointer position relative to the chart's top-left corner. */
  x: number;
  y: number;
  chartWidth: number;
  chartHeight: number;
  ohlc: boolean;
}

export function CandleTooltip({ candle: c, x, y, chartWidth, chartHeight, ohlc }: Props) {
  return (
    <ChartTooltip x={x} y={y} chartWidth={chartWidth} chartHeight={chartHeight}>
      <div className="muted">
        {formatDateTime(c.startMs)} – {hhmmss(new Date(c.endMs))}
        {c.kind === "backfill" && " · backfill"}
      </div>
      <strong>{formatPrice(c.close)}</strong>
      {ohlc && (
        <div className="ohlc">
          O {formatPriceCompact(c.open)} H {formatPriceCompact(c.high)} L {formatPriceCompact(c.low)} C{" "}
          {formatPriceCompact(c.close)}
        </div>
      )}
      <div className={(c.avg_change_24h ?? 0) >= 0 ? "up" : "down"}>24h {formatPercent(c.avg_change_24h)}</div>
      <div>{c.volatility}</div>
    </ChartTooltip>
  );
}
