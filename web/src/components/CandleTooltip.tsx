// The price charts' tooltip for one candle (inside the charts' one tooltip box, ChartTooltip):
// its time, close, OHLC on the candle chart, 24 h change, and its trades when it has any.
import type { CandlePoint } from "../lib/candles";
import { formatCompact, formatDateTime, formatPercent, formatQuoted, formatQuotedCompact } from "../lib/format";
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
  /** The prices' quote currency (null: not given, shown as dollars). */
  quote: string | null;
}

/** The candle's trades, when it has any: VWAP, traded volume (base currency) and trade count. */
function Trades({ c, quote }: { c: CandlePoint; quote: string | null }) {
  if (c.vwap === null && c.traded_volume === null && c.trade_count === null) return null;
  return (
    <div className="tooltip-trades" data-testid="tooltip-trades">
      <div>VWAP {formatQuoted(c.vwap, quote)}</div>
      <div>
        Traded {formatCompact(c.traded_volume)} · {c.trade_count === null ? "—" : c.trade_count.toLocaleString("en-US")}{" "}
        {c.trade_count === 1 ? "trade" : "trades"}
      </div>
    </div>
  );
}

export function CandleTooltip({ candle: c, x, y, chartWidth, chartHeight, ohlc, quote }: Props) {
  const compact = (v: number | null) => formatQuotedCompact(v, quote);
  // Two more lines with trades: room for them near the chart's bottom edge.
  const boxHeight = c.traded_volume !== null || c.vwap !== null ? 160 : undefined;
  return (
    <ChartTooltip x={x} y={y} chartWidth={chartWidth} chartHeight={chartHeight} boxHeight={boxHeight}>
      <div className="muted">
        {formatDateTime(c.startMs)} – {hhmmss(new Date(c.endMs))}
        {c.kind === "backfill" && " · backfill"}
      </div>
      <strong>{formatQuoted(c.close, quote)}</strong>
      {ohlc && (
        <div className="ohlc">
          O {compact(c.open)} H {compact(c.high)} L {compact(c.low)} C {compact(c.close)}
        </div>
      )}
      <div className={(c.avg_change_24h ?? 0) >= 0 ? "up" : "down"}>24h {formatPercent(c.avg_change_24h)}</div>
      <div>{c.volatility}</div>
      <Trades c={c} quote={quote} />
    </ChartTooltip>
  );
}
