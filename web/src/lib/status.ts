// What the source badge says for each source state. Pure, so every state's text is unit-tested.
import { formatDuration, formatTime } from "./format";
import { heartbeatLate } from "./market";
import type { SourceState, StatusPoint } from "./types";

/** The badge states: the wire states, plus "unknown" for a source with data but no status. */
export type BadgeState = SourceState | "unknown";

export interface Badge {
  state: BadgeState;
  label: string;
  /** Tooltip: the producer's detail and when it last spoke. */
  title: string;
  /** The producer has not repeated its status for a while: the state may be out of date. */
  late: string | null;
}

export function statusLabel(status: StatusPoint): string {
  switch (status.state) {
    case "connecting":
      // No good fetch yet: never "Live".
      return `Connecting to ${status.source}`;
    case "live":
      return "Live";
    case "degraded":
      return status.lastGoodMs !== null
        ? `Degraded — last good ${formatTime(status.lastGoodMs)}, retrying`
        : "Degraded — retrying";
    case "unreachable":
      return `${status.source} unreachable`;
    case "simulated":
      return "Simulated data";
    case "replay":
      return "Replay";
  }
}

export function sourceBadge(source: string | null, status: StatusPoint | null, now: number): Badge {
  if (status === null) {
    return {
      state: "unknown",
      label: source === null ? "No source yet" : `No status from ${source}`,
      title: "The producer of this source has not reported its state",
      late: null,
    };
  }
  const heard = `${status.source}: status at ${formatTime(status.updatedMs)}`;
  return {
    state: status.state,
    label: statusLabel(status),
    title: status.detail ? `${status.detail} (${heard})` : heard,
    late: heartbeatLate(status, now) ? `last heard ${formatDuration(now - status.updatedMs)} ago` : null,
  };
}
