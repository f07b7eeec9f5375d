// Wire types come from the generated module (JSON Schema of cryptopulse/schema.py);
// this file only re-exports them and adds client-side shapes.
import type {
  MarketUpdateMessage,
  SnapshotMessage,
  SourceStatusMessage,
  Trend,
  Volatility,
  WindowAggregate,
} from "../generated/types";

export type { MarketUpdateMessage, SnapshotMessage, SourceStatusMessage, Trend, Volatility, WindowAggregate };

/** A window with its times parsed once, so sorting and keying never re-parse ISO strings. */
export interface WindowPoint extends WindowAggregate {
  startMs: number;
  endMs: number;
}

export type ServerMessage =
  | { type: "snapshot"; data: WindowPoint[] }
  | { type: "market_update"; data: WindowPoint[] }
  | { type: "source_status"; source: string; live: boolean; detail: string };

export const VOLATILITY_LEVELS: readonly Volatility[] = [
  "Stable",
  "Moving",
  "Volatile",
  "High Volatility",
  "Extreme",
];

export const TRENDS: readonly Trend[] = ["🚀 Surging", "📈 Rising", "➡️ Stable", "📉 Falling", "💥 Crashing"];
