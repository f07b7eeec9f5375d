"""Backfill end to end (issue #13): sources -> producer -> the real session broker.

CoinGecko: a local fake speaking the real API (market_chart payloads of the real shape) with a
429, garbage and a hang scripted per coin; the producer publishes the good coins' windows at
once, skips each bad one with one log line, tries it again later, and polls on time throughout.
Simulated: `cryptopulse produce` publishes 24 h of windows per coin before its live ticks,
which continue the same walk; `--no-backfill` publishes none.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import subprocess
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from cryptopulse.backfill import window_start
from cryptopulse.producer import BackfillPublisher, TickProducer, publish_source
from cryptopulse.schema import WindowAggregate
from cryptopulse.sources.coingecko import CoinGeckoSource
from tests.fakes.coingecko import FakeCoinGecko, garbage, hang, rate_limited
from tests.integration.test_producer_cli import CLI, _env
from tests.kafka_helpers import read_to_end
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

POLL = 2.0
RETRY = 3.0


def windows_on(bootstrap: str, topic: str) -> list[WindowAggregate]:
    """Every window record on `topic`, each checked against the contract and its key."""
    out = []
    for key, value in read_to_end(bootstrap, topic):
        window = WindowAggregate.model_validate_json(value)
        assert key is not None and key.decode() == window.coin
        out.append(window)
    return out


def by_coin(windows: list[WindowAggregate]) -> dict[str, list[WindowAggregate]]:
    grouped: dict[str, list[WindowAggregate]] = defaultdict(list)
    for window in windows:
        grouped[window.coin].append(window)
    return grouped


def assert_backfill_series(windows: list[WindowAggregate], live_from: datetime) -> None:
    """One coin's backfill: final, 30 s long, aligned, each window once, all before the live edge."""
    starts = [w.window_start.timestamp() for w in windows]
    assert len(set(starts)) == len(starts)
    assert all(window_start(s, 30) == s for s in starts)
    assert all(w.kind == "backfill" and w.final for w in windows)
    assert all((w.window_end - w.window_start).total_seconds() == 30 for w in windows)
    assert max(w.window_end for w in windows).timestamp() <= window_start(live_from.timestamp(), 30)


@pytest.fixture
def fake() -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko() as server:
        yield server


def test_coingecko_backfill_skips_bad_coins_retries_them_and_never_delays_polls(
    fake: FakeCoinGecko,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks_topic, windows_topic = new_topic("ticks"), new_topic("windows")
    fake.fail_chart("bitcoin", rate_limited(1), times=1)
    fake.fail_chart("ethereum", garbage(b'{"prices": [[1732485600000, 97012.5], [17'), times=1)
    fake.fail_chart("solana", hang(60), times=1)  # never answers in time
    source = CoinGeckoSource(
        list(fake.quotes),
        base_url=fake.url,
        poll_interval=POLL,
        timeout=5.0,
        calls_per_minute=6000.0,
        backoff=(0.2,),
    )
    producer = TickProducer(kafka_bootstrap, ticks_topic, linger_ms=5)
    producer.start()
    sink = BackfillPublisher(producer, windows_topic)
    source.backfill_to(sink, window_seconds=30.0, retry=RETRY)
    runner = publish_source(source, producer)
    caplog.set_level(logging.INFO, logger="cryptopulse")
    thread = threading.Thread(target=runner.run, name="producer")
    thread.start()
    try:
        wait_for(lambda: sink.coins == 10, 60, "every coin backfilled, bad ones on retry")
        wait_for(lambda: len(fake.requests_to("/simple/price")) >= 5, 30, "a few more polls")
    finally:
        runner.stop()
        thread.join(30)
        source.close()
        assert producer.stop() == 0
    assert not thread.is_alive()

    windows = by_coin(windows_on(kafka_bootstrap, windows_topic))
    ticks = [orjson.loads(v) for _, v in read_to_end(kafka_bootstrap, ticks_topic)]
    assert set(windows) == set(fake.quotes)
    first_tick = {t["coin"]: datetime.fromisoformat(t["timestamp"]) for t in reversed(ticks)}
    for coin, series in windows.items():
        assert len(series) >= 280  # ~288 five-minute points: one window each, gaps between
        assert_backfill_series(series, first_tick[coin])
        assert {w.source for w in series} == {"coingecko"}

    # the bad coins: one log line each, skipped, then tried again after the retry delay
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("backfill of")]
    skipped = Counter(line.split()[2] for line in lines if "skipped" in line)
    assert skipped == {"bitcoin": 1, "ethereum": 1, "solana": 1}, lines
    assert any("bitcoin skipped (rate limited)" in line for line in lines)
    assert any("ethereum skipped (malformed json)" in line for line in lines)
    for coin in ("bitcoin", "ethereum", "solana"):
        first, second = (r.at for r in fake.chart_requests(coin))
        assert second - first >= RETRY
    assert all(len(fake.chart_requests(c)) == 1 for c in fake.quotes if c not in skipped)
    metrics = producer.metrics
    assert metrics.backfill_failures.total() == 3
    assert metrics.backfill_failures["rate_limited"] == 1
    assert metrics.backfill_failures["malformed_json"] == 1
    assert metrics.backfill_windows == metrics.backfill_delivered == sum(map(len, windows.values()))

    # live ticks flowed meanwhile: polls kept their 2 s grid through the 60 s hang
    polls = [r.at for r in fake.requests_to("/simple/price")]
    assert max(b - a for a, b in itertools.pairwise(polls)) < 2 * POLL
    assert metrics.sent == len(ticks) >= 10


def _produce(
    tmp_path: Path, bootstrap: str, ticks: str, windows: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, int]]:
    read_fd, write_fd = os.pipe()
    try:
        done = subprocess.run(
            [
                *CLI, "produce", "--source", "simulated", "--duration", "3",
                "--bootstrap", bootstrap, "--topic", ticks, "--report-fd", str(write_fd), *extra,
            ],
            cwd=tmp_path,
            env={**_env(tmp_path), "CRYPTOPULSE_KAFKA__TOPIC_WINDOWS": windows},
            capture_output=True, text=True, timeout=120, pass_fds=(write_fd,),
        )  # fmt: skip
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as report:
            return done, orjson.loads(report.read())
    finally:
        with contextlib.suppress(OSError):
            os.close(write_fd)


def test_simulated_backfill_publishes_24h_per_coin_then_live_ticks_continue(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    ticks_topic, windows_topic = new_topic("ticks"), new_topic("windows")
    done, report = _produce(tmp_path, kafka_bootstrap, ticks_topic, windows_topic)
    assert done.returncode == 0, done.stderr
    assert report["undelivered"] == 0
    # 24 h x 10 coins; the few points in the live edge's window are left to live ticks
    assert re.search(r"backfill: 28,[78]\d\d windows for 10 of 10 coins", done.stderr), done.stderr
    assert re.search(r"backfill windows 28,[78]\d\d", done.stderr)  # in the run's summary

    windows = by_coin(windows_on(kafka_bootstrap, windows_topic))
    ticks = [orjson.loads(v) for _, v in read_to_end(kafka_bootstrap, ticks_topic)]
    assert len(windows) == 10 and ticks
    first: dict[str, dict[str, Any]] = {}
    for tick in ticks:
        first.setdefault(tick["coin"], tick)
    for coin, series in windows.items():
        series.sort(key=lambda w: w.window_start)
        assert 2879 <= len(series) <= 2880  # 24 h; the live edge's window is left to live ticks
        assert {w.source for w in series} == {"simulated"}
        if coin in first:
            live = first[coin]
            assert_backfill_series(series, datetime.fromisoformat(live["timestamp"]))
            assert abs(live["price"] / series[-1].close - 1) < 0.05  # no jump at the live edge


def test_no_backfill_publishes_no_windows(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    ticks_topic, windows_topic = new_topic("ticks"), new_topic("windows")
    done, report = _produce(tmp_path, kafka_bootstrap, ticks_topic, windows_topic, "--no-backfill")
    assert done.returncode == 0, done.stderr
    assert report["sent"] > 0
    assert windows_on(kafka_bootstrap, windows_topic) == []
    assert "backfill" not in done.stderr
