"""Captures: record any source, replay at recorded or accelerated speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cryptopulse.config import ProducerSettings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.schema import Tick, tick_to_json
from cryptopulse.sources.base import FakeClock
from cryptopulse.sources.replay import CaptureWriter, ReplaySource
from cryptopulse.sources.simulated import SimulatedMarket

START = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def _capture(path: Path, count: int = 50, rate: float = 1 / 30) -> list[Tick]:
    ticks = SimulatedMarket(10, seed=5, rate=rate, start=START).ticks(count)
    with CaptureWriter(path) as writer:
        writer.write(ticks[:20])
        writer.write(ticks[20:])
    return ticks


def _all(source: ReplaySource) -> list[Tick]:
    return [t for batch in source for t in batch.ticks]


def test_record_then_replay_as_recorded(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    ticks = _capture(path)
    assert len(path.read_bytes().splitlines()) == 50
    clock = FakeClock()
    replayed = _all(ReplaySource(path, speed=0, retime=False, clock=clock))
    assert [tick_to_json(t) for t in replayed] == [tick_to_json(t) for t in ticks]
    assert clock.sleeps == []


def test_recorded_speed_and_acceleration(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    ticks = _capture(path, count=31)  # 10 coins over 90 s, one tick every 3 s
    span = (ticks[-1].timestamp - ticks[0].timestamp).total_seconds()
    assert span == 90.0
    clock = FakeClock()
    assert len(_all(ReplaySource(path, speed=1, retime=False, clock=clock))) == 31
    assert sum(clock.sleeps) == pytest.approx(90.0)
    clock = FakeClock()
    assert len(_all(ReplaySource(path, speed=10, retime=False, clock=clock))) == 31
    assert sum(clock.sleeps) == pytest.approx(9.0)


def test_retime_shifts_to_now_and_compresses(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    ticks = _capture(path, count=31)
    now = datetime(2027, 1, 1, tzinfo=UTC)
    clock = FakeClock(now.timestamp())
    replayed = _all(ReplaySource(path, speed=3, retime=True, clock=clock))
    assert replayed[0].timestamp == now
    assert replayed[-1].timestamp == now + timedelta(seconds=30)
    assert [t.price for t in replayed] == [t.price for t in ticks]


def test_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    ticks = _capture(path, count=5)
    with path.open("ab") as f:
        f.write(b"\n{not json}\n")
        f.write(b'{"coin": "bitcoin", "price": -1}\n')
        f.write(tick_to_json(ticks[0]) + b"\n")
    source = ReplaySource(path, speed=0, retime=False, clock=FakeClock())
    batches = list(source)
    assert sum(len(b.ticks) for b in batches) == 6
    assert sum(b.skipped["invalid_line"] for b in batches) == 2
    assert source.skipped == {"invalid_line": 2}


def test_skips_are_counted_in_every_batch_not_only_the_first(tmp_path: Path) -> None:
    """read_capture counts into one Counter for the whole file: later batches must see it too."""
    path = tmp_path / "capture.jsonl"
    with path.open("wb") as f:
        for tick in SimulatedMarket(1, seed=5, start=START).ticks(6):
            f.write(b"{bad}\n" + tick_to_json(tick) + b"\n")
    source = ReplaySource(path, speed=0, retime=False, clock=FakeClock(), max_batch=2)
    batches = list(source)
    assert len(batches) == 3
    assert [b.skipped["invalid_line"] for b in batches] == [2, 2, 2]
    assert source.skipped == {"invalid_line": 6}


def test_missing_capture_is_a_plain_error(tmp_path: Path) -> None:
    with pytest.raises(CryptoPulseError, match="cryptopulse record"):
        ReplaySource(tmp_path / "nope.jsonl")
    with pytest.raises(CryptoPulseError, match="--replay-file"):
        ReplaySource.from_settings(ProducerSettings(source="replay"))


def test_append(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    ticks = _capture(path, count=5)
    with CaptureWriter(path, append=True) as writer:
        writer.write(ticks)
    assert len(path.read_bytes().splitlines()) == 10


def _exchange_ticks() -> list[Tick]:
    """Trades and tickers of two exchanges and a CoinGecko quote, interleaved as a producer of
    several sources records them: exchange trade times are not in arrival order."""
    at = [0.3, 0.4, 0.0, 1.0, 0.9, 2.5, 3.0]
    made = [
        Tick(coin="bitcoin", symbol="btc", price=97000.5, size=0.012, quote="USDT",
             timestamp=START, source="binance"),
        Tick(coin="bitcoin", symbol="btc", price=97010.0, size=1.5, quote="USD",
             timestamp=START, source="coinbase"),
        Tick(coin="ethereum", symbol="eth", price=3398.1, size=2e-8, quote="USDT",
             timestamp=START, source="binance"),
        Tick(coin="bitcoin", symbol="btc", price=97001.0, change_24h=-1.8, volume_24h=3.1e9,
             quote="USDT", timestamp=START, source="binance"),
        Tick(coin="bitcoin", symbol="btc", price=97002.0, change_24h=-1.7, volume_24h=2.1e9,
             market_cap=1.92e12, timestamp=START, source="coingecko"),
        Tick(coin="ethereum", symbol="eth", price=3399.0, size=10.0, quote="USD",
             timestamp=START, source="coinbase"),
        Tick(coin="ethereum", symbol="eth", price=3398.5, size=0.25, quote="USD",
             timestamp=START, source="kraken"),
    ]  # fmt: skip
    return [
        t.model_copy(update={"timestamp": START + timedelta(seconds=s)})
        for t, s in zip(made, at, strict=True)
    ]


def test_exchange_captures_replay_with_each_tick_s_source_size_and_quote(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    ticks = _exchange_ticks()
    with CaptureWriter(path) as writer:
        writer.write(ticks)
    replayed = _all(ReplaySource(path, speed=0, retime=False, clock=FakeClock()))
    assert replayed == ticks
    assert [tick_to_json(t) for t in replayed] == path.read_bytes().splitlines()  # the same bytes
    assert [(t.source, t.size, t.quote) for t in replayed] == [
        ("binance", 0.012, "USDT"),
        ("coinbase", 1.5, "USD"),
        ("binance", 2e-8, "USDT"),
        ("binance", None, "USDT"),
        ("coingecko", None, None),
        ("coinbase", 10.0, "USD"),
        ("kraken", 0.25, "USD"),
    ]


def test_retimed_exchange_ticks_keep_all_but_their_time_and_their_spacing(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    ticks = _exchange_ticks()
    with CaptureWriter(path) as writer:
        writer.write(ticks)
    now = datetime(2027, 1, 1, tzinfo=UTC)
    clock = FakeClock(now.timestamp())
    replayed = _all(ReplaySource(path, speed=1, retime=True, clock=clock))
    assert [t.model_copy(update={"timestamp": START}) for t in replayed] == [
        t.model_copy(update={"timestamp": START}) for t in ticks
    ]
    # every tick as far from the first as recorded, one older than a tick before it included
    first = ticks[0].timestamp
    assert [t.timestamp - now for t in replayed] == [t.timestamp - first for t in ticks]
    assert replayed[2].timestamp == now - timedelta(seconds=0.3)
    assert sum(clock.sleeps) == pytest.approx(2.7)
