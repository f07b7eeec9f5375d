// Header: title, the selected source (selector, state badge, data age), socket state, stats.
import { Activity, LockKeyhole, RefreshCw, Wifi, WifiOff } from "lucide-react";
import { formatCompact, formatPercent } from "../lib/format";
import { dataAge } from "../lib/market";
import type { MarketStats } from "../lib/stats";
import { sourceBadge } from "../lib/status";
import type { StatusPoint } from "../lib/types";
import type { Connection } from "../hooks/useMarketSocket";
import { useNow } from "../hooks/useNow";
import { DataAgePill, SourceBadge, SourceSelector } from "./SourceStatus";

interface Props {
  stats: MarketStats;
  connection: Connection;
  source: string | null;
  /** Every source with data or a status. */
  sources: readonly string[];
  statuses: Readonly<Record<string, StatusPoint>>;
  onSourceChange: (source: string) => void;
  /** The selected source's status (null: none yet). */
  status: StatusPoint | null;
  newestEndMs: number | null;
  windowMs: number;
}

const CONNECTION_LABELS = {
  connecting: "Connecting",
  connected: "Connected",
  reconnecting: "Reconnecting",
  offline: "Offline",
  unauthorized: "Token needed",
} as const;

/** The WebSocket to the API server only; whether the market data is live is the source badge's job. */
function ConnectionPill({ connection }: { connection: Connection }) {
  const { status } = connection;
  const now = useNow(); // the retry countdown
  const icon =
    status === "connected" ? (
      <Wifi size={14} aria-hidden />
    ) : status === "offline" ? (
      <WifiOff size={14} aria-hidden />
    ) : status === "unauthorized" ? (
      <LockKeyhole size={14} aria-hidden />
    ) : (
      <RefreshCw size={14} className="spin" aria-hidden />
    );
  const retryIn = connection.retryAt !== null ? Math.max(0, Math.ceil((connection.retryAt - now) / 1000)) : null;
  return (
    <div
      className={`pill conn ${status}`}
      data-testid="connection"
      data-state={status}
      title="Connection to the API server"
    >
      {icon}
      <span className="conn-label">{CONNECTION_LABELS[status]}</span>
      {retryIn !== null && status !== "connected" && <span className="conn-detail">retry in {retryIn}s</span>}
    </div>
  );
}

// The pills that show time read the clock themselves, so a tick re-renders them and nothing else.
function SourceBadgeNow({ source, status }: { source: string | null; status: StatusPoint | null }) {
  return <SourceBadge badge={sourceBadge(source, status, useNow())} source={source} />;
}

function DataAgeNow({ newestEndMs, windowMs }: { newestEndMs: number | null; windowMs: number }) {
  const age = dataAge({ newestEndMs, windowMs }, useNow());
  return <DataAgePill age={age} newestEndMs={newestEndMs} windowMs={windowMs} />;
}

function Stat({
  label,
  value,
  sub,
  tone,
  testId,
}: {
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
      {sub && (
        <div className="stat-sub" title={sub}>
          {sub}
        </div>
      )}
    </div>
  );
}

export function Header(props: Props) {
  const { stats, connection, source, sources, statuses, onSourceChange, status, newestEndMs, windowMs } = props;
  const avgTone = stats.avgChange === null ? "" : stats.avgChange >= 0 ? "up" : "down";
  const mv = stats.mostVolatile;
  // The selector appears once there is a choice (or a shared link names an unknown source).
  const choice = new Set(source !== null ? [...sources, source] : sources).size > 1;
  return (
    <header className="header">
      <div className="header-top">
        <h1>
          <Activity size={22} aria-hidden className="logo" /> CryptoPulse
        </h1>
        <div className="header-status">
          {choice && <SourceSelector sources={sources} statuses={statuses} value={source} onChange={onSourceChange} />}
          <SourceBadgeNow source={source} status={status} />
          <DataAgeNow newestEndMs={newestEndMs} windowMs={windowMs} />
          <ConnectionPill connection={connection} />
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
