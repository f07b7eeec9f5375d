// The selected source's state, the age of its data, and the source selector.
import { CircleHelp, Clock, CloudOff, FlaskConical, History, LoaderCircle, Radio, TriangleAlert } from "lucide-react";
import type { ReactElement } from "react";
import { formatDuration, formatTime } from "../lib/format";
import { staleAfterMs, type DataAge } from "../lib/market";
import type { Badge, BadgeState } from "../lib/status";
import type { StatusPoint } from "../lib/types";

const ICONS: Record<BadgeState, ReactElement> = {
  connecting: <LoaderCircle size={14} className="spin" aria-hidden />,
  live: <Radio size={14} aria-hidden />,
  degraded: <TriangleAlert size={14} aria-hidden />,
  unreachable: <CloudOff size={14} aria-hidden />,
  simulated: <FlaskConical size={14} aria-hidden />,
  replay: <History size={14} aria-hidden />,
  unknown: <CircleHelp size={14} aria-hidden />,
};

export function SourceBadge({ badge, source }: { badge: Badge; source: string | null }) {
  return (
    <div
      className={`pill badge ${badge.state}${badge.late ? " late" : ""}`}
      data-testid="source-badge"
      data-state={badge.state}
      data-source={source ?? undefined}
      data-heartbeat={badge.late ? "late" : "ok"}
      title={badge.title}
      role="status"
      aria-live="polite"
    >
      {ICONS[badge.state]}
      <span className="badge-label">{badge.label}</span>
      {badge.late && <span className="badge-late">· {badge.late}</span>}
    </div>
  );
}

export function DataAgePill({
  age,
  newestEndMs,
  windowMs,
}: {
  age: DataAge;
  newestEndMs: number | null;
  windowMs: number;
}) {
  const state = age.ageMs === null ? "empty" : age.stale ? "stale" : "fresh";
  const title =
    newestEndMs === null
      ? "No windows from this source yet"
      : `Newest window ended ${formatTime(newestEndMs)}; stale after ${formatDuration(staleAfterMs(windowMs))}`;
  return (
    <div
      className={`pill age ${state}`}
      data-testid="data-age"
      data-state={state}
      data-newest-end={newestEndMs ?? undefined}
      title={title}
    >
      {age.stale ? <TriangleAlert size={14} aria-hidden /> : <Clock size={14} aria-hidden />}
      <span>{age.ageMs === null ? "no data yet" : `data ${formatDuration(age.ageMs)} old`}</span>
      {age.stale && <strong className="age-flag">stale</strong>}
    </div>
  );
}

export function SourceSelector({
  sources,
  statuses,
  value,
  onChange,
}: {
  sources: readonly string[];
  statuses: Readonly<Record<string, StatusPoint>>;
  value: string | null;
  onChange: (source: string) => void;
}) {
  // A source from a shared link that is not known (yet) still shows as selected.
  const options = value !== null && !sources.includes(value) ? [...sources, value] : sources;
  return (
    <label className="selector">
      <span>Source</span>
      <select value={value ?? ""} onChange={(e) => onChange(e.target.value)} data-testid="source-selector">
        {value === null && <option value="">—</option>}
        {options.map((s) => {
          const state = statuses[s]?.state;
          return (
            <option key={s} value={s}>
              {state && state !== s ? `${s} (${state})` : s}
            </option>
          );
        })}
      </select>
    </label>
  );
}
