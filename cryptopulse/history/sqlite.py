"""The history store in SQLite (WAL mode): embedded, one file per API server.

Rows are compact: a `series` table names each (source, coin) once; `windows` is keyed
(series_id, start in epoch seconds) WITHOUT ROWID, so a coin's range is one index walk.
The schema version is `PRAGMA user_version`; `MIGRATIONS` are applied in order at open.
One connection writes (the writer's thread); each reading thread has its own connection,
and WAL lets them read while a write runs.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path

from cryptopulse.errors import CryptoPulseError
from cryptopulse.history.rollup import (
    CandleRow,
    Totals,
    bucket_of,
    candle,
    epoch,
    regroup,
    row_of,
    stream_totals,
)
from cryptopulse.schema import WindowAggregate


def _v1_windows(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE series (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            coin TEXT NOT NULL,
            symbol TEXT NOT NULL,
            UNIQUE (source, coin))"""
    )
    conn.execute(
        """CREATE TABLE windows (
            series_id INTEGER NOT NULL REFERENCES series (id),
            start INTEGER NOT NULL,
            open REAL NOT NULL,
            high REAL NOT NULL,
            low REAL NOT NULL,
            close REAL NOT NULL,
            avg_price REAL NOT NULL,
            change REAL,
            volume REAL,
            cap REAL,
            ticks INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            PRIMARY KEY (series_id, start)) WITHOUT ROWID"""
    )


def _v2_hours(conn: sqlite3.Connection) -> None:
    """Each series' hours rolled up (kept in step with `windows` by every write and purge):
    candles of 1 h and longer read ~120x fewer rows."""
    conn.execute(
        """CREATE TABLE hours (
            series_id INTEGER NOT NULL REFERENCES series (id),
            bucket INTEGER NOT NULL,
            open REAL NOT NULL,
            close REAL NOT NULL,
            high REAL NOT NULL,
            low REAL NOT NULL,
            price_sum REAL NOT NULL,
            ticks INTEGER NOT NULL,
            change_sum REAL,
            change_ticks INTEGER,
            volume REAL,
            cap REAL,
            windows INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            PRIMARY KEY (series_id, bucket)) WITHOUT ROWID"""
    )
    # Filled once every migration has run (see HOURS_CHANGED): the fill reads today's columns.


def _v3_trades(conn: sqlite3.Connection) -> None:
    """Windows from trades (#14): the quote currency, VWAP, traded volume and trade count of
    each window (null without trades), and the sums a candle's VWAP is made of per hour."""
    for column in ("quote TEXT", "vwap REAL", "traded REAL", "trades INTEGER"):
        conn.execute(f"ALTER TABLE windows ADD COLUMN {column}")
    for column in ("notional REAL", "traded REAL", "trades INTEGER"):
        conn.execute(f"ALTER TABLE hours ADD COLUMN {column}")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _v1_windows,
    _v2_hours,
    _v3_trades,
)
"""Migration i brings the schema from version i to i + 1, in the open transaction. Only ever
append."""

SCHEMA_VERSION = len(MIGRATIONS)

HOURS_CHANGED = 3
"""The last version that changed what an hour holds: a file older than it has its hours
rebuilt from its windows after migrating (a v2 file's hours get the trade sums, null there)."""

# A repeated final replaces the stored window; a backfill (kind 1) never replaces a live one (0).
_UPSERT = """INSERT INTO windows
    (series_id, start, open, high, low, close, avg_price, change, volume, cap, ticks, kind,
        quote, vwap, traded, trades)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (series_id, start) DO UPDATE SET
        open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
        avg_price = excluded.avg_price, change = excluded.change, volume = excluded.volume,
        cap = excluded.cap, ticks = excluded.ticks, kind = excluded.kind,
        quote = excluded.quote, vwap = excluded.vwap, traded = excluded.traded,
        trades = excluded.trades
    WHERE excluded.kind = 0 OR windows.kind = 1"""
_UPSERT_FIELDS = 15  # after series_id

# Floor of start to the interval in SQL, equal to Python's `start - start % iv` for any sign.
_BUCKET = "(start - ((start % :iv) + :iv) % :iv)"

HOUR = 3600

# Aggregates per bucket over the PK range, then open/close/cap by PK lookups of the first,
# last and last-with-a-cap window of each bucket.
_CANDLES = f"""WITH b AS (
    SELECT {_BUCKET} AS bucket, min(start) AS first, max(start) AS last,
        max(CASE WHEN cap IS NOT NULL THEN start END) AS cap_at,
        max(high) AS high, min(low) AS low, sum(avg_price * ticks) AS price_sum,
        sum(ticks) AS ticks, sum(change * ticks) AS change_sum,
        sum(CASE WHEN change IS NOT NULL THEN ticks END) AS change_ticks,
        max(volume) AS volume, count(*) AS n, min(kind) AS kind,
        sum(vwap * traded) AS notional, sum(traded) AS traded, sum(trades) AS trades
    FROM windows WHERE series_id = :sid AND start >= :from AND start < :to
    GROUP BY bucket)
SELECT b.bucket, o.open, c.close, b.high, b.low, b.price_sum, b.ticks, b.change_sum,
    b.change_ticks, b.volume, m.cap, b.n, b.kind, b.notional, b.traded, b.trades
FROM b
JOIN windows o ON o.series_id = :sid AND o.start = b.first
JOIN windows c ON c.series_id = :sid AND c.start = b.last
LEFT JOIN windows m ON m.series_id = :sid AND m.start = b.cap_at
ORDER BY b.bucket"""

_CLOSES = f"""WITH b AS (
    SELECT series_id, {_BUCKET} AS bucket, max(start) AS last FROM windows
    WHERE series_id IN (SELECT id FROM series WHERE source = :source)
        AND start >= :from AND start < :to
    GROUP BY series_id, bucket)
SELECT s.coin, w.close FROM b
JOIN windows w ON w.series_id = b.series_id AND w.start = b.last
JOIN series s ON s.id = b.series_id
ORDER BY s.coin, b.bucket"""


_HOUR_CLOSES = """SELECT s.coin, h.bucket, h.close FROM hours h JOIN series s ON s.id = h.series_id
WHERE s.source = :source AND h.bucket >= :from AND h.bucket < :to ORDER BY s.coin, h.bucket"""

_RANGE = """SELECT start, open, high, low, close, avg_price, change, volume, cap, ticks, kind,
    vwap, traded, trades
FROM windows WHERE series_id = ? AND start >= ? AND start < ? ORDER BY start"""

_HOURS = """SELECT bucket, open, close, high, low, price_sum, ticks, change_sum, change_ticks,
    volume, cap, windows, kind, notional, traded, trades FROM hours
WHERE series_id = :sid AND bucket >= :from AND bucket < :to ORDER BY bucket"""


def _rebuild_hours(conn: sqlite3.Connection, sid: int, first: int, last: int) -> None:
    """Recompute the series' hours from `first` to `last` (hour starts, inclusive) from its
    windows, in the caller's transaction."""
    span = {"sid": sid, "from": first, "to": last + HOUR}
    conn.execute(
        "DELETE FROM hours WHERE series_id = :sid AND bucket >= :from AND bucket < :to", span
    )
    conn.execute(f"INSERT INTO hours SELECT :sid, * FROM ({_CANDLES})", {**span, "iv": HOUR})


_TOUCHED = """CREATE TEMP TABLE IF NOT EXISTS touched (
    series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, PRIMARY KEY (series_id, bucket)
) WITHOUT ROWID"""

# Every touched hour rebuilt in one statement: a batch of finals of 5,000 coins is a few calls
# from Python, not two per coin (the writer then holds the GIL, which the event loop needs, for
# less time).
_REBUILD_TOUCHED = f"""WITH b AS (
    SELECT t.series_id AS sid, t.bucket AS bucket, min(w.start) AS first, max(w.start) AS last,
        max(CASE WHEN w.cap IS NOT NULL THEN w.start END) AS cap_at,
        max(w.high) AS high, min(w.low) AS low, sum(w.avg_price * w.ticks) AS price_sum,
        sum(w.ticks) AS ticks, sum(w.change * w.ticks) AS change_sum,
        sum(CASE WHEN w.change IS NOT NULL THEN w.ticks END) AS change_ticks,
        max(w.volume) AS volume, count(*) AS n, min(w.kind) AS kind,
        sum(w.vwap * w.traded) AS notional, sum(w.traded) AS traded, sum(w.trades) AS trades
    FROM temp.touched t
    JOIN windows w ON w.series_id = t.series_id AND w.start >= t.bucket
        AND w.start < t.bucket + {HOUR}
    GROUP BY t.series_id, t.bucket)
INSERT INTO hours
SELECT b.sid, b.bucket, o.open, c.close, b.high, b.low, b.price_sum, b.ticks, b.change_sum,
    b.change_ticks, b.volume, m.cap, b.n, b.kind, b.notional, b.traded, b.trades
FROM b
JOIN windows o ON o.series_id = b.sid AND o.start = b.first
JOIN windows c ON c.series_id = b.sid AND c.start = b.last
LEFT JOIN windows m ON m.series_id = b.sid AND m.start = b.cap_at"""


def _rebuild(conn: sqlite3.Connection, touched: Iterable[tuple[int, int]]) -> None:
    """The hours holding the (series id, window start) pairs just written, in the caller's
    transaction."""
    hours = {(sid, bucket_of(start, HOUR)) for sid, start in touched}
    conn.execute(_TOUCHED)
    conn.execute("DELETE FROM temp.touched")
    conn.executemany("INSERT INTO temp.touched VALUES (?, ?)", sorted(hours))
    conn.execute(
        "DELETE FROM hours WHERE (series_id, bucket) IN "
        "(SELECT series_id, bucket FROM temp.touched)"
    )
    conn.execute(_REBUILD_TOUCHED)


class HistoryDatabaseError(CryptoPulseError):
    """The history file cannot be used (missing, newer than this code, not a database)."""


class SqliteHistory:
    """`HistoryStore` on one SQLite file; `read_only` opens an existing file for reads only
    (the export, a replica sharing another server's file) and never migrates it."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._writer: sqlite3.Connection | None = None
        self._series: dict[tuple[str, str], tuple[int, str]] = {}
        if read_only:
            self._check_version(self._reader())
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._migrate(self._write_connection())

    # connections

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            if not self.path.exists():
                raise HistoryDatabaseError(f"no history database at {self.path} (yet)")
            uri = f"file:{self.path.resolve()}?mode=ro"
        else:
            uri = f"file:{self.path.resolve()}"
        try:
            # autocommit: transactions are explicit; one thread uses each connection
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            if not self.read_only:
                conn.execute("PRAGMA journal_mode = WAL")
                # WAL + NORMAL: a killed process loses nothing committed; power loss may lose
                # the last transactions, which the windows topic replays
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA mmap_size = 268435456")
        except sqlite3.DatabaseError as exc:
            raise HistoryDatabaseError(
                f"cannot open the history database {self.path}: {exc}"
            ) from exc
        with self._lock:
            self._connections.append(conn)
        return conn

    def _write_connection(self) -> sqlite3.Connection:
        if self.read_only:
            raise HistoryDatabaseError(f"{self.path} is open read-only")
        if self._writer is None:
            self._writer = self._connect()
        return self._writer

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
        return conn

    def _check_version(self, conn: sqlite3.Connection) -> int:
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise HistoryDatabaseError(f"{self.path} is not a history database: {exc}") from exc
        if version > SCHEMA_VERSION:
            raise HistoryDatabaseError(
                f"{self.path} has schema version {version}, newer than this version of "
                f"CryptoPulse knows ({SCHEMA_VERSION}): upgrade CryptoPulse or use another file"
            )
        if self.read_only and version < SCHEMA_VERSION:
            raise HistoryDatabaseError(
                f"{self.path} has schema version {version}; start the API server once to "
                "migrate it before reading it read-only"
            )
        return version

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")  # one migrator at a time
        try:
            version = self._check_version(conn)
            for migration in MIGRATIONS[version:]:
                migration(conn)
            if 0 < version < HOURS_CHANGED:
                for (sid,) in conn.execute("SELECT id FROM series").fetchall():
                    _rebuild_hours(conn, sid, -(2**62), 2**62)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        return int(self._reader().execute("PRAGMA user_version").fetchone()[0])

    # writes

    def _series_id(self, conn: sqlite3.Connection, source: str, coin: str, symbol: str) -> int:
        held = self._series.get((source, coin))
        if held is not None and held[1] == symbol:
            return held[0]
        row = conn.execute(
            "INSERT INTO series (source, coin, symbol) VALUES (?, ?, ?) "
            "ON CONFLICT (source, coin) DO UPDATE SET symbol = excluded.symbol RETURNING id",
            (source, coin, symbol),
        ).fetchone()
        self._series[(source, coin)] = (int(row[0]), symbol)
        return int(row[0])

    def write(self, windows: Sequence[WindowAggregate]) -> int:
        if not windows:
            return 0
        conn = self._write_connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = []
            for w in windows:
                r = row_of(w)
                sid = self._series_id(conn, w.source, w.coin, w.symbol)
                rows.append(
                    (
                        sid,
                        r.start,
                        r.open,
                        r.high,
                        r.low,
                        r.close,
                        r.avg_price,
                        r.change,
                        r.volume,
                        r.cap,
                        r.ticks,
                        r.kind,
                        r.quote,
                        r.vwap,
                        r.traded,
                        r.trades,
                    )
                )
            before = conn.total_changes
            conn.executemany(_UPSERT, rows)
            changed = conn.total_changes - before
            _rebuild(conn, ((row[0], row[1]) for row in rows))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._series.clear()  # ids inserted in the rolled-back transaction are gone
            raise
        return changed

    def write_rows(self, source: str, coin: str, symbol: str, rows: Sequence[tuple]) -> None:  # type: ignore[type-arg]
        """Bulk load (benchmarks): rows as (start, open, high, low, close, avg_price, change,
        volume, cap, ticks, kind[, quote, vwap, traded, trades]), one transaction; the trade
        fields are null when left out."""
        conn = self._write_connection()
        conn.execute("BEGIN IMMEDIATE")
        sid = self._series_id(conn, source, coin, symbol)
        pad = (None,) * _UPSERT_FIELDS
        conn.executemany(_UPSERT, [(sid, *row, *pad[len(row) :]) for row in rows])
        _rebuild(conn, ((sid, row[0]) for row in rows))
        conn.execute("COMMIT")

    def purge(self, before: datetime) -> int:
        """Series by series over the primary key, one short transaction each, so readers and
        the writer's next batch are never held up long."""
        conn = self._write_connection()
        cutoff = epoch(before)
        deleted = 0
        for (sid,) in conn.execute("SELECT id FROM series").fetchall():
            conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = conn.execute(
                    "DELETE FROM windows WHERE series_id = ? AND start < ?", (sid, cutoff)
                )
                deleted += cursor.rowcount
                if cursor.rowcount:
                    hour = bucket_of(cutoff, HOUR)  # the cut one is recomputed
                    conn.execute(
                        "DELETE FROM hours WHERE series_id = ? AND bucket < ?", (sid, hour)
                    )
                    _rebuild_hours(conn, sid, hour, hour)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return deleted

    # reads

    def _sid(self, source: str, coin: str) -> tuple[int, str] | None:
        row = (
            self._reader()
            .execute("SELECT id, symbol FROM series WHERE source = ? AND coin = ?", (source, coin))
            .fetchone()
        )
        return (int(row[0]), str(row[1])) if row else None

    def symbol(self, source: str, coin: str) -> str | None:
        held = self._sid(source, coin)
        return held[1] if held else None

    def sources(self) -> list[str]:
        rows = self._reader().execute(
            "SELECT DISTINCT source FROM series s "
            "WHERE EXISTS (SELECT 1 FROM windows w WHERE w.series_id = s.id) ORDER BY source"
        )
        return [str(r[0]) for r in rows]

    def candles(
        self, source: str, coin: str, interval: int, start: datetime, end: datetime
    ) -> list[CandleRow]:
        held = self._sid(source, coin)
        if held is None:
            return []
        sid, lo, hi = held[0], epoch(start), epoch(end)
        if interval % HOUR:
            totals = self._totals(sid, interval, lo, hi)
        else:
            totals = regroup(self._hour_totals(sid, lo, hi), interval)
        return [candle(t, interval) for t in totals]

    def _totals(self, sid: int, interval: int, lo: int, hi: int) -> list[Totals]:
        """Buckets of `interval` over the windows starting in [lo, hi): the rows in key order,
        summed up in one pass (6x faster than the same GROUP BY in SQL, which sorts)."""
        if lo >= hi:
            return []
        rows = self._reader().execute(_RANGE, (sid, lo, hi))
        return stream_totals(rows, interval)

    def _hour_totals(self, sid: int, lo: int, hi: int) -> list[Totals]:
        """Hour totals over [lo, hi): whole hours from `hours`, a cut first or last hour from
        the windows (one read transaction, so both agree)."""
        first = min(hi, -(-lo // HOUR) * HOUR)  # first whole hour
        last = max(first, bucket_of(hi, HOUR))  # end of the whole hours
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            head = self._totals(sid, HOUR, lo, first)
            params = {"sid": sid, "from": first, "to": last}
            whole = [Totals(*row) for row in conn.execute(_HOURS, params)]
            tail = self._totals(sid, HOUR, last, hi)
        finally:
            conn.execute("COMMIT")
        return head + whole + tail

    def closes(
        self, source: str, interval: int, start: datetime, end: datetime
    ) -> dict[str, list[float]]:
        lo, hi = epoch(start), epoch(end)
        out: dict[str, list[float]] = {}
        if interval % HOUR == 0:  # from the hours table: 120x fewer rows
            hours = {"source": source, "from": bucket_of(lo, HOUR), "to": -(-hi // HOUR) * HOUR}
            last: dict[tuple[str, int], float] = {}  # in key order: the last hour's close wins
            for coin, bucket, close in self._reader().execute(_HOUR_CLOSES, hours):
                last[(coin, bucket_of(bucket, interval))] = close
            for (coin, _), close in last.items():
                out.setdefault(coin, []).append(close)
            return out
        params = {"source": source, "iv": interval, "from": lo, "to": hi}
        for coin, close in self._reader().execute(_CLOSES, params):
            out.setdefault(coin, []).append(close)
        return out

    def count(self) -> int:
        """Stored windows (tests, benchmarks)."""
        return int(self._reader().execute("SELECT count(*) FROM windows").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._writer = None
        self._local = threading.local()
