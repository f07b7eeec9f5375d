// Header: title, connection indicator with last update / stale state, source badges, stats.
import { Activity, AlertTriangle, FlaskConical, RefreshCw, Wifi, WifiOff } from "lucide-react";
import { formatAge, formatCompact, formatPercent, formatTime } from "../lib/format";
import { isSimulated, sourceNotLive, type SourceStatus } from "../lib/market";
import type { MarketStats } from "../lib/stats";
import type { Connection } from "../hooks/useMarketSocket";

interface Props {
  stats: MarketStats;
  connection: Connection;
  lastUpdateAt: number | null;
  stale: boolean;
  sources: readonly SourceStatus[];
  now: number;
}


function ConnectionPill({ connection, lastUpdateAt, stale, now, dataLive }: {
  connection: Connection;
  lastUpdateAt: number | null;
  stale: boolean;
  now: number;
  dataLive: boolean;
}) {
  let state: string = connection.status;
  let label: string;
  let icon = <Wifi size={14} aria-hidden />;
  switch (connection.status) {
    case "live":
      if (stale) {
        state = "stale";
        label = "Stale";
        icon = <AlertTriangle size={14} aria-hidden />;
      } else {
        label = dataLive ? "Live" : "Connected";
        if (!dataLive) state = "connected";
      }
      break;
    case "connecting":
      label = "Connecting";
      icon = <RefreshCw size={14} className="spin" aria-hidden />;
      break;
    case "reconnecting":
      label = "Reconnecting";
      icon = <RefreshCw size={14} className="spin" aria-hidden />;
      break;
    case "offline":
      label = "Offline";
      icon = <WifiOff size={14} aria-hidden />;
      break;
  }
  const retryIn = connection.retryAt !== null ? Math.max(0, Math.ceil((connection.retryAt - now) / 1000)) : null;
  return (
    <div className={`pill conn ${state}`} data-testid="connection" data-state={state} role="status" aria-live="polite">
      {icon}
      <span className="conn-label">{label}</span>
      <span className="conn-detail">
        {lastUpdateAt !== null ? (
          <>
            updated <time dateTime={new Date(lastUpdateAt).toISOString()}>{formatTime(lastUpdateAt)}</time>
            {stale || connection.status !== "live" ? ` (${formatAge(now - lastUpdateAt)})` : ""}
          </>
        ) : (
          "waiting for data"
        )}
        {retryIn !== null && connection.status !== "live" ? ` · retry in ${retryIn}s` : ""}
      </span>
    </div>
  );
}

function Stat({ label, value, sub, tone, testId }: {
  label: string;
  value: string;
  sub?: string;
  tone?: string;
  testId: string;
}) {
  return (
    <div className="card stat" data-testid={testId}>
      <div className="stat-label">{label}</div>
      <div className={`stat-value ${tone ?? ""}`} title={value}>
        {value}
      </div>
      {sub && <div className="stat-sub" title={sub}>{sub}</div>}
    </div>
  );
}

export function Header({ stats, connection, lastUpdateAt, stale, sources, now }: Props) {
  const notLive = sources.filter(sourceNotLive);
  const avgTone = stats.avgChange === null ? "" : stats.avgChange >= 0 ? "up" : "down";
  const mv = stats.mostVolatile;
  return (
    <header className="header">
      <div className="header-top">
        <h1>
          <Activity size={22} aria-hidden className="logo" /> CryptoPulse
        </h1>
        <div className="header-status">
          {notLive.map((s) => {
            const simulated = isSimulated(s);
            return (
              <div
                key={s.source}
                className={`pill badge ${simulated ? "simulated" : "unreachable"}`}
                data-testid="source-badge"
                title={s.detail || undefined}
              >
                {simulated ? <FlaskConical size={14} aria-hidden /> : <AlertTriangle size={14} aria-hidden />}
                {simulated ? "Simulated data" : `${s.source} unreachable`}
              </div>
            );
          })}
          <ConnectionPill
            connection={connection}
            lastUpdateAt={lastUpdateAt}
            stale={stale}
            now={now}
            dataLive={notLive.length === 0}
          />
        </div>
      </div>
      <div className="stats">
        <Stat
          testId="stat-market-cap"
          label="Total market cap"
          value={stats.totalMarketCap === null ? "—" : `$${formatCompact(stats.totalMarketCap)}`}
        />
        <Stat testId="stat-avg-change" label="Avg 24h change" value={formatPercent(stats.avgChange)} tone={avgTone} />
        <Stat
          testId="stat-gainers"
          label="Gainers / losers"
          value={`${stats.gainers} / ${stats.losers}`}
          sub={`${stats.coinCount - stats.gainers - stats.losers} flat`}
        />
        <Stat
          testId="stat-most-volatile"
          label="Most volatile"
          value={mv ? mv.symbol.toUpperCase() : "—"}
          sub={mv ? `${formatPercent(mv.avg_change_24h)} · ${mv.volatility}` : undefined}
          tone={mv ? ((mv.avg_change_24h ?? 0) >= 0 ? "up" : "down") : undefined}
        />
        <Stat testId="stat-coins" label="Coins" value={String(stats.coinCount)} />
      </div>
    </header>
  );
}
