// Reconnect delays: exponential with "full jitter" so a restarted server is not hit by
// every dashboard at the same instant.
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000 };

/** Delay before reconnect attempt `attempt` (0-based); `random` in [0, 1). */
export function backoffDelay(attempt: number, opts = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, attempt));
  // Keep a floor of half the ceiling: pure full jitter can retry instantly, which spins.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
