"""The SQLite history store on temporary files: upsert rules, migrations, retention, and
candles from SQL equal to `rollup.py`'s on random windows."""

from __future__ import annotations

import math
import random
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import asdict, astuple
from datetime import timedelta
from pathlib import Path

import pytest

from cryptopulse.history.rollup import CandleRow, rollup, row_of
from cryptopulse.history.sqlite import SCHEMA_VERSION, HistoryDatabaseError, SqliteHistory
from cryptopulse.schema import INTERVAL_SECONDS, WindowAggregate
from tests.factories import T0, WINDOW, window

DAY = timedelta(days=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteHistory]:
    history = SqliteHistory(tmp_path / "h.sqlite3")
    yield history
    history.close()


def prices(store: SqliteHistory, coin: str = "bitcoin") -> list[tuple[float, str]]:
    candles = store.candles("simulated", coin, 30, T0 - DAY, T0 + DAY)
    return [(c.close, c.kind) for c in candles]


def test_a_repeated_final_replaces_never_duplicates(store: SqliteHistory) -> None:
    assert store.write([window(price=1.0), window("bitcoin", 1, price=2.0)]) == 2
    assert store.write([window(price=5.0)]) == 1
    assert prices(store) == [(5.0, "live"), (2.0, "live")]
    assert store.count() == 2


def test_a_backfill_never_replaces_live_and_live_replaces_backfill(store: SqliteHistory) -> None:
    def backfill(i: int, price: float) -> WindowAggregate:
        return window("bitcoin", i, price=price).model_copy(update={"kind": "backfill"})

    store.write([window(price=1.0), backfill(1, 2.0)])
    store.write([backfill(0, 9.0)])  # live held: kept
    assert prices(store) == [(1.0, "live"), (2.0, "backfill")]
    store.write([backfill(1, 3.0)])  # a backfill replaces a backfill
    assert prices(store) == [(1.0, "live"), (3.0, "backfill")]
    store.write([window("bitcoin", 1, price=4.0)])  # live replaces backfill
    assert prices(store) == [(1.0, "live"), (4.0, "live")]
    # a candle is backfill only when all of its windows are
    store.write([backfill(2, 5.0), backfill(3, 5.0)])
    kinds = [c.kind for c in store.candles("simulated", "bitcoin", 60, T0, T0 + DAY)]
    assert kinds == ["live", "backfill"]


def test_sources_and_coins_are_separate_series(store: SqliteHistory) -> None:
    store.write([window(price=1.0), window(price=2.0, source="coingecko"), window("eth", 0)])
    assert prices(store) == [(1.0, "live")]
    assert store.candles("coingecko", "bitcoin", 30, T0, T0 + DAY)[0].close == 2.0
    assert store.sources() == ["coingecko", "simulated"]
    assert store.symbol("simulated", "eth") == "eth"
    assert store.symbol("simulated", "nope") is None
    assert store.candles("simulated", "nope", 30, T0, T0 + DAY) == []


def test_migrations_from_an_empty_file_and_an_idempotent_reopen(tmp_path: Path) -> None:
    path = tmp_path / "new" / "h.sqlite3"
    first = SqliteHistory(path)
    assert first.schema_version() == SCHEMA_VERSION
    first.write([window()])
    first.close()
    again = SqliteHistory(path)  # nothing to migrate; data kept
    assert again.schema_version() == SCHEMA_VERSION and again.count() == 1
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_a_newer_schema_or_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    with pytest.raises(HistoryDatabaseError, match="no history database"):
        SqliteHistory(path, read_only=True)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(HistoryDatabaseError, match="newer than"):
        SqliteHistory(path)


def test_read_only_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    SqliteHistory(path).write([window()])
    reader = SqliteHistory(path, read_only=True)
    assert reader.count() == 1
    with pytest.raises(HistoryDatabaseError, match="read-only"):
        reader.write([window()])
    reader.close()


def test_retention_removes_exactly_what_starts_before_the_cutoff(store: SqliteHistory) -> None:
    store.write([window(c, i) for c in ("bitcoin", "solana") for i in range(10)])
    cutoff = T0 + 4 * WINDOW  # window 4 starts exactly at the cutoff: kept
    assert store.purge(cutoff) == 8
    starts = [c.start for c in store.candles("simulated", "bitcoin", 30, T0, T0 + DAY)]
    assert starts == [T0 + i * WINDOW for i in range(4, 10)]
    assert store.purge(cutoff) == 0


def test_reads_from_other_threads_while_a_write_runs(store: SqliteHistory) -> None:
    store.write([window(price=1.0)])
    seen: list[int] = []

    def read() -> None:
        seen.append(len(store.candles("simulated", "bitcoin", 30, T0, T0 + DAY)))

    conn = store._write_connection()
    conn.execute("BEGIN IMMEDIATE")  # a write in progress holds the write lock
    conn.execute("DELETE FROM windows")
    thread = threading.Thread(target=read)
    thread.start()
    thread.join(10)
    conn.execute("ROLLBACK")
    assert seen == [1]  # WAL: the reader saw the last committed state, without waiting


def random_windows(
    rng: random.Random, coin: str, count: int, *, with_trades: bool = True
) -> list[WindowAggregate]:
    """Random consistent 30 s windows at random slots over ~2 days (gaps), some backfill, some
    with trades."""
    out = []
    for slot in rng.sample(range(-3000, 3000), count):
        p = sorted(rng.uniform(0.001, 1e5) for _ in range(4))
        low, a, b, high = p
        start = T0 + slot * WINDOW
        trades = rng.choice([None, rng.randint(1, 5000)]) if with_trades else None
        out.append(
            WindowAggregate(
                source="simulated",
                coin=coin,
                symbol=coin[:3],
                window_start=start,
                window_end=start + WINDOW,
                avg_price=rng.choice([a, b]),
                open=a,
                high=high,
                low=low,
                close=b,
                avg_change_24h=rng.choice([None, rng.uniform(-40, 40)]),
                max_volume_24h=rng.choice([None, rng.uniform(0, 1e9)]),
                market_cap=rng.choice([None, rng.uniform(0, 1e12)]),
                tick_count=rng.randint(1, 500),
                volatility="Stable",
                trend="➡️ Stable",
                final=True,
                kind=rng.choice(["live", "live", "backfill"]),
                quote=rng.choice([None, "USDT"]) if with_trades else None,
                vwap=rng.uniform(low, high) if trades else None,
                traded_volume=rng.uniform(1e-6, 1e6) if trades else None,
                trade_count=trades,
            )
        )
    return out


def assert_same(got: list[CandleRow], want: list[CandleRow]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        gd, wd = asdict(g), asdict(w)
        for key in ("avg_price", "avg_change_24h", "vwap", "traded_volume"):  # sums: the
            # order of addition differs
            a, b = gd.pop(key), wd.pop(key)
            assert (a is None and b is None) or math.isclose(a, b, rel_tol=1e-12), key
        assert gd == wd


def check_every_interval(
    store: SqliteHistory, rng: random.Random, windows: list[WindowAggregate]
) -> None:
    """SQL candles (hours table for 1 h and longer, cut edges included) equal rollup.py's."""
    compared = 0
    for interval in INTERVAL_SECONDS.values():
        lo = T0 + rng.randint(-3000, 0) * WINDOW + timedelta(seconds=rng.choice([0, 7, 30]))
        hi = lo + rng.randint(1, 6000) * WINDOW
        inside = [row_of(w) for w in windows if lo <= w.window_start < hi]
        got = store.candles("simulated", "bitcoin", interval, lo, hi)
        assert_same(got, rollup(inside, interval))
        compared += len(got)
    assert compared  # not only empty ranges


@pytest.mark.parametrize("seed", range(5))
def test_sql_candles_equal_rollup_on_random_windows(store: SqliteHistory, seed: int) -> None:
    rng = random.Random(seed)
    data = {coin: random_windows(rng, coin, 800) for coin in ("bitcoin", "solana")}
    for coin in data:
        store.write(data[coin])
    check_every_interval(store, rng, data["bitcoin"])
    closes = store.closes("simulated", 3600, T0 - DAY, T0 + DAY)
    assert set(closes) == {"bitcoin", "solana"}
    solana = [row_of(w) for w in data["solana"] if T0 - DAY <= w.window_start < T0 + DAY]
    assert closes["solana"] == [c.close for c in rollup(solana, 3600)]  # from the hours table
    quarter = store.closes("simulated", 900, T0 - DAY, T0 + DAY)  # from the windows
    assert quarter["solana"] == [c.close for c in rollup(solana, 900)]
    four = store.closes("simulated", 4 * 3600, T0 - DAY, T0 + DAY)
    assert four["solana"] == [c.close for c in rollup(solana, 4 * 3600)]

    # replaced windows (a live one replaces anything; a backfill only a backfill) and a
    # purge keep the hours in step with the windows
    held = {w.window_start: w for w in data["bitcoin"]}
    again = random_windows(rng, "bitcoin", 400)
    store.write(again)
    for w in again:
        if w.window_start not in held or w.kind == "live" or held[w.window_start].kind != "live":
            held[w.window_start] = w
    cutoff = T0 + rng.randint(-2000, 0) * WINDOW + timedelta(seconds=rng.randint(0, 29))
    store.purge(cutoff)
    remaining = [w for w in held.values() if w.window_start >= cutoff]
    assert store.count() == len(remaining) + len(
        [w for w in data["solana"] if w.window_start >= cutoff]
    )
    check_every_interval(store, rng, remaining)


V2_UPSERT = """INSERT INTO windows
    (series_id, start, open, high, low, close, avg_price, change, volume, cap, ticks, kind)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


def old_file(path: Path, version: int, windows: list[WindowAggregate]) -> None:
    """A file as `version` (1 or 2) wrote it: its tables (migrations only ever append, so the
    first ones are that version's) and its windows, without trade columns."""
    from cryptopulse.history.sqlite import MIGRATIONS

    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:version]:
        migration(conn)
    conn.execute("INSERT INTO series VALUES (1, 'simulated', 'bitcoin', 'bit')")
    conn.executemany(V2_UPSERT, [(1, *astuple(row_of(w))[:11]) for w in windows])
    if version == 2:  # an hour as version 2 summed it (stale on purpose: rebuilt)
        conn.execute(
            "INSERT INTO hours VALUES (1, ?, 1, 1, 1, 1, 1, 1, NULL, NULL, NULL, NULL, 1, 0)",
            (int(T0.timestamp()),),
        )
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()


def test_a_version_1_file_gets_its_hours_filled_from_its_windows(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    data = random_windows(random.Random(7), "bitcoin", 500, with_trades=False)
    old_file(path, 1, data)
    migrated = SqliteHistory(path)
    assert migrated.schema_version() == SCHEMA_VERSION == 3
    check_every_interval(migrated, random.Random(1), data)
    migrated.close()


def test_a_version_2_file_migrates_in_place_and_takes_windows_of_trades(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    old = random_windows(random.Random(3), "bitcoin", 400, with_trades=False)
    old_file(path, 2, old)

    store = SqliteHistory(path)
    assert store.schema_version() == SCHEMA_VERSION == 3
    assert store.count() == len(old)  # nothing lost
    columns = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(windows)")}
    assert {"quote", "vwap", "traded", "trades"} <= columns
    check_every_interval(store, random.Random(4), old)  # hours rebuilt from the windows
    candles = store.candles("simulated", "bitcoin", 3600, T0 - DAY, T0 + DAY)
    assert candles and all(c.vwap is None and c.trade_count is None for c in candles)

    # Windows of trades written after the migration roll up with the old ones.
    held = {w.window_start: w for w in old}
    new = random_windows(random.Random(5), "bitcoin", 400)
    store.write(new)
    for w in new:
        if w.window_start not in held or w.kind == "live" or held[w.window_start].kind != "live":
            held[w.window_start] = w
    check_every_interval(store, random.Random(6), list(held.values()))
    assert any(
        c.trade_count for c in store.candles("simulated", "bitcoin", 3600, T0 - DAY, T0 + DAY)
    )
    store.close()


def test_a_window_of_trades_round_trips_and_a_candle_rolls_its_vwap(store: SqliteHistory) -> None:
    store.write(
        [
            window(price=10.0, trades=2, quote="USDT"),  # 1.0 traded at 10
            window("bitcoin", 1, price=20.0, trades=6, quote="USDT"),  # 3.0 traded at 20
            window("bitcoin", 2, price=40.0),  # a ticker-only window: no weight
        ]
    )
    row = store._reader().execute("SELECT quote, vwap, traded, trades FROM windows").fetchone()
    assert row == ("USDT", 10.0, 1.0, 2)
    (candle,) = store.candles("simulated", "bitcoin", 3600, T0, T0 + DAY)  # the hours table
    assert (candle.vwap, candle.traded_volume, candle.trade_count) == (17.5, 4.0, 8)
    (short,) = store.candles("simulated", "bitcoin", 900, T0, T0 + DAY)  # from the windows
    assert (short.vwap, short.traded_volume, short.trade_count) == (17.5, 4.0, 8)
    assert candle.as_candle().vwap == 17.5
    # A repeated final without trades replaces the trade figures too.
    store.write([window(price=10.0), window("bitcoin", 1, price=20.0)])
    (candle,) = store.candles("simulated", "bitcoin", 3600, T0, T0 + DAY)
    assert (candle.vwap, candle.traded_volume, candle.trade_count) == (None, None, None)
