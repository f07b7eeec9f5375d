// Number and time formatting shared by cards, axes, tooltips and the table.

const SUFFIXES: readonly [number, string][] = [
  [1e12, "T"],
  [1e9, "B"],
  [1e6, "M"],
  [1e3, "K"],
];

const DASH = "—";

function isNum(v: number | null | undefined): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** 1234567 -> "1.23M"; keeps cards narrow whatever the magnitude. */
export function formatCompact(value: number | null | undefined, digits = 2): string {
  if (!isNum(value)) return DASH;
  const abs = Math.abs(value);
  for (let i = 0; i < SUFFIXES.length; i++) {
    const [size, suffix] = SUFFIXES[i] as [number, string];
    // Round first: 999_999 must read "1M", not "1000K".
    if (abs >= size) {
      const bigger = SUFFIXES[i - 1];
      const fixed = (value / size).toFixed(digits);
      if (bigger && Math.abs(Number(fixed)) >= 1000)
        return `${trimZeros((value / bigger[0]).toFixed(digits))}${bigger[1]}`;
      return `${trimZeros(fixed)}${suffix}`;
    }
  }
  return trimZeros(value.toFixed(abs >= 1 ? digits : significantDecimals(abs)));
}

/** "$97,012.50", "$0.0812", "$0.00001234": enough significant digits for sub-cent coins. */
export function formatPrice(value: number | null | undefined): string {
  return isNum(value) ? `$${formatAmount(value)}` : DASH;
}

/**
 * A price's digits without a currency sign ("97,012.50", "0.0812"), for prices shown with their
 * quote currency beside them (USDT is not the dollar).
 */
export function formatAmount(value: number | null | undefined): string {
  if (!isNum(value)) return DASH;
  const abs = Math.abs(value);
  if (abs >= 1) return value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (abs === 0) return "0.00";
  return value.toFixed(significantDecimals(abs));
}

/** Compact price for axes and narrow cells: "$97.01K", "$0.0812". */
export function formatPriceCompact(value: number | null | undefined): string {
  if (!isNum(value)) return DASH;
  if (Math.abs(value) < 1000) return formatPrice(value);
  return `$${formatCompact(value)}`;
}

/** "$1.92T"; without the dollar sign for another quote currency (axes of prices in USDT). */
export function formatMoneyCompact(value: number | null | undefined, quote?: string | null): string {
  if (!isNum(value)) return DASH;
  return `${isDollar(quote) ? "$" : ""}${formatCompact(value)}`;
}

/** "+1.84%" / "-0.20%"; the sign is always shown because direction is the point. */
export function formatPercent(value: number | null | undefined, digits = 2): string {
  if (!isNum(value)) return DASH;
  const fixed = value.toFixed(digits);
  // -0.001 rounds to "-0.00": show it as unsigned zero rather than a fake loss.
  if (Number(fixed) === 0) return `${(0).toFixed(digits)}%`;
  return `${value > 0 ? "+" : ""}${fixed}%`;
}

/**
 * A price in its quote currency: "$97,012.50" in US dollars (or when the source does not say, as
 * before quotes were recorded), else the amount and the currency ("97,012.50 USDT"): a stablecoin
 * is not the dollar.
 */
export function formatQuoted(value: number | null | undefined, quote: string | null | undefined): string {
  if (isDollar(quote)) return formatPrice(value);
  return isNum(value) ? `${formatAmount(value)} ${quote}` : DASH;
}

/** formatPriceCompact in its quote currency: "$97.01K", "97.01K USDT", "0.0812 USDT". */
export function formatQuotedCompact(value: number | null | undefined, quote: string | null | undefined): string {
  if (isDollar(quote)) return formatPriceCompact(value);
  if (!isNum(value)) return DASH;
  return `${Math.abs(value) < 1000 ? formatAmount(value) : formatCompact(value)} ${quote}`;
}

/** US dollars, or no quote currency given (shown as dollars, as before quotes were recorded). */
function isDollar(quote: string | null | undefined): boolean {
  return !quote || quote === "USD";
}

/** Basis points: "3.25 bps" below ten (small spreads are the usual case), "42.1 bps" above. */
export function formatBps(value: number | null | undefined): string {
  if (!isNum(value)) return DASH;
  return `${value.toFixed(Math.abs(value) < 10 ? 2 : 1)} bps`;
}

/** "14:03:27" in the viewer's local time zone. */
export function formatTime(ms: number | null | undefined): string {
  if (!isNum(ms)) return DASH;
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
}

export function formatDateTime(ms: number | null | undefined): string {
  if (!isNum(ms)) return DASH;
  const d = new Date(ms);
  return `${d.toLocaleDateString("en-GB", { day: "2-digit", month: "short" })} ${formatTime(ms)}`;
}

/** "12 s", "3 min", "2 h", "4 d": a duration rounded down to its largest unit. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

function significantDecimals(abs: number): number {
  // Four significant digits below 1, capped so absurdly small values stay readable.
  return Math.min(12, Math.max(2, 3 - Math.floor(Math.log10(abs))));
}

function trimZeros(s: string): string {
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

/**
 * A money formatter for a set of axis ticks: compact, but with just enough digits that no two
 * ticks read the same ($1.045K and $1.05K rather than $1.05K twice).
 */
export function moneyTickFormat(ticks: readonly number[], quote?: string | null): (v: number) => string {
  // No sign for another quote currency (USDT is not the dollar): the price above names it.
  const sign = isDollar(quote) ? "$" : "";
  for (let digits = 2; digits <= 6; digits++) {
    const fmt = (v: number) => `${sign}${formatCompact(v, digits)}`;
    if (new Set(ticks.map(fmt)).size === ticks.length) return fmt;
  }
  return (v) => `${sign}${formatCompact(v, 6)}`;
}
