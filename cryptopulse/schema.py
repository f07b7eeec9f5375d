"""The data contracts, defined once.

`Tick` is the value of a record on the ticks topic; `WindowAggregate` is one coin's
30 s window. The JSON Schema (for the web app's TypeScript types) and the Spark
schema (for the streaming job) are both derived from these models.
"""

from __future__ import annotations

import math
import types
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cryptopulse.classify import Trend, Volatility

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (use Z for UTC)")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-01:00
        raise ValueError("timestamp out of range") from exc


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def iso_millis(moment: datetime) -> str:
    """A time as the window records write it: ISO 8601 with milliseconds, UTC as `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
MAX_AMOUNT = 1e18
"""Largest price (quote currency) or trade size (base currency) a tick may carry: far above
any real one, and small enough that no window's sums (of prices, of price x size) overflow."""
Amount = Annotated[float, Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False)]
COIN_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
CoinId = Annotated[str, Field(min_length=1, max_length=100, pattern=COIN_PATTERN)]
SourceId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        pattern=COIN_PATTERN,
        description="Where the data comes from: coingecko, simulated, replay, ...",
    ),
]


QuoteCurrency = Annotated[str, Field(min_length=2, max_length=10, pattern=r"^[A-Z][A-Z0-9]*$")]

WindowKind = Literal["live", "backfill"]

TradeCount = Annotated[int, Field(ge=1, le=2**53 - 1)]  # exact in JSON/JavaScript


def _is_none(value: object) -> bool:
    return value is None


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tick(_Contract):
    """One observed price of one coin: a trade (with its `size`) or a quote."""

    coin: CoinId
    symbol: Annotated[str, Field(min_length=1, max_length=20)]
    price: Amount
    change_24h: Finite | None = None
    volume_24h: NonNegative | None = None
    market_cap: NonNegative | None = None
    timestamp: UtcDatetime = Field(description="When the source observed the price (event time).")
    source: SourceId
    # Both left out of the JSON when None, so a quote-only source's ticks keep their bytes.
    size: Amount | None = Field(
        default=None,
        exclude_if=_is_none,
        description="Trade quantity in the base currency; absent for a quote/ticker observation.",
    )
    quote: QuoteCurrency | None = Field(
        default=None,
        exclude_if=_is_none,
        description="Currency the price is in (USD, USDT, ...); absent when unknown.",
    )


class WindowAggregate(_Contract):
    """One source's coin in one tumbling window; `final` once the watermark has passed it.

    Keyed by `(source, coin, window_start)`: two sources never share a series.
    """

    source: SourceId
    coin: CoinId
    symbol: Annotated[str, Field(min_length=1, max_length=20)]
    window_start: UtcDatetime
    window_end: UtcDatetime
    avg_price: Positive
    open: Positive
    high: Positive
    low: Positive
    close: Positive
    avg_change_24h: Finite | None
    max_volume_24h: NonNegative | None
    market_cap: NonNegative | None = Field(description="Latest market cap in the window.")
    tick_count: Annotated[int, Field(ge=1, le=2**53 - 1)]  # exact in JSON/JavaScript
    volatility: Volatility
    trend: Trend
    final: bool
    kind: WindowKind = Field(
        default="live",
        description=(
            "`live`: aggregated from ticks as they arrived · `backfill`: made from a source's past "
            "data (CoinGecko's market_chart, the simulator's last 24 h) when it started; never "
            "replaces a live window of the same key."
        ),
    )
    # From trades (ticks with a `size`); all null when the window holds none (a ticker-only
    # source). When set, open/high/low/close/avg_price are the trades' too.
    quote: QuoteCurrency | None = Field(
        default=None,
        description="Currency of the series' prices (USD, USDT, ...): the latest tick's; "
        "null when the source does not say.",
    )
    vwap: Positive | None = Field(
        default=None,
        description="Volume-weighted average price of the window's trades: "
        "sum(price x size) / sum(size); null without trades.",
    )
    traded_volume: Positive | None = Field(
        default=None,
        description="Summed trade size in the window, in the base currency; null without trades "
        "(never 0: every trade has a positive size).",
    )
    trade_count: TradeCount | None = Field(
        default=None, description="Trades in the window; null without trades."
    )

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> WindowAggregate:
        if info.context and info.context.get(DEFER_CONSISTENCY):
            return self  # the caller checks `window_problem` per record (POST /ingest)
        problem = window_problem(self)
        if problem is not None:
            raise PydanticCustomError(problem[0], problem[1])
        return self


DEFER_CONSISTENCY = "defer_window_consistency"
"""Validation context key: validate a window's fields but leave `window_problem` to the caller,
which rejects such records one by one instead of failing the whole batch."""

AVG_PRICE_REL_TOLERANCE = 1e-9
"""Spark averages doubles: the mean of equal prices can differ from them in the last bit
((0.1 + 0.1 + 0.1) / 3 > 0.1), so avg_price is compared with the range within this."""


def _at_least(value: float, bound: float) -> bool:
    return value >= bound or math.isclose(value, bound, rel_tol=AVG_PRICE_REL_TOLERANCE)


def window_problem(window: WindowAggregate) -> tuple[str, str] | None:
    """Why a window makes no sense, as (reason, message), or None when it does:
    `window_end > window_start`, `low <= open, close, avg_price, vwap <= high`, and the trade
    fields (vwap, traded_volume, trade_count) all set or all null."""
    if window.window_end <= window.window_start:
        return "window_order", "window_end must be after window_start"
    low, high = window.low, window.high
    if not (low <= window.open <= high and low <= window.close <= high):
        return "price_range", "open and close must lie within low..high"
    if not (_at_least(window.avg_price, low) and _at_least(high, window.avg_price)):
        return "price_range", "avg_price must lie within low..high"
    trades = (window.vwap, window.traded_volume, window.trade_count)
    if any(v is None for v in trades) and any(v is not None for v in trades):
        return "trade_fields", "vwap, traded_volume and trade_count must be all set or all null"
    vwap = window.vwap
    if vwap is not None and not (_at_least(vwap, low) and _at_least(high, vwap)):
        return "price_range", "vwap must lie within low..high"
    return None


class IngestRequest(_Contract):
    data: Annotated[list[WindowAggregate], Field(min_length=1)]


class IngestResponse(_Contract):
    """What became of a batch: records that make no sense (see `window_problem`), have the
    wrong length or start too far in the future are rejected one by one; the rest are stored."""

    received: int = Field(description="Records in the batch.")
    stored: int = Field(description="Records accepted (stored, or already held).")
    rejected: int = Field(description="Records refused.")
    reasons: dict[str, int] = Field(
        description=(
            "Refused records by reason: window_order, price_range, trade_fields, window_length, "
            "future."
        )
    )


Interval = Literal["30s", "1m", "5m", "15m", "1h", "4h", "1d"]
"""A candle's length, for GET /api/history."""

INTERVAL_SECONDS: dict[Interval, int] = {
    "30s": 30,
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "1h": 3600,
    "4h": 14_400,
    "1d": 86_400,
}


class Candle(_Contract):
    """The windows of one series whose start falls in [start, end), rolled up: open of the
    first, close of the last, max high, min low, tick-weighted average price and 24 h change,
    last market cap, max 24 h volume, summed ticks; labels from `classify` on that change;
    the trades' VWAP weighted by traded volume, summed traded volume and trades."""

    start: UtcDatetime
    end: UtcDatetime
    open: Positive
    high: Positive
    low: Positive
    close: Positive
    avg_price: Positive
    avg_change_24h: Finite | None
    max_volume_24h: NonNegative | None
    market_cap: NonNegative | None
    tick_count: Annotated[int, Field(ge=1, le=2**53 - 1)]
    windows: Annotated[int, Field(ge=1, description="Stored windows rolled into this candle.")]
    volatility: Volatility
    trend: Trend
    kind: WindowKind = Field(
        description="`backfill` when every window in it is backfill, else `live`."
    )
    vwap: Positive | None = Field(
        default=None,
        description="Volume-weighted average price of the trades of its windows: "
        "sum(vwap x traded_volume) / sum(traded_volume); null when no window had trades.",
    )
    traded_volume: Positive | None = Field(
        default=None, description="Summed traded volume of its windows; null without trades."
    )
    trade_count: TradeCount | None = Field(
        default=None, description="Summed trade count of its windows; null without trades."
    )


class HistoryResponse(_Contract):
    """GET /api/history/{coin}: candles oldest first, no empty candles (gaps stay gaps)."""

    source: SourceId
    coin: CoinId
    symbol: str | None = Field(description="The coin's symbol, when any window is stored.")
    interval: Interval
    start: UtcDatetime = Field(description="The range asked for (`from`), inclusive.")
    end: UtcDatetime = Field(description="The range asked for (`to`), exclusive.")
    candles: list[Candle]


class SparklinesResponse(_Contract):
    """GET /api/sparklines: each coin's closing prices over the last hours, for the coins table."""

    source: SourceId
    interval: Interval
    start: UtcDatetime
    end: UtcDatetime
    closes: dict[str, list[Annotated[float, Field(allow_inf_nan=False)]]] = Field(
        description="Coin id → closes of its candles, oldest first (only candles with data)."
    )


class SnapshotMessage(_Contract):
    type: Literal["snapshot"] = "snapshot"
    data: list[WindowAggregate]


class MarketUpdateMessage(_Contract):
    type: Literal["market_update"] = "market_update"
    data: list[WindowAggregate]


SourceState = Literal["connecting", "live", "degraded", "unreachable", "simulated", "replay"]
"""`connecting`: no good fetch yet (never shown as live) · `live` · `degraded`: the last good
fetch was at `last_good`, retrying · `unreachable` · `simulated` · `replay`."""


class SourceStatus(_Contract):
    """What the producer of one source says about it: the value on the status topic (key =
    source), compacted, so every API server (replicas and restarted ones) knows the latest."""

    source: SourceId
    state: SourceState
    detail: Annotated[str, Field(max_length=300)] = ""
    last_good: UtcDatetime | None = Field(
        default=None, description="When the source last delivered good data."
    )
    updated_at: UtcDatetime = Field(
        description="When the producer said this; it repeats it while it runs (a heartbeat)."
    )


class SourceStatusMessage(_Contract):
    """Every known source's latest status (sent on change and to each new client)."""

    type: Literal["source_status"] = "source_status"
    data: list[SourceStatus]


ServerMessage = Annotated[
    SnapshotMessage | MarketUpdateMessage | SourceStatusMessage, Field(discriminator="type")
]

_tick_adapter: TypeAdapter[Tick] = TypeAdapter(Tick)
_status_adapter: TypeAdapter[SourceStatus] = TypeAdapter(SourceStatus)


def tick_to_json(tick: Tick) -> bytes:
    # pydantic-core writes the JSON directly: the same bytes as dumping model_dump(), 4x faster.
    return Tick.__pydantic_serializer__.to_json(tick)


def tick_from_json(raw: bytes | str) -> Tick:
    return _tick_adapter.validate_json(raw)


def status_to_json(status: SourceStatus) -> bytes:
    return SourceStatus.__pydantic_serializer__.to_json(status)


def status_from_json(raw: bytes | str) -> SourceStatus:
    return _status_adapter.validate_json(raw)


def json_schema() -> dict[str, Any]:
    """One JSON Schema document with every contract, for generated client types."""
    adapter: TypeAdapter[Any] = TypeAdapter(
        Union[  # noqa: UP007
            Tick,
            WindowAggregate,
            SourceStatus,
            IngestRequest,
            IngestResponse,
            ServerMessage,
            HistoryResponse,
            SparklinesResponse,
        ]
    )
    schema = adapter.json_schema(ref_template="#/$defs/{model}")
    schema["title"] = "CryptoPulse"
    return schema


def spark_schema(model: type[BaseModel], *, timestamps_as_strings: bool = False) -> StructType:
    """Spark StructType with the model's fields, types and nullability.

    With `timestamps_as_strings` the datetime fields stay strings, so the job can
    tell a malformed timestamp (a dead letter) from a missing one.
    """
    from pyspark.sql import types as T

    scalar: dict[type, T.DataType] = {
        str: T.StringType(),
        float: T.DoubleType(),
        int: T.LongType(),
        bool: T.BooleanType(),
        datetime: T.StringType() if timestamps_as_strings else T.TimestampType(),
    }

    def base_type(annotation: Any) -> tuple[Any, bool]:
        nullable = False
        if get_origin(annotation) in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            nullable = len(args) < len(get_args(annotation))
            annotation = args[0]
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        if get_origin(annotation) is Literal:
            annotation = type(get_args(annotation)[0])
        return annotation, nullable

    fields = []
    for name, info in model.model_fields.items():
        annotation, nullable = base_type(info.annotation)
        fields.append(T.StructField(name, scalar[annotation], nullable=nullable))
    return T.StructType(fields)
