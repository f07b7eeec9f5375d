// Alerts list plus opt-in browser notifications for coins that newly start alerting.
import { Bell, BellOff, TrendingDown, TrendingUp } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { ALERT_THRESHOLD, alertDirection, newAlerts } from "../lib/alerts";
import { coinName } from "../lib/coins";
import { formatPercent, formatQuotedCompact } from "../lib/format";
import type { WindowPoint } from "../lib/types";

interface Props {
  alerts: readonly WindowPoint[];
  selected: string | null;
  onSelect: (coin: string) => void;
}

const STORAGE_KEY = "cryptopulse.notifications";
const canNotify = typeof window !== "undefined" && "Notification" in window;

function useNotifications(alerts: readonly WindowPoint[]) {
  const [enabled, setEnabled] = useState(
    () => canNotify && Notification.permission === "granted" && localStorage.getItem(STORAGE_KEY) === "on",
  );
  // null until the first alert set is seen: alerts already present at load are not "new".
  const seen = useRef<Set<string> | null>(null);

  useEffect(() => {
    const current = new Set(alerts.map((a) => a.coin));
    const previous = seen.current;
    seen.current = current;
    if (!enabled || previous === null) return;
    for (const a of newAlerts(previous, alerts)) {
      try {
        new Notification(`${a.trend} ${coinName(a.coin)} ${formatPercent(a.avg_change_24h)}`, {
          body: `${a.volatility} · ${formatQuotedCompact(a.close, a.quote)}`,
          tag: `cryptopulse-${a.coin}`,
        });
      } catch (err) {
        // Some platforms (Android Chrome) only allow notifications from a service worker.
        console.warn("[cryptopulse] notification failed", err);
      }
    }
  }, [alerts, enabled]);

  const toggle = async () => {
    if (!canNotify) return;
    if (enabled) {
      setEnabled(false);
      localStorage.setItem(STORAGE_KEY, "off");
      return;
    }
    const permission = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
    const on = permission === "granted";
    setEnabled(on);
    localStorage.setItem(STORAGE_KEY, on ? "on" : "off");
  };
  return { enabled, toggle };
}

export function AlertsPanel({ alerts, selected, onSelect }: Props) {
  const { enabled, toggle } = useNotifications(alerts);
  return (
    <section className="card alerts" aria-labelledby="alerts-title">
      <div className="card-head">
        <h2 id="alerts-title">
          Alerts <span className="count">{alerts.length}</span>
        </h2>
        {canNotify && (
          <button
            type="button"
            className={`icon-btn ${enabled ? "on" : ""}`}
            onClick={() => void toggle()}
            aria-pressed={enabled}
            title={enabled ? "Turn off browser notifications" : "Notify me about new alerts"}
          >
            {enabled ? <Bell size={16} aria-hidden /> : <BellOff size={16} aria-hidden />}
            <span className="sr-only">Browser notifications</span>
          </button>
        )}
      </div>
      <p className="hint">High Volatility, Extreme, or |24h change| ≥ {ALERT_THRESHOLD}%</p>
      {alerts.length === 0 ? (
        <p className="empty">No alerts — the market is calm.</p>
      ) : (
        <ul className="alert-list" data-testid="alerts">
          {alerts.map((a) => {
            const dir = alertDirection(a);
            return (
              <li key={a.coin}>
                <button
                  type="button"
                  className={`alert ${dir} ${a.coin === selected ? "selected" : ""}`}
                  data-testid="alert"
                  data-coin={a.coin}
                  onClick={() => onSelect(a.coin)}
                >
                  {dir === "down" ? <TrendingDown size={18} aria-hidden /> : <TrendingUp size={18} aria-hidden />}
                  <span className="alert-main">
                    <span className="alert-sym">{a.symbol.toUpperCase()}</span>
                    <span className="alert-trend">{a.trend}</span>
                  </span>
                  <span className="alert-side">
                    <span className="alert-change">{formatPercent(a.avg_change_24h)}</span>
                    <span className="alert-vol">{a.volatility}</span>
                  </span>
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
