// Wire types come from the generated module (JSON Schema of cryptopulse/schema.py);
// this file only re-exports them and adds client-side shapes.
import type {
  Candle,
  HistoryResponse,
  Interval,
  MarketUpdateMessage,
  SnapshotMessage,
  SourceStatus,
  SourceStatusMessage,
  SparklinesResponse,
  State as SourceState,
  Trend,
  Volatility,
  WindowAggregate,
} from "../generated/types";

export type {
  Candle,
  HistoryResponse,
  Interval,
  MarketUpdateMessage,
  SnapshotMessage,
  SourceState,
  SourceStatus,
  SourceStatusMessage,
  SparklinesResponse,
  Trend,
  Volatility,
  WindowAggregate,
};

/** A window with its times parsed once, so sorting and keying never re-parse ISO strings. */
export interface WindowPoint extends WindowAggregate {
  startMs: number;
  endMs: number;
}

/** A source status with its times parsed once. */
export interface StatusPoint extends SourceStatus {
  detail: string;
  last_good: string | null;
  lastGoodMs: number | null;
  updatedMs: number;
}

export type ServerMessage =
  | { type: "snapshot"; data: WindowPoint[] }
  | { type: "market_update"; data: WindowPoint[] }
  /** Every known source's status: the list is complete and replaces the previous one. */
  | { type: "source_status"; data: StatusPoint[] };

// The schema's enums, generated with the validators (scripts/gen-validators.mjs).
export { SOURCE_STATES, TRENDS, VOLATILITY_LEVELS } from "../generated/enums";
