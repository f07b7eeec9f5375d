"""Several sources in one producer: the source list setting, the CoinGecko market-cap fill, and
the combined source's bookkeeping (tags, order, per-source counters and statuses, stop, crash)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from cryptopulse.config import ProducerSettings, Settings, parse_sources
from cryptopulse.producer import Runner, StatusReporter
from cryptopulse.producer_metrics import ProducerMetrics
from cryptopulse.schema import SourceStatus, Tick
from cryptopulse.sources import open_source, source_names
from cryptopulse.sources.base import Batch, FakeClock
from cryptopulse.sources.combined import CombinedSource
from cryptopulse.sources.exchanges import ExchangeSource
from cryptopulse.sources.market_caps import MarketCaps
from cryptopulse.sources.replay import CaptureWriter, ReplaySource
from cryptopulse.sources.simulated import SimulatedMarket, SimulatedSource
from cryptopulse.status import StatusTracker
from tests.waiting import wait_for

START = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def trade(coin: str = "bitcoin", i: int = 0, **fields: object) -> Tick:
    values: dict[str, object] = {
        "coin": coin,
        "symbol": coin[:3],
        "price": 100.0 + i,
        "size": 0.5,
        "quote": "USDT",
        "timestamp": START + timedelta(seconds=i),
        "source": "binance",
    }
    values.update(fields)
    return Tick.model_validate(values)


# -- the source list -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("binance", "binance"),
        ("binance,coinbase", "binance,coinbase"),
        (" Binance , Coinbase,kraken ", "binance,coinbase,kraken"),
        ("binance,coingecko,", "binance,coingecko"),
        (["kraken", "coingecko"], "kraken,coingecko"),  # a TOML list
        ("replay", "replay"),
    ],
)
def test_a_source_list_is_read_as_its_canonical_comma_list(given: object, canonical: str) -> None:
    assert parse_sources(given) == canonical
    assert ProducerSettings(source=given).source == canonical


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "no source given"),
        (" , ", "no source given"),
        ("nasdaq", "unknown source 'nasdaq'"),
        ("binance,nasdaq", "unknown source 'nasdaq'"),
        ("binance,coinbase,binance", "'binance' is given twice"),
        ("replay,binance", "replay runs alone"),
        ("coingecko,replay", "replay runs alone"),
    ],
)
def test_a_bad_source_list_is_refused_with_its_reason(given: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProducerSettings(source=given)


def test_the_source_list_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOPULSE_PRODUCER__SOURCE", "binance,coinbase")
    assert Settings().producer.source == "binance,coinbase"


def test_open_source_runs_each_named_source_under_one(tmp_path: Path) -> None:
    settings = ProducerSettings(source="binance,coinbase,kraken", coins=["bitcoin"])
    source = open_source(settings)
    try:
        assert isinstance(source, CombinedSource)
        assert source_names(source) == ("binance", "coinbase", "kraken")
        assert all(isinstance(s, ExchangeSource) for s in source.sources)
        assert "binance: " in source.describe() and "kraken: " in source.describe()
    finally:
        source.close()
    single = open_source(ProducerSettings(source="simulated"))
    assert source_names(single) == ("simulated",) and not isinstance(single, CombinedSource)


# -- the market cap ------------------------------------------------------------------------


def test_exchange_ticks_get_the_latest_coingecko_market_cap_of_their_coin() -> None:
    caps = MarketCaps()
    assert caps.fill(ticks := [trade()]) is ticks  # nothing known yet: untouched
    caps.observe(
        [
            trade("bitcoin", source="coingecko", market_cap=1.9e12, size=None, quote=None),
            trade("ethereum", source="coingecko", market_cap=4.0e11, size=None, quote=None),
            trade("bitcoin", 1, source="coingecko", market_cap=1.95e12, size=None, quote=None),
            trade("solana", source="kraken", market_cap=1.0),  # not CoinGecko's: ignored
            trade("cardano", source="coingecko", size=None, quote=None),  # no cap: ignored
        ]
    )
    assert caps.caps == {"bitcoin": 1.95e12, "ethereum": 4.0e11}
    given = [trade("bitcoin"), trade("ethereum", 1), trade("solana", 2), trade("bitcoin", 3)]
    given.append(trade("bitcoin", 4, market_cap=7.0))  # has its own: kept
    filled = caps.fill(given)
    assert [t.market_cap for t in filled] == [1.95e12, 4.0e11, None, 1.95e12, 7.0]
    assert [t.model_copy(update={"market_cap": None}) for t in filled[:4]] == [
        t.model_copy(update={"market_cap": None}) for t in given[:4]
    ]  # nothing else changed: price, size, quote, source, time
    assert caps.filled == 3


# -- the combined source -------------------------------------------------------------------


def _simulated(count: int, *, paced: bool = False) -> SimulatedSource:
    market = SimulatedMarket(3, seed=7, rate=1.0, start=START)
    clock = None if paced else FakeClock(START.timestamp())
    return SimulatedSource(market, paced=paced, max_ticks=count, max_batch=7, clock=clock)


def _capture(path: Path, ticks: list[Tick]) -> Path:
    with CaptureWriter(path) as writer:
        writer.write(ticks)
    return path


def _replay(path: Path, **options: object) -> ReplaySource:
    options.setdefault("speed", 0)
    options.setdefault("retime", False)
    return ReplaySource(path, **options)  # type: ignore[arg-type]


def test_each_source_s_batches_arrive_tagged_and_in_their_own_order(tmp_path: Path) -> None:
    trades = [trade(("bitcoin", "ethereum")[i % 2], i) for i in range(40)]
    path = _capture(tmp_path / "c.jsonl", trades)
    combined = CombinedSource([_simulated(50), _replay(path, max_batch=6)])
    with combined:
        batches = list(combined)
    assert not combined.running
    by = {name: [b for b in batches if b.source == name] for name in ("simulated", "replay")}
    assert len(by["simulated"]) + len(by["replay"]) == len(batches)
    replayed = [t for b in by["replay"] for t in b.ticks]
    assert replayed == trades  # every tick, in order, source and size kept
    simulated = [t for b in by["simulated"] for t in b.ticks]
    assert simulated == _all(_simulated(50))
    assert {t.source for t in simulated} == {"simulated"}
    assert [b.cycle for b in by["simulated"]] == sorted(b.cycle for b in by["simulated"])


def _all(source: SimulatedSource) -> list[Tick]:
    return [t for b in source for t in b.ticks]


def test_statuses_are_kept_per_source(tmp_path: Path) -> None:
    path = _capture(tmp_path / "c.jsonl", [trade(i=i) for i in range(10)])
    combined = CombinedSource([_simulated(30), _replay(path)])
    sent: list[SourceStatus] = []
    trackers = [StatusTracker(name) for name in source_names(combined)]
    reporter = StatusReporter(trackers, sent.append, interval=3600, clock=lambda: 1e9)
    taken: list[Tick] = []

    def sink(ticks: object) -> int:
        taken.extend(ticks)  # type: ignore[arg-type]
        return len(ticks)  # type: ignore[arg-type]

    reporter.start()
    with combined:
        Runner(combined, sink, metrics=None, on_batch=reporter.on_batch).run()
    reporter.stop()
    assert len(taken) == 40
    assert {s.source for s in sent} == {"simulated", "replay"}  # each reported at start
    assert [s.state for s in sent] == ["simulated", "replay"]
    assert reporter.trackers["replay"].last_good is not None
    assert reporter.trackers["simulated"].last_good is not None


def test_per_source_counts_reach_the_metrics_and_the_summary(tmp_path: Path) -> None:
    path = _capture(tmp_path / "c.jsonl", [trade(i=i) for i in range(10)])
    with path.open("ab") as f:
        f.write(b"{bad\n[]\n")
    combined = CombinedSource([_simulated(30), _replay(path)])
    with combined:
        metrics = Runner(combined, lambda ticks: len(ticks)).run()
    assert metrics.sent == 40
    assert metrics.source_sent == {"simulated": 30, "replay": 10}
    assert metrics.source_skipped == {("replay", "invalid_line"): 2}
    assert set(metrics.last_sent_by_source()) == {"simulated", "replay"}
    assert "by source: replay 10 (skipped 2); simulated 30" in metrics.summary()
    scraped = generate_latest(metrics.registry).decode()
    assert 'cryptopulse_producer_source_sent_total{source="replay"} 10.0' in scraped
    assert 'cryptopulse_producer_source_sent_total{source="simulated"} 30.0' in scraped
    assert (
        'cryptopulse_producer_source_skipped_total{reason="invalid_line",source="replay"} 2.0'
        in scraped
    )


def test_a_single_source_is_counted_under_its_name_too() -> None:
    metrics = ProducerMetrics()
    metrics.observe(Batch([trade()], error=None), source="binance", sent=1, at=5.0)
    metrics.observe(Batch([], error="http_503"), source="binance")
    assert metrics.source_sent == {"binance": 1}
    assert metrics.source_failed_cycles == {("binance", "http_503"): 1}
    assert "by source" not in metrics.summary()  # one source: the totals say it all


def test_stop_ends_every_source_at_once(tmp_path: Path) -> None:
    # a replay at recorded speed sleeping an hour between ticks, and an endless paced simulation
    path = _capture(tmp_path / "c.jsonl", [trade(i=0), trade(i=3600)])
    combined = CombinedSource([_simulated(10**9, paced=True), _replay(path, speed=1)])
    seen: list[Batch] = []

    def consume() -> None:
        for batch in combined:
            seen.append(batch)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    wait_for(lambda: any(b.source == "replay" for b in seen), 10, "the replay's first tick")
    began = time.monotonic()
    combined.stop()
    consumer.join(5)
    combined.close()
    assert not consumer.is_alive() and not combined.running
    assert time.monotonic() - began < 5


class BrokenReplay(ReplaySource):
    """A replay with a bug after its first batch (a crash, not a server's doing)."""

    name = "broken"

    def __iter__(self) -> Iterator[Batch]:
        for batch in super().__iter__():
            yield batch
            raise ZeroDivisionError("a bug")


def test_a_crashing_source_stops_the_others_and_the_iteration_raises(tmp_path: Path) -> None:
    path = _capture(tmp_path / "c.jsonl", [trade(i=i) for i in range(3)])
    combined = CombinedSource([_simulated(10**9, paced=True), BrokenReplay(path, speed=0)])
    with pytest.raises(RuntimeError, match="source broken failed: ZeroDivisionError"), combined:
        for _ in combined:
            pass
    assert not combined.running


def test_a_source_that_ends_leaves_the_others_running(tmp_path: Path) -> None:
    path = _capture(tmp_path / "c.jsonl", [trade(i=i) for i in range(3)])
    combined = CombinedSource([_simulated(10**9, paced=True), _replay(path)])
    names: list[str | None] = []

    def simulated_after_the_replay() -> int:
        if "replay" not in names:
            return 0
        last = len(names) - names[::-1].index("replay")
        return names[last:].count("simulated")

    with combined:
        for batch in combined:
            names.append(batch.source)
            if simulated_after_the_replay() >= 3:
                break
    assert simulated_after_the_replay() >= 3  # the replay ended long before: 3 ticks, no wait
    assert not combined.running


def test_the_same_source_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="distinct"):
        CombinedSource([_simulated(1), _simulated(1)])


# -- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "source", "message"),
    [
        ("produce", "binance,binance", "'binance' is given twice"),
        ("record", "binance,nasdaq", "unknown source 'nasdaq'"),
        ("up", "replay,binance", "replay runs alone"),
    ],
)
def test_a_bad_source_list_on_the_command_line_exits_2_before_anything_starts(
    command: str, source: str, message: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
    env["CRYPTOPULSE_DATA_DIR"] = str(tmp_path / "data")
    args = [sys.executable, "-m", "cryptopulse.cli", command, "--source", source]
    if command == "record":
        args += ["--output", str(tmp_path / "c.jsonl")]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in " ".join(done.stderr.split())  # rich wraps long lines
    assert not (tmp_path / "c.jsonl").exists() and not (tmp_path / "data" / "run").exists()


def test_up_hands_the_source_list_to_its_children() -> None:
    from cryptopulse.cli import _up_env

    env = _up_env({"producer__source": "binance,coinbase"})
    assert env["CRYPTOPULSE_PRODUCER__SOURCE"] == "binance,coinbase"
