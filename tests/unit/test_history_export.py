"""`cryptopulse export`'s writer on a temporary history file: the candles' trade figures (#14)
go to CSV and Parquet, empty where a candle had no trades."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq

from cryptopulse.history.export import COLUMNS, ExportRequest, export
from cryptopulse.history.sqlite import SqliteHistory
from tests.factories import T0, window


def test_csv_and_parquet_carry_vwap_traded_volume_and_trade_count(tmp_path: Path) -> None:
    database = tmp_path / "h.sqlite3"
    store = SqliteHistory(database)
    store.write(
        [
            window(price=10.0, trades=2, quote="USDT"),  # 1.0 traded at 10
            window("bitcoin", 1, price=20.0, trades=6, quote="USDT"),  # 3.0 traded at 20
            window("bitcoin", 2, price=40.0),  # next minute: a ticker-only window
        ]
    )
    store.close()
    assert {"vwap", "traded_volume", "trade_count"} <= set(COLUMNS)
    for name in ("out.csv", "out.parquet"):
        request = ExportRequest(
            database, "bitcoin", T0, T0 + timedelta(hours=1), "1m", tmp_path / name
        )
        assert export(request) == 2
    with (tmp_path / "out.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["vwap"], r["traded_volume"], r["trade_count"]) for r in rows] == [
        ("17.5", "4.0", "8"),
        ("", "", ""),
    ]
    table = pq.read_table(tmp_path / "out.parquet")
    assert str(table.schema.field("trade_count").type) == "int64"
    assert [(r["vwap"], r["traded_volume"], r["trade_count"]) for r in table.to_pylist()] == [
        (17.5, 4.0, 8),
        (None, None, None),
    ]
