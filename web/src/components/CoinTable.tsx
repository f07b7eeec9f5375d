// All coins, sortable by any column; click a row to select the coin.
import { ArrowDown, ArrowUp, ArrowUpDown } from "lucide-react";
import { memo, useMemo, useState } from "react";
import { coinName } from "../lib/coins";
import { formatMoneyCompact, formatPercent, formatQuoted } from "../lib/format";
import { sortWindows, type SortDir, type SortKey } from "../lib/sort";
import type { WindowPoint } from "../lib/types";
import { Sparkline } from "./Sparkline";

interface Props {
  data: readonly WindowPoint[];
  selected: string | null;
  onSelect: (coin: string) => void;
  /** Coin -> closes over the last 24 h (the sparkline column); a coin without any shows none. */
  sparklines: Readonly<Record<string, readonly number[]>>;
}

const SPARK_W = 96;
const SPARK_H = 24;
const NO_CLOSES: readonly number[] = [];

const COLUMNS: readonly { key: SortKey; label: string; numeric: boolean }[] = [
  { key: "symbol", label: "Coin", numeric: false },
  { key: "price", label: "Price", numeric: true },
  { key: "change", label: "24h", numeric: true },
  { key: "volume", label: "Volume", numeric: true },
  { key: "marketCap", label: "Market cap", numeric: true },
  { key: "volatility", label: "Volatility", numeric: false },
  { key: "trend", label: "Trend", numeric: false },
];

export const CoinTable = memo(function CoinTable({ data, selected, onSelect, sparklines }: Props) {
  const [sort, setSort] = useState<{ key: SortKey; dir: SortDir }>({ key: "marketCap", dir: "desc" });
  const rows = useMemo(() => sortWindows(data, sort.key, sort.dir), [data, sort]);

  const clickHeader = (key: SortKey) =>
    setSort((s) =>
      s.key === key ? { key, dir: s.dir === "asc" ? "desc" : "asc" } : { key, dir: key === "symbol" ? "asc" : "desc" },
    );

  return (
    <section className="card table-card" aria-labelledby="table-title">
      <div className="card-head">
        <h2 id="table-title">All coins</h2>
      </div>
      <div className="table-scroll">
        <table className="coins" data-testid="coin-table">
          <thead>
            <tr>
              {COLUMNS.map((c) => {
                const active = sort.key === c.key;
                const Icon = !active ? ArrowUpDown : sort.dir === "asc" ? ArrowUp : ArrowDown;
                return (
                  <th
                    key={c.key}
                    className={c.numeric ? "num" : ""}
                    aria-sort={active ? (sort.dir === "asc" ? "ascending" : "descending") : "none"}
                    scope="col"
                  >
                    <button type="button" onClick={() => clickHeader(c.key)} data-testid={`sort-${c.key}`}>
                      {c.label}
                      <Icon size={12} aria-hidden className={active ? "" : "dim"} />
                    </button>
                  </th>
                );
              })}
              <th scope="col" className="spark-col">
                Last 24 h
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((w) => {
              const c = w.avg_change_24h;
              const tone = c === null || c === 0 ? "" : c > 0 ? "up" : "down";
              return (
                <tr
                  key={w.coin}
                  className={w.coin === selected ? "selected" : ""}
                  data-testid="coin-row"
                  data-coin={w.coin}
                  onClick={() => onSelect(w.coin)}
                >
                  <td>
                    <button
                      type="button"
                      className="row-btn"
                      onClick={(e) => {
                        e.stopPropagation();
                        onSelect(w.coin);
                      }}
                      title={coinName(w.coin)}
                    >
                      <span className="sym">{w.symbol.toUpperCase()}</span>
                      <span className="name">{coinName(w.coin)}</span>
                    </button>
                  </td>
                  <td className="num" data-col="price">
                    {formatQuoted(w.close, w.quote)}
                  </td>
                  <td className={`num ${tone}`} data-col="change">
                    {formatPercent(c)}
                  </td>
                  <td className="num" data-col="volume">
                    {formatMoneyCompact(w.max_volume_24h)}
                  </td>
                  <td className="num" data-col="marketCap">
                    {formatMoneyCompact(w.market_cap)}
                  </td>
                  <td data-col="volatility">
                    <span className={`vol vol-${w.volatility.replace(/\s+/g, "-").toLowerCase()}`}>{w.volatility}</span>
                  </td>
                  <td data-col="trend" className="trend">
                    {w.trend}
                  </td>
                  <td data-col="spark" className="spark-col">
                    <Sparkline width={SPARK_W} height={SPARK_H} data={sparklines[w.coin] ?? NO_CLOSES} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
});
