// Alert selection: the coins a trader must look at now.
import type { Volatility, WindowPoint } from "./types";

export const ALERT_THRESHOLD = 10;
const ALERT_VOLATILITY: ReadonlySet<Volatility> = new Set(["High Volatility", "Extreme"]);

export function isAlert(w: WindowPoint, threshold = ALERT_THRESHOLD): boolean {
  const c = w.avg_change_24h;
  return ALERT_VOLATILITY.has(w.volatility) || (c !== null && Math.abs(c) >= threshold);
}

/** Alerting coins, largest |24 h change| first (ties by symbol so the order is stable). */
export function selectAlerts(latest: readonly WindowPoint[], threshold = ALERT_THRESHOLD): WindowPoint[] {
  return latest
    .filter((w) => isAlert(w, threshold))
    .sort(
      (a, b) => Math.abs(b.avg_change_24h ?? 0) - Math.abs(a.avg_change_24h ?? 0) || a.symbol.localeCompare(b.symbol),
    );
}

/** Alerts whose coin was not alerting before: only these deserve a browser notification. */
export function newAlerts(previous: ReadonlySet<string>, alerts: readonly WindowPoint[]): WindowPoint[] {
  return alerts.filter((a) => !previous.has(a.coin));
}

export function alertDirection(w: WindowPoint): "up" | "down" | "flat" {
  const c = w.avg_change_24h ?? 0;
  return c > 0 ? "up" : c < 0 ? "down" : "flat";
}
