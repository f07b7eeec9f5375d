// View state kept in the URL so a link opens the same view.
import { isSourceId } from "./protocol";
import { DEFAULT_RANGE, parseRange, type Range } from "./range";

export type Metric = "price" | "change" | "volume" | "marketCap";
export type ChartView = "line" | "candles";

export interface ViewState {
  /** The source whose data is shown; null = the running source (see defaultSource). */
  source: string | null;
  coin: string | null;
  metric: Metric;
  chart: ChartView;
  /** The line/candle chart's time range. */
  range: Range;
}

const METRICS: readonly Metric[] = ["price", "change", "volume", "marketCap"];
const VIEWS: readonly ChartView[] = ["line", "candles"];

export const DEFAULT_VIEW: ViewState = {
  source: null,
  coin: null,
  metric: "price",
  chart: "line",
  range: DEFAULT_RANGE,
};

export function readView(search: string): ViewState {
  const q = new URLSearchParams(search);
  const source = q.get("source");
  const coin = q.get("coin");
  const metric = q.get("metric") as Metric | null;
  const chart = q.get("chart") as ChartView | null;
  return {
    source: isSourceId(source) ? source : null,
    coin: coin && coin !== "all" ? coin : null,
    metric: metric && METRICS.includes(metric) ? metric : DEFAULT_VIEW.metric,
    chart: chart && VIEWS.includes(chart) ? chart : DEFAULT_VIEW.chart,
    range: parseRange(q.get("range")) ?? DEFAULT_VIEW.range,
  };
}

/** Writes the view into `search`, keeping unrelated parameters (e.g. ?ws=) and omitting defaults. */
export function writeView(search: string, view: ViewState): string {
  const q = new URLSearchParams(search);
  const set = (k: string, v: string | null, dflt: string | null) => {
    if (v === null || v === dflt) q.delete(k);
    else q.set(k, v);
  };
  set("source", view.source, null);
  set("coin", view.coin, null);
  set("metric", view.metric, DEFAULT_VIEW.metric);
  set("chart", view.chart, DEFAULT_VIEW.chart);
  set("range", view.range, DEFAULT_VIEW.range);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * WebSocket URL: `?ws=` override (development builds only: in a built app a link could point the
 * dashboard at another server), else VITE_WS_URL (set when building), else `/ws` on the page's origin.
 */
export function socketUrl(
  loc: { protocol: string; host: string; search: string },
  envUrl?: string,
  dev: boolean = import.meta.env.DEV,
): string {
  const override = (dev ? new URLSearchParams(loc.search).get("ws") : null) ?? envUrl;
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  if (override) {
    if (/^wss?:\/\//.test(override)) return override;
    return `${scheme}//${loc.host}${override.startsWith("/") ? "" : "/"}${override}`;
  }
  return `${scheme}//${loc.host}/ws`;
}
