"""CoinGecko's payloads as pydantic models, and the Ticks made from them. No I/O here.

`/simple/price` answers `{"bitcoin": {"usd": ..., "usd_24h_vol": ..., ...}, ...}` and
`/coins/markets` a JSON array of coin objects. A coin whose figures are wrong is skipped with
the reason of its first wrong figure (`null_price`, `negative_volume`, `bad_timestamp`, ...);
the others are kept. Error bodies (`{"status": {"error_code": ...}}` or `{"error": "..."}`)
are read for the sentence that tells the user what to fix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from cryptopulse.backfill import Point
from cryptopulse.coins import symbol_of
from cryptopulse.schema import Tick
from cryptopulse.sources.coingecko.errors import BadQuote

SOURCE_NAME: Final = "coingecko"
MAX_SERVER_TEXT: Final = 200  # of a server's error message

# -- figures --------------------------------------------------------------------------------

_Finite = {"strict": True, "allow_inf_nan": False}  # a JSON number (not a bool), finite
Price = Annotated[float, Field(gt=0, **_Finite)]
Amount = Annotated[float | None, Field(ge=0, **_Finite)]
Change = Annotated[float | None, Field(**_Finite)]
Epoch = Annotated[float | None, Field(gt=0, **_Finite)]


def _iso_text(value: object) -> object:
    """`/coins/markets` dates are ISO 8601 text; anything else is refused."""
    if value is not None and not isinstance(value, str):
        raise ValueError("not a date")
    return value


IsoTime = Annotated[datetime | None, BeforeValidator(_iso_text)]
_SIGNED: Final = frozenset({"price", "volume", "market_cap"})  # negative_x / zero_x reasons


class _Figures(BaseModel):
    """One coin's figures; the fields are checked in this order, the first wrong one names the
    skip reason."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    price: Price
    volume: Amount = None
    market_cap: Amount = None
    change: Change = None

    @property
    def updated_at(self) -> float | None:
        raise NotImplementedError

    @classmethod
    def read(cls, entry: Mapping[str, Any]) -> _Figures:
        """The figures of `entry`, or `BadQuote` with the reason of the first wrong one."""
        try:
            return cls.model_validate(entry)
        except ValidationError as exc:
            raise BadQuote(cls._reason(exc.errors()[0])) from None

    @classmethod
    def _reason(cls, error: Mapping[str, Any]) -> str:
        alias = error["loc"][0]
        name = next(n for n, f in cls.model_fields.items() if (f.alias or n) == alias)
        value = error.get("input")
        if name not in _SIGNED:
            return f"bad_{name}"
        if error["type"] == "missing" or value is None:
            return f"null_{name}"
        if error["type"] in ("greater_than", "greater_than_equal"):
            return f"negative_{name}" if value < 0 else f"zero_{name}"
        return f"bad_{name}"

    def tick(self, coin: str, symbol: str, fetched_at: float) -> Tick:
        """The Tick, timed by CoinGecko's update time (else `fetched_at`)."""
        updated = self.updated_at
        try:
            return Tick(
                coin=coin,
                symbol=symbol,
                price=self.price,
                change_24h=self.change,
                volume_24h=self.volume,
                market_cap=self.market_cap,
                timestamp=datetime.fromtimestamp(
                    updated if updated is not None else fetched_at, UTC
                ),
                source=SOURCE_NAME,
            )
        except (ValidationError, ValueError, OverflowError, OSError) as exc:
            raise BadQuote("invalid_tick") from exc


class SimplePriceQuote(_Figures):
    """One coin of a `/simple/price` answer (`include_*` all true)."""

    price: Price = Field(alias="usd")
    volume: Amount = Field(None, alias="usd_24h_vol")
    market_cap: Amount = Field(None, alias="usd_market_cap")
    change: Change = Field(None, alias="usd_24h_change")
    timestamp: Epoch = Field(None, alias="last_updated_at")

    @property
    def updated_at(self) -> float | None:
        return self.timestamp


class MarketRow(_Figures):
    """One coin object of a `/coins/markets` answer (its id and symbol are read before)."""

    price: Price = Field(alias="current_price")
    volume: Amount = Field(None, alias="total_volume")
    market_cap: Amount = Field(None, alias="market_cap")
    change: Change = Field(None, alias="price_change_percentage_24h")
    timestamp: IsoTime = Field(None, alias="last_updated")

    @property
    def updated_at(self) -> float | None:
        when = self.timestamp
        if when is None:
            return None
        return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


# -- whole answers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """A parsed tick and the source's own update time (None when it gave none)."""

    tick: Tick
    updated_at: float | None


@dataclass
class Parsed:
    quotes: list[Quote] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, figures: type[_Figures], entry: Any, coin: str, symbol: str, at: float) -> None:
        """One coin's entry as a Quote, or its skip reason."""
        if not isinstance(entry, dict) or not entry:
            self.skipped["malformed_quote"] += 1
            return
        try:
            read = figures.read(entry)
            self.quotes.append(Quote(read.tick(coin, symbol, at), read.updated_at))
        except BadQuote as bad:
            self.skipped[bad.reason] += 1

    def extend(self, other: Parsed) -> None:
        self.quotes.extend(other.quotes)
        self.skipped.update(other.skipped)


def parse_simple_price(payload: object, requested: Sequence[str], fetched_at: float) -> Parsed:
    """Ticks from a `/simple/price` body.

    Every requested coin becomes a quote or a skip reason; ids nobody asked for are
    skipped as `unknown_id`. `fetched_at` is the timestamp when CoinGecko gives none.
    """
    out = Parsed()
    if not isinstance(payload, dict):
        out.skipped["malformed_response"] += len(requested) or 1
        return out
    wanted = set(requested)
    unknown = sum(1 for coin in payload if coin not in wanted)
    if unknown:
        out.skipped["unknown_id"] += unknown
    for coin in requested:
        if coin not in payload:
            out.skipped["missing_coin"] += 1
            continue
        out.add(SimplePriceQuote, payload[coin], coin, symbol_of(coin), fetched_at)
    return out


def parse_coins_markets(
    payload: object, fetched_at: float, requested: Sequence[str] | None = None
) -> Parsed:
    """Ticks from a `/coins/markets` body (a JSON array of coin objects).

    With `requested`, coins outside it are skipped as `unknown_id` (missing coins are
    counted by the caller, which sees every page).
    """
    out = Parsed()
    if not isinstance(payload, list):
        out.skipped["malformed_response"] += 1
        return out
    wanted = set(requested) if requested is not None else None
    for entry in payload:
        coin = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(coin, str) or not coin:
            out.skipped["malformed_quote"] += 1
        elif wanted is not None and coin not in wanted:
            out.skipped["unknown_id"] += 1
        else:
            out.add(MarketRow, entry, coin, _market_symbol(entry, coin), fetched_at)
    return out


def _market_symbol(entry: Mapping[str, Any], coin: str) -> str:
    symbol = entry.get("symbol")
    return symbol.lower() if isinstance(symbol, str) and 0 < len(symbol) <= 20 else symbol_of(coin)


def market_ids(payload: object) -> set[str]:
    """The ids a `/coins/markets` page answered for (good rows or not)."""
    if not isinstance(payload, list):
        return set()
    return {e["id"] for e in payload if isinstance(e, dict) and isinstance(e.get("id"), str)}


# -- past prices (backfill) ----------------------------------------------------------------

MAX_CHART_POINTS: Final = 5000  # days=1 gives ~288 (5-minute points); more is not a chart


class ChartProblem(ValueError):
    """A `market_chart` body that cannot be used at all; `reason` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_Pairs = Annotated[list[Any], Field(max_length=MAX_CHART_POINTS)]


class MarketChart(BaseModel):
    """`GET /coins/{id}/market_chart?vs_currency=usd&days=1`: three arrays of
    `[unix ms, number]` pairs (prices, market caps, total 24 h volumes), bounded in length.
    The pairs themselves are read one by one by `points`: a bad pair is skipped, not the chart."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    prices: _Pairs
    market_caps: _Pairs = Field(default_factory=list)
    total_volumes: _Pairs = Field(default_factory=list)

    @classmethod
    def read(cls, payload: object) -> MarketChart:
        """The chart, or `ChartProblem`: `malformed_chart` (not the shape above),
        `too_many_points`, `no_points` (an empty price array)."""
        if not isinstance(payload, dict):
            raise ChartProblem("malformed_chart")
        try:
            chart = cls.model_validate(payload)
        except ValidationError as exc:
            too_long = any(e["type"] == "too_long" for e in exc.errors())
            raise ChartProblem("too_many_points" if too_long else "malformed_chart") from None
        if not chart.prices:
            raise ChartProblem("no_points")
        return chart

    def points(self) -> tuple[list[Point], Counter[str]]:
        """Price points with the cap and volume of the same instant (when given), and the pairs
        skipped by reason: `malformed_point` (not `[number, number]`), `null_price`."""
        skipped: Counter[str] = Counter()
        caps = _by_time(self.market_caps)
        volumes = _by_time(self.total_volumes)
        out: list[Point] = []
        for pair in self.prices:
            read = _pair(pair)
            if read is None:
                skipped["malformed_point"] += 1
                continue
            ms, price = read
            if price is None:
                skipped["null_price"] += 1
            else:
                out.append(Point(ms / 1000, price, None, volumes.get(ms), caps.get(ms)))
        return out, skipped


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pair(pair: object) -> tuple[float, float | None] | None:
    """`[ms, value]` as numbers (value may be null), else None. Range checks are `backfill`'s."""
    if not isinstance(pair, list) or len(pair) != 2:
        return None
    ms, value = pair
    if not _number(ms) or not (value is None or _number(value)):
        return None
    return float(ms), (float(value) if value is not None else None)


def _by_time(pairs: list[Any]) -> dict[float, float]:
    out: dict[float, float] = {}
    for pair in pairs:
        read = _pair(pair)
        if read is not None and read[1] is not None:
            out[read[0]] = read[1]
    return out


# -- error bodies ---------------------------------------------------------------------------

# CoinGecko's own error codes that mean "fix your key or URL" (sent with HTTP 401/403).
KEY_ERROR_HINTS: Final[Mapping[int, str]] = {
    10002: (
        "CoinGecko requires an API key (error 10002): set CRYPTOPULSE_PRODUCER__COINGECKO_API_KEY "
        "(a free Demo key from coingecko.com/en/api)"
    ),
    10005: (
        "this CoinGecko plan has no access to the endpoint (error 10005): use fewer coins "
        "(/simple/price) or a plan that includes /coins/markets"
    ),
    10010: (
        "CoinGecko refused the key for pro-api.coingecko.com (error 10010): a Demo key needs "
        "CRYPTOPULSE_PRODUCER__COINGECKO_PLAN=demo and the api.coingecko.com base URL"
    ),
    10011: (
        "CoinGecko refused the key for api.coingecko.com (error 10011): a Pro key needs "
        "CRYPTOPULSE_PRODUCER__COINGECKO_PLAN=pro (base URL pro-api.coingecko.com)"
    ),
}


def decode_body(content: bytes, content_type: str = "") -> tuple[Any, str | None]:
    """(payload, None) for a JSON body, else (None, reason): `html_error_page` for the
    CDN's HTML pages, `malformed_json` for anything else."""
    try:
        return orjson.loads(content), None
    except orjson.JSONDecodeError:
        head = content[:200].lstrip().lower()
        if "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html", b"<")):
            return None, "html_error_page"
        return None, "malformed_json"


def error_code(payload: object) -> tuple[int | None, str | None]:
    """CoinGecko's error code and message (at most 200 characters) from
    `{"status": {"error_code", "error_message"}}` or `{"error": "..."}`; (None, None) for a
    normal body."""
    if not isinstance(payload, dict):
        return None, None
    status = payload.get("status")
    if isinstance(status, dict) and "error_code" in status:
        code = status.get("error_code")
        message = status.get("error_message")
        return (
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            str(message)[:MAX_SERVER_TEXT] if message is not None else "",
        )
    if set(payload) == {"error"} or (isinstance(payload.get("error"), str) and len(payload) <= 2):
        return None, str(payload.get("error"))[:MAX_SERVER_TEXT]
    return None, None


def key_problem(status_code: int, payload: object) -> str | None:
    """A plain sentence saying what to fix when the key, plan or URL is wrong, else None."""
    code, message = error_code(payload)
    if code is not None and code in KEY_ERROR_HINTS:
        return KEY_ERROR_HINTS[code]
    said = f": {message}" if message else ""
    if status_code == 401:
        return (
            f"CoinGecko refused the request as unauthorized (HTTP 401{said}): "
            "check CRYPTOPULSE_PRODUCER__COINGECKO_API_KEY and CRYPTOPULSE_PRODUCER__COINGECKO_PLAN"
        )
    if status_code == 403:
        return (
            f"CoinGecko refused access (HTTP 403{said}): check the API "
            "key and plan, or whether this network is blocked by CoinGecko's CDN"
        )
    return None
