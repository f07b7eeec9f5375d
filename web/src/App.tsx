import { BarChart3, CandlestickChart, LineChart as LineIcon } from "lucide-react";
import { useCallback, useEffect, useMemo } from "react";
import { AlertsPanel } from "./components/AlertsPanel";
import { BarChart } from "./components/BarChart";
import { CandleChart } from "./components/CandleChart";
import { CoinSelector } from "./components/CoinSelector";
import { CoinTable } from "./components/CoinTable";
import { CrossExchangePanel } from "./components/CrossExchangePanel";
import { Header } from "./components/Header";
import { LineChart } from "./components/LineChart";
import { TokenPrompt } from "./components/TokenPrompt";
import { useElementSize } from "./hooks/useElementSize";
import { useHistory } from "./hooks/useHistory";
import { useMarketSocket } from "./hooks/useMarketSocket";
import { useClock } from "./hooks/useNow";
import { useSparklines } from "./hooks/useSparklines";
import { forgetStoredToken, useToken } from "./hooks/useToken";
import { useViewState } from "./hooks/useViewState";
import { selectAlerts } from "./lib/alerts";
import { coinName } from "./lib/coins";
import { formatPercent, formatQuoted } from "./lib/format";
import { dataAge, DEFAULT_HISTORY_LIMIT, defaultSource, knownSources, sourceView } from "./lib/market";
import { barChartHeight, METRIC_DEFS, METRIC_ORDER } from "./lib/metrics";
import { RANGE_DEFS, RANGES } from "./lib/range";
import { marketStats } from "./lib/stats";
import type { WindowPoint } from "./lib/types";
import { socketUrl } from "./lib/url";

const WS_URL = socketUrl(window.location, import.meta.env.VITE_WS_URL as string | undefined);
const HISTORY_LIMIT = Number(import.meta.env.VITE_HISTORY_LIMIT) || DEFAULT_HISTORY_LIMIT;

// One empty series, so that "no data" is the same value on every render.
const NO_WINDOWS: readonly WindowPoint[] = [];

export function App() {
  const [credential, submitToken] = useToken();
  const { market, connection } = useMarketSocket(WS_URL, HISTORY_LIMIT, credential);
  const needsToken = connection.status === "unauthorized";
  // A refused token is not kept for the next visit.
  useEffect(() => {
    if (needsToken) forgetStoredToken();
  }, [needsToken]);
  const [view, setView] = useViewState();

  // One source at a time: the one in the URL, else the running one. Everything below (charts,
  // table, alerts, stats, data age) comes from this source's slice only.
  const source = view.source ?? defaultSource(market);
  const sv = useMemo(() => sourceView(market, source), [market, source]);
  const sources = useMemo(() => knownSources(market), [market]);
  const latest = sv.latest;
  const stats = useMemo(() => marketStats(latest), [latest]);
  const alerts = useMemo(() => selectAlerts(latest), [latest]);
  // The clock is read where time is shown (the header's pills); App only follows whether the data is
  // stale, so a tick re-renders it only when that flips.
  const stale = useClock((now) => dataAge(sv, now).stale);

  // With "All" selected the line chart follows the largest coin, so it is never empty.
  const chartCoin = view.coin ?? latest[0]?.coin ?? null;
  const series = (chartCoin ? sv.history[chartCoin] : undefined) ?? NO_WINDOWS;
  // The header's figures above come from the live windows; the chart from the range's candles.
  const current = series[series.length - 1];
  const finalCount = useMemo(() => series.filter((w) => w.final).length, [series]);
  const connected = connection.status === "connected";
  const history = useHistory(WS_URL, source, chartCoin, view.range, series, credential.token, connected);
  const sparklines = useSparklines(WS_URL, source, credential.token);

  const PriceChart = view.chart === "line" ? LineChart : CandleChart;
  const [lineRef, lineSize] = useElementSize<HTMLDivElement>();
  const [barRef, barSize] = useElementSize<HTMLDivElement>();
  // Stable callbacks, so that memo() keeps the charts and the table from re-rendering with App.
  const selectCoin = useCallback((coin: string | null) => setView({ coin }), [setView]);
  const selectSource = useCallback((s: string) => setView({ source: s }), [setView]);

  return (
    <div className={`app ${stale ? "is-stale" : ""}`} data-source={source ?? undefined}>
      <Header
        stats={stats}
        connection={connection}
        source={source}
        sources={sources}
        statuses={market.statuses}
        onSourceChange={selectSource}
        status={sv.status}
        newestEndMs={sv.newestEndMs}
        windowMs={sv.windowMs}
      />
      {needsToken ? (
        <TokenPrompt refused={credential.token !== null} onSubmit={submitToken} />
      ) : (
        <main className="layout">
          <section className="card line-card" aria-labelledby="line-title">
            <div className="card-head wrap">
              <div className="title-block">
                <h2 id="line-title" data-testid="line-title">
                  {chartCoin ? `${coinName(chartCoin)}` : "Price"}
                  {current && <span className="muted"> {current.symbol.toUpperCase()}</span>}
                </h2>
                {current && (
                  <div className="price-now">
                    <span className="big" data-testid="price-now" data-quote={current.quote ?? undefined}>
                      {formatQuoted(current.close, current.quote)}
                    </span>
                    <span className={(current.avg_change_24h ?? 0) >= 0 ? "up" : "down"}>
                      {formatPercent(current.avg_change_24h)}
                    </span>
                    <span className="muted">{current.trend}</span>
                  </div>
                )}
                {view.coin === null && chartCoin && (
                  <div className="hint">Largest by market cap — pick a coin to switch</div>
                )}
              </div>
              <div className="controls">
                <CoinSelector coins={latest} value={view.coin} onChange={selectCoin} />
                <div className="segmented" role="group" aria-label="Chart type">
                  <button type="button" aria-pressed={view.chart === "line"} onClick={() => setView({ chart: "line" })}>
                    <LineIcon size={14} aria-hidden /> Line
                  </button>
                  <button
                    type="button"
                    aria-pressed={view.chart === "candles"}
                    onClick={() => setView({ chart: "candles" })}
                  >
                    <CandlestickChart size={14} aria-hidden /> Candles
                  </button>
                </div>
                <div className="segmented" role="group" aria-label="Range">
                  {RANGES.map((r) => (
                    <button
                      key={r}
                      type="button"
                      aria-pressed={view.range === r}
                      onClick={() => setView({ range: r })}
                      data-testid={`range-${r}`}
                      title={`Last ${RANGE_DEFS[r].label}, ${RANGE_DEFS[r].interval} candles`}
                    >
                      {RANGE_DEFS[r].label}
                    </button>
                  ))}
                </div>
              </div>
            </div>
            <div className="chart-box line-box" ref={lineRef}>
              {history.candles.length > 0 && lineSize.width > 0 && source ? (
                <PriceChart
                  width={lineSize.width}
                  height={lineSize.height}
                  data={history.candles}
                  intervalMs={history.intervalMs}
                  source={source}
                  finalCount={finalCount}
                  quote={current?.quote ?? null}
                />
              ) : (
                <p className="empty" data-testid="chart-empty" data-status={history.status}>
                  {!chartCoin
                    ? "Waiting for market data…"
                    : history.status === "loading"
                      ? `Loading the last ${RANGE_DEFS[view.range].label}…`
                      : history.status === "error"
                        ? `History unavailable (${history.error ?? "error"}).`
                        : `No ${source ?? ""} history for this coin yet.`}
                </p>
              )}
            </div>
            <div className="muted chart-interval" data-testid="chart-interval" data-interval={history.interval}>
              {RANGE_DEFS[view.range].label} · {history.interval} candles
              {history.status === "loading" && history.candles.length > 0 ? " · loading…" : ""}
            </div>
            {/* Every source's last price for this coin (shown with two or more): compared, never joined. */}
            {chartCoin && (
              <CrossExchangePanel history={market.history} coin={chartCoin} selected={source} onSelect={selectSource} />
            )}
          </section>

          {/* Keyed by source: switching sources must not notify about "new" alerts of the other one. */}
          <AlertsPanel key={source ?? ""} alerts={alerts} selected={view.coin} onSelect={selectCoin} />

          <section className="card bar-card" aria-labelledby="bar-title">
            <div className="card-head wrap">
              <h2 id="bar-title">
                <BarChart3 size={18} aria-hidden /> All coins by {METRIC_DEFS[view.metric].label.toLowerCase()}
              </h2>
              <div className="segmented" role="radiogroup" aria-label="Bar metric">
                {METRIC_ORDER.map((m) => (
                  <button
                    key={m}
                    type="button"
                    role="radio"
                    aria-checked={view.metric === m}
                    onClick={() => setView({ metric: m })}
                    data-testid={`metric-${m}`}
                  >
                    {METRIC_DEFS[m].label}
                  </button>
                ))}
              </div>
            </div>
            <div className="chart-box bar-box" ref={barRef}>
              {latest.length > 0 && barSize.width > 0 ? (
                <BarChart
                  width={barSize.width}
                  height={barChartHeight(latest.length)}
                  data={latest}
                  metric={view.metric}
                  selected={view.coin}
                  onSelect={selectCoin}
                />
              ) : (
                <p className="empty">Waiting for market data…</p>
              )}
            </div>
          </section>

          <CoinTable data={latest} selected={view.coin} onSelect={selectCoin} sparklines={sparklines} />
        </main>
      )}
      <footer className="footer">
        {source ? `Source ${source} · ` : ""}Windows of {Math.round(sv.windowMs / 1000)} s · history {HISTORY_LIMIT}{" "}
        points per coin · <a href="/docs">API</a>
      </footer>
    </div>
  );
}
