// All-coins bar chart: one horizontal bar per coin (horizontal so 100 symbols stay legible
// on a phone). D3 supplies scales and axes; React renders the bars, so an update only
// changes attributes, never rebuilds the chart.
import { axisBottom, axisTop, scaleBand, scaleLinear, scaleLog } from "d3";
import { memo, useMemo, useState } from "react";
import { formatMoneyCompact, formatPercent } from "../lib/format";
import { BAR_MARGIN, METRIC_DEFS, sharedQuote, wantsLogScale } from "../lib/metrics";
import type { WindowPoint } from "../lib/types";
import type { Metric } from "../lib/url";
import { coinName } from "../lib/coins";
import { Axis } from "./Axis";
import { ChartTooltip } from "./ChartTooltip";

interface Props {
  width: number;
  height: number;
  data: readonly WindowPoint[];
  metric: Metric;
  selected: string | null;
  onSelect: (coin: string) => void;
}

interface Row {
  w: WindowPoint;
  v: number | null;
}

/** Pointer position relative to the chart's <svg>, for placing the HTML tooltip. */
function pointerIn(e: React.PointerEvent<SVGElement>): { x: number; y: number } {
  const svg = e.currentTarget.ownerSVGElement;
  const r = svg?.getBoundingClientRect();
  return { x: e.clientX - (r?.left ?? 0), y: e.clientY - (r?.top ?? 0) };
}

function trendClass(w: WindowPoint): string {
  const c = w.avg_change_24h ?? 0;
  return c > 0 ? "up" : c < 0 ? "down" : "flat";
}

export const BarChart = memo(function BarChart({ width, height, data, metric, selected, onSelect }: Props) {
  const [hover, setHover] = useState<{ coin: string; x: number; y: number } | null>(null);
  const def = METRIC_DEFS[metric];
  const m = BAR_MARGIN;
  const innerW = Math.max(10, width - m.left - m.right);
  const innerH = Math.max(10, height - m.top - m.bottom);

  const rows: Row[] = useMemo(
    () =>
      data
        .map((w) => ({ w, v: def.value(w) }))
        // Largest first; coins without a value keep their row (one bar slot per coin) at the end.
        .sort((a, b) => (b.v ?? -Infinity) - (a.v ?? -Infinity) || a.w.symbol.localeCompare(b.w.symbol)),
    [data, def],
  );

  const { x, x0, log } = useMemo(() => {
    const values = rows.map((r) => r.v).filter((v): v is number => v !== null);
    if (def.diverging) {
      const ext = Math.max(1, ...values.map(Math.abs));
      const s = scaleLinear().domain([-ext, ext]).range([0, innerW]).nice();
      return { x: s, x0: s(0), log: false };
    }
    if (wantsLogScale(values)) {
      const pos = values.filter((v) => v > 0);
      const s = scaleLog()
        .domain([Math.min(...pos) / 2, Math.max(...pos) * 1.1])
        .range([0, innerW])
        .nice();
      return { x: s, x0: 0, log: true };
    }
    const s = scaleLinear()
      .domain([0, Math.max(1e-9, ...values)])
      .range([0, innerW])
      .nice();
    return { x: s, x0: 0, log: false };
  }, [rows, def, innerW]);

  const y = useMemo(
    () =>
      scaleBand<string>()
        .domain(rows.map((r) => r.w.coin))
        .range([0, innerH])
        .padding(0.2),
    [rows, innerH],
  );

  const ticks = Math.max(2, Math.floor(innerW / 90));
  const xAxis = useMemo(() => {
    // A price axis in the coins' shared quote currency ("$" only for dollars).
    const quote = metric === "price" ? sharedQuote(data) : null;
    const fmt = (v: number) => (metric === "change" ? def.format(v) : formatMoneyCompact(v, quote));
    const a = axisTop(x).ticks(ticks).tickSizeOuter(0);
    // Log scales produce a tick per subdivision of each power of ten; label only a few.
    const keep = log ? x.tickFormat(ticks) : null;
    return a.tickFormat((d) => (keep === null || keep(d as number) ? fmt(d as number) : ""));
  }, [x, ticks, log, metric, def, data]);
  const grid = useMemo(
    () =>
      axisBottom(x)
        .ticks(ticks)
        .tickSize(innerH)
        .tickFormat(() => ""),
    [x, ticks, innerH],
  );

  const hovered = hover ? rows.find((r) => r.w.coin === hover.coin) : undefined;
  const band = y.bandwidth();

  return (
    <div className="chart-wrap" style={{ width, height }}>
      <svg width={width} height={height} role="img" aria-label={`${def.label} of every coin`} data-testid="bar-chart">
        <g transform={`translate(${m.left},${m.top})`}>
          <Axis axis={grid} className="grid" />
          <Axis axis={xAxis} />
          {def.diverging && <line className="zero" x1={x0} x2={x0} y1={0} y2={innerH} />}
          {rows.map(({ w, v }) => {
            const yy = y(w.coin) ?? 0;
            const xv = v === null ? null : log ? x(Math.max(v, x.domain()[0] ?? v)) : x(v);
            const left = xv === null ? x0 : Math.min(x0, xv);
            const barW = xv === null ? 0 : Math.max(1, Math.abs(xv - x0));
            const label = `${coinName(w.coin)} (${w.symbol.toUpperCase()}): ${def.format(v, w.quote)}`;
            return (
              <g
                key={w.coin}
                className={`bar-row ${w.coin === selected ? "selected" : ""}`}
                style={{ transform: `translate(0px, ${yy}px)` }}
                onPointerEnter={(e) => setHover({ coin: w.coin, ...pointerIn(e) })}
                onPointerMove={(e) => setHover({ coin: w.coin, ...pointerIn(e) })}
                onPointerLeave={() => setHover(null)}
                onClick={() => onSelect(w.coin)}
                onKeyDown={(e) => {
                  if (e.key === "Enter" || e.key === " ") {
                    e.preventDefault();
                    onSelect(w.coin);
                  }
                }}
                role="button"
                tabIndex={0}
                aria-label={label}
                aria-pressed={w.coin === selected}
              >
                {/* Full-width hit area so tiny bars are still easy to hover and click. */}
                <rect className="hit" x={-m.left} y={0} width={innerW + m.left + m.right} height={band} />
                <text className="bar-label" x={-8} y={band / 2} dy="0.35em" textAnchor="end">
                  {w.symbol.toUpperCase()}
                </text>
                {v !== null && (
                  <rect
                    className={`bar ${trendClass(w)}`}
                    data-testid="bar"
                    data-coin={w.coin}
                    x={left}
                    y={0}
                    width={barW}
                    height={band}
                    rx={2}
                  />
                )}
                <text
                  className="bar-value"
                  x={def.diverging && v !== null && v < 0 ? left - 4 : left + barW + 4}
                  y={band / 2}
                  dy="0.35em"
                  textAnchor={def.diverging && v !== null && v < 0 ? "end" : "start"}
                >
                  {def.format(v, w.quote)}
                </text>
              </g>
            );
          })}
        </g>
      </svg>
      {hover && hovered && (
        <ChartTooltip x={hover.x} y={hover.y} chartWidth={width} chartHeight={height}>
          <strong>
            {coinName(hovered.w.coin)} <span className="muted">{hovered.w.symbol.toUpperCase()}</span>
          </strong>
          <div>
            {def.label}: {def.format(hovered.v, hovered.w.quote)}
          </div>
          {metric !== "change" && (
            <div className={trendClass(hovered.w)}>24h: {formatPercent(hovered.w.avg_change_24h)}</div>
          )}
          <div>
            {hovered.w.trend} · {hovered.w.volatility}
          </div>
        </ChartTooltip>
      )}
    </div>
  );
});
