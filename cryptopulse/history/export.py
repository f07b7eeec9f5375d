"""`cryptopulse export`: a coin's candles from a history file to CSV or Parquet, for notebooks.

Reads the file read-only through the same store the API uses, so an export while the server
runs sees the last committed windows and never holds up its writer (WAL).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptopulse.errors import CryptoPulseError
from cryptopulse.history.rollup import CandleRow
from cryptopulse.history.sqlite import SqliteHistory
from cryptopulse.schema import INTERVAL_SECONDS, Interval

COLUMNS = (
    "source",
    "coin",
    "start",
    "end",
    "open",
    "high",
    "low",
    "close",
    "avg_price",
    "avg_change_24h",
    "max_volume_24h",
    "market_cap",
    "tick_count",
    "windows",
    "volatility",
    "trend",
    "kind",
    "vwap",
    "traded_volume",
    "trade_count",
)
FORMATS = (".csv", ".parquet")


@dataclass(frozen=True)
class ExportRequest:
    database: Path
    coin: str
    start: datetime
    end: datetime
    interval: Interval
    output: Path
    source: str | None = None


def _format_of(output: Path) -> str:
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise CryptoPulseError(f"{output}: the file name must end in .csv or .parquet")
    return suffix


def _source(store: SqliteHistory, wanted: str | None) -> str:
    stored = store.sources()
    if wanted is not None:
        return wanted
    if len(stored) == 1:
        return stored[0]
    if not stored:
        raise CryptoPulseError(f"{store.path} holds no windows yet")
    raise CryptoPulseError(
        f"several sources stored ({', '.join(stored)}): choose one with --source"
    )


def _rows(source: str, coin: str, candles: Sequence[CandleRow]) -> list[dict[str, Any]]:
    return [{"source": source, "coin": coin, **asdict(c)} for c in candles]


def _write_csv(output: Path, rows: list[dict[str, Any]]) -> None:
    with output.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            start, end = row["start"], row["end"]
            writer.writerow({**row, "start": _iso(start), "end": _iso(end)})


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _write_parquet(output: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text, count = pa.string(), pa.int64()
    schema = pa.schema(
        [
            (name, pa.timestamp("s", tz="UTC") if name in ("start", "end") else text)
            if name in ("source", "coin", "start", "end", "volatility", "trend", "kind")
            else (name, count if name in ("tick_count", "windows", "trade_count") else pa.float64())
            for name in COLUMNS
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, output)


def export(request: ExportRequest) -> int:
    """Write the candles; how many rows were written (a header-only file when none)."""
    suffix = _format_of(request.output)
    if request.end <= request.start:
        raise CryptoPulseError("--to must be after --from")
    store = SqliteHistory(request.database, read_only=True)
    try:
        source = _source(store, request.source)
        if store.symbol(source, request.coin) is None:
            raise CryptoPulseError(
                f"no history for coin {request.coin!r} from source {source!r} in {store.path}"
            )
        candles = store.candles(
            source, request.coin, INTERVAL_SECONDS[request.interval], request.start, request.end
        )
    finally:
        store.close()
    rows = _rows(source, request.coin, candles)
    request.output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        _write_csv(request.output, rows)
    else:
        _write_parquet(request.output, rows)
    return len(rows)
