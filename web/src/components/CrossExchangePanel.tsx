// The selected coin across sources (lib/crossExchange): each source's last price with its quote
// currency and age, the highest and lowest marked, and the spread between them. Shown only when
// two or more sources have the coin. It reads the clock itself (the ages), so a tick re-renders
// this panel and not App. Test hooks: `cross-exchange` (data-coin, data-spread-bps,
// data-mixed-quotes), one `cross-exchange-row` per source (data-source, data-price, data-quote,
// data-rank, data-stale), `cross-exchange-spread`, `cross-exchange-mixed`.
import { ArrowLeftRight, TriangleAlert } from "lucide-react";
import { memo, useMemo } from "react";
import { useNow } from "../hooks/useNow";
import { crossExchange, mixedQuotesText, type SourcePrice } from "../lib/crossExchange";
import { formatAmount, formatBps, formatDuration } from "../lib/format";
import type { MarketState } from "../lib/market";

interface Props {
  history: MarketState["history"];
  coin: string;
  /** The source the rest of the dashboard shows. */
  selected: string | null;
  onSelect: (source: string) => void;
}

function rank(r: SourcePrice): string {
  return r.highest ? "highest" : r.lowest ? "lowest" : "";
}

function Row({ r, selected, onSelect }: { r: SourcePrice; selected: boolean; onSelect: (s: string) => void }) {
  return (
    <tr
      className={`${rank(r)} ${r.stale ? "stale" : ""} ${selected ? "selected" : ""}`}
      data-testid="cross-exchange-row"
      data-source={r.source}
      data-price={r.price}
      data-quote={r.quote ?? ""}
      data-rank={rank(r) || undefined}
      data-stale={r.stale}
    >
      <th scope="row">
        <button type="button" onClick={() => onSelect(r.source)} aria-pressed={selected} title={`Show ${r.name}`}>
          {r.name}
        </button>
      </th>
      <td className="num">
        {formatAmount(r.price)}{" "}
        <span className="quote" title={r.quote === null ? "Quote currency not given" : undefined}>
          {r.quote ?? "?"}
        </span>
      </td>
      <td className="num muted">{formatDuration(r.ageMs)} ago</td>
      <td>
        {r.highest && <span className="tag high">highest</span>}
        {r.lowest && <span className="tag low">lowest</span>}
        {r.stale && <span className="tag stale">stale, not compared</span>}
      </td>
    </tr>
  );
}

export const CrossExchangePanel = memo(function CrossExchangePanel({ history, coin, selected, onSelect }: Props) {
  const now = useNow();
  const v = useMemo(() => crossExchange(history, coin, now), [history, coin, now]);
  if (v.rows.length < 2) return null;
  const mixed = mixedQuotesText(v);
  return (
    <section
      className="cross"
      aria-label="Last price by source"
      data-testid="cross-exchange"
      data-coin={coin}
      data-spread-bps={v.spreadBps ?? undefined}
      data-mixed-quotes={v.mixedQuotes}
    >
      <div className="cross-head">
        <ArrowLeftRight size={14} aria-hidden />
        <span className="cross-title">Across sources</span>
        <span className="cross-spread" data-testid="cross-exchange-spread">
          {v.spreadBps === null
            ? "spread: needs two fresh prices"
            : `spread ${formatBps(v.spreadBps)} (highest vs lowest)`}
        </span>
        {mixed && (
          <span className="cross-mixed" data-testid="cross-exchange-mixed">
            <TriangleAlert size={13} aria-hidden /> {mixed}
          </span>
        )}
      </div>
      <table className="cross-rows">
        <thead className="sr-only">
          <tr>
            <th scope="col">Source</th>
            <th scope="col">Last price</th>
            <th scope="col">Age</th>
            <th scope="col">Rank</th>
          </tr>
        </thead>
        <tbody>
          {v.rows.map((r) => (
            <Row key={r.source} r={r} selected={r.source === selected} onSelect={onSelect} />
          ))}
        </tbody>
      </table>
    </section>
  );
});
