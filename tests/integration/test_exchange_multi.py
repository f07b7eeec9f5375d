"""Several sources in one producer, end to end: the fake exchanges (and the fake CoinGecko) over
real sockets -> one producer -> the session broker.

Each source keeps its tag on every tick and its own status; one exchange that is unreachable or
drops leaves the others live; with CoinGecko, exchange ticks carry its market cap; a capture
recorded from two exchanges replays into Kafka as the same ticks.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cryptopulse.config import BinanceSettings, CoinbaseSettings, KrakenSettings
from cryptopulse.platform.ports import free_port
from cryptopulse.schema import status_from_json
from cryptopulse.sources.exchanges import StreamRules
from cryptopulse.sources.exchanges.binance import BinanceProtocol
from cryptopulse.sources.exchanges.coinbase import CoinbaseProtocol
from cryptopulse.sources.exchanges.kraken import KrakenProtocol
from tests.exchange_run import Runs, cli, cli_args, records
from tests.fakes.binance import FakeBinance
from tests.fakes.coinbase import FakeCoinbase
from tests.fakes.coingecko import FakeCoinGecko
from tests.kafka_helpers import read_to_end
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

COINS = ["bitcoin", "ethereum"]
FAST = StreamRules(connect_timeout=2.0, silence_timeout=5.0, backoff_initial=0.2, backoff_max=1.0)
QUOTES = {"binance": "USDT", "coinbase": "USD", "kraken": "USD"}


@pytest.fixture
def binance() -> Iterator[FakeBinance]:
    with FakeBinance(trade_interval=0.05, ticker_interval=0.5) as server:
        yield server


@pytest.fixture
def coinbase() -> Iterator[FakeCoinbase]:
    with FakeCoinbase(trade_interval=0.05, ticker_interval=0.5) as server:
        yield server


@pytest.fixture
def runs(kafka_bootstrap: str, new_topic: Callable[..., str]) -> Iterator[Runs]:
    started = Runs(kafka_bootstrap, new_topic)
    yield started
    started.stop_all()


def statuses(bootstrap: str, topic: str) -> dict[str, list[str]]:
    """Each source's states on the status topic, in order."""
    states: dict[str, list[str]] = {}
    for _, raw in read_to_end(bootstrap, topic):
        status = status_from_json(raw)
        states.setdefault(status.source, []).append(status.state)
    return states


def binance_and_coinbase(binance: FakeBinance, coinbase: FakeCoinbase) -> list[Any]:
    return [
        BinanceProtocol(COINS, BinanceSettings(ws_url=binance.url)),
        CoinbaseProtocol(COINS, CoinbaseSettings(ws_url=coinbase.url)),
    ]


def test_two_exchanges_in_one_producer_keep_their_tags_and_statuses(
    binance: FakeBinance, coinbase: FakeCoinbase, runs: Runs
) -> None:
    run = runs.start_several(binance_and_coinbase(binance, coinbase), FAST)
    wait_for(lambda: run.sent_by("binance") >= 30 and run.sent_by("coinbase") >= 30, 20, "both")
    run.stop()
    published = records(run)
    by_source = Counter(r["source"] for r in published)
    assert set(by_source) == {"binance", "coinbase"}
    assert by_source == run.producer.metrics.source_sent  # counted per source, as published
    for r in published:
        assert r["quote"] == QUOTES[r["source"]]
    for source in ("binance", "coinbase"):
        trades = [r for r in published if r["source"] == source and "size" in r]
        assert {t["coin"] for t in trades} == set(COINS)
        assert run.states_of(source) == ["connecting", "live"]
    assert {s.source for s in run.statuses} == {"binance", "coinbase"}


def test_an_unreachable_exchange_leaves_the_other_live(binance: FakeBinance, runs: Runs) -> None:
    nowhere = f"ws://127.0.0.1:{free_port()}"  # nothing listens there
    run = runs.start_several(
        [
            BinanceProtocol(COINS, BinanceSettings(ws_url=binance.url)),
            KrakenProtocol(COINS, KrakenSettings(ws_url=nowhere)),
        ],
        FAST,
    )
    wait_for(lambda: "unreachable" in run.states_of("kraken"), 20, "kraken unreachable")
    mark = run.sent_by("binance")
    wait_for(lambda: run.sent_by("binance") >= mark + 20, 10, "binance ticks meanwhile")
    run.stop()
    assert run.states_of("binance") == ["connecting", "live"]
    assert run.states_of("kraken") == ["connecting", "unreachable"]
    assert {r["source"] for r in records(run)} == {"binance"}
    failed = run.producer.metrics.source_failed_cycles
    assert failed and {source for source, _ in failed} == {"kraken"}


def test_a_dropped_exchange_recovers_while_the_other_stays_live(
    binance: FakeBinance, coinbase: FakeCoinbase, runs: Runs
) -> None:
    run = runs.start_several(binance_and_coinbase(binance, coinbase), FAST)
    wait_for(lambda: run.sent_by("coinbase") >= 10 and run.sent_by("binance") >= 10, 20, "ticks")
    coinbase.drop()
    wait_for(lambda: "degraded" in run.states_of("coinbase"), 10, "coinbase degraded")
    wait_for(lambda: run.states_of("coinbase")[-1] == "live", 10, "coinbase live again")
    mark = run.sent_by("coinbase")
    wait_for(lambda: run.sent_by("coinbase") >= mark + 10, 10, "coinbase ticks again")
    run.stop()
    assert run.states_of("coinbase") == ["connecting", "live", "degraded", "live"]
    assert run.states_of("binance") == ["connecting", "live"]
    assert len(coinbase.connections) == 2 and len(binance.connections) == 1


def test_cryptopulse_produce_several_exchanges_as_a_user_runs_it(
    binance: FakeBinance,
    coinbase: FakeCoinbase,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    """`cryptopulse produce --source binance,coinbase`, the URLs from the environment."""
    topic, status_topic = new_topic("ticks"), new_topic("status", partitions=1)
    done = cli(
        "produce", {"binance": binance.url, "coinbase": coinbase.url}, tmp_path,
        "--bootstrap", kafka_bootstrap, "--topic", topic, "--no-backfill",
        max_ticks=300, status_topic=status_topic,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "2 Binance symbols" in output and "2 Coinbase products" in output
    published = [orjson.loads(raw) for _, raw in read_to_end(kafka_bootstrap, topic)]
    assert len(published) == 300
    assert {r["source"] for r in published} == {"binance", "coinbase"}
    assert all(r["quote"] == QUOTES[r["source"]] for r in published)
    states = statuses(kafka_bootstrap, status_topic)
    assert set(states) == {"binance", "coinbase"}
    for source in ("binance", "coinbase"):
        assert states[source][0] == "connecting" and "live" in states[source]
    assert "by source: binance " in output and "; coinbase " in output  # the summary line


def test_exchange_ticks_carry_coingecko_s_market_cap(
    binance: FakeBinance, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """`produce --source binance,coingecko`: after CoinGecko's quote of a coin, each Binance tick
    of that coin has its market cap."""
    topic, status_topic = new_topic("ticks"), new_topic("status", partitions=1)
    with FakeCoinGecko() as coingecko:
        done = cli(
            "produce", {"binance": binance.url, "coingecko": coingecko.url}, tmp_path,
            "--bootstrap", kafka_bootstrap, "--topic", topic, "--no-backfill",
            max_ticks=200, status_topic=status_topic,
        )  # fmt: skip
        caps = {coin: coingecko.expected_tick(coin)["market_cap"] for coin in COINS}
    assert done.returncode == 0, done.stdout + done.stderr
    published = [orjson.loads(raw) for _, raw in read_to_end(kafka_bootstrap, topic)]
    assert {r["source"] for r in published} == {"binance", "coingecko"}
    filled = 0
    for coin in COINS:  # one coin's ticks are in one partition, in the order published
        ours = [r for r in published if r["coin"] == coin]
        first = next(i for i, r in enumerate(ours) if r["source"] == "coingecko")
        assert ours[first]["market_cap"] == caps[coin]
        assert all(r["market_cap"] is None for r in ours[:first])  # none known yet
        after = [r for r in ours[first:] if r["source"] == "binance"]
        assert all(r["market_cap"] == caps[coin] for r in after)
        filled += len(after)
    assert filled >= 50
    states = statuses(kafka_bootstrap, status_topic)
    assert "live" in states["binance"] and "live" in states["coingecko"]


def test_a_capture_of_two_exchanges_replays_into_kafka_as_the_same_ticks(
    binance: FakeBinance,
    coinbase: FakeCoinbase,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    capture = tmp_path / "capture.jsonl"
    recorded = cli(
        "record", {"binance": binance.url, "coinbase": coinbase.url}, tmp_path,
        "--output", str(capture), max_ticks=200,
    )  # fmt: skip
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    lines = [orjson.loads(line) for line in capture.read_bytes().splitlines()]
    assert len(lines) == 200
    assert {r["source"] for r in lines} == {"binance", "coinbase"}
    for source in ("binance", "coinbase"):  # trades, with their size, from both
        assert any("size" in r for r in lines if r["source"] == source)
    topic, status_topic = new_topic("ticks"), new_topic("status", partitions=1)
    replayed = cli(
        "produce", {}, tmp_path,
        "--replay-file", str(capture), "--speed", "0", "--keep-timestamps",
        "--bootstrap", kafka_bootstrap, "--topic", topic,
        source="replay", max_ticks=1000, status_topic=status_topic,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    published = [orjson.loads(raw) for _, raw in read_to_end(kafka_bootstrap, topic)]
    assert Counter(map(_key, published)) == Counter(map(_key, lines))  # the same ticks
    for coin in COINS:  # in the recorded order
        assert [r for r in published if r["coin"] == coin] == [
            r for r in lines if r["coin"] == coin
        ]
    assert sum("size" in r for r in published) >= 100  # trades keep their size
    assert set(statuses(kafka_bootstrap, status_topic)) == {"replay"}


def _key(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def test_ctrl_c_stops_every_source_and_flushes(
    binance: FakeBinance,
    coinbase: FakeCoinbase,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    """`produce --source binance,coinbase` until Ctrl-C: both stop, all sent is delivered."""
    topic, status_topic = new_topic("ticks"), new_topic("status", partitions=1)
    args, env = cli_args(
        "produce", {"binance": binance.url, "coinbase": coinbase.url}, tmp_path,
        "--bootstrap", kafka_bootstrap, "--topic", topic, "--no-backfill",
        max_ticks=10**9, status_topic=status_topic,
    )  # fmt: skip
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:

        def both_live() -> bool:
            states = statuses(kafka_bootstrap, status_topic)
            return set(states) == {"binance", "coinbase"} and all(
                "live" in s for s in states.values()
            )

        wait_for(both_live, 30, "both sources live", interval=0.5)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        output, _ = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    print(f"stopped {stopped_in:.1f} s after Ctrl-C")
    assert stopped_in < 15, output  # Ctrl-C ended it, not --duration
    match = re.search(r"Done in [\d.]+ s: sent ([\d,]+), delivered ([\d,]+)", output)
    assert match, output
    sent, delivered = (int(g.replace(",", "")) for g in match.groups())
    assert sent == delivered > 0
    published = [orjson.loads(raw) for _, raw in read_to_end(kafka_bootstrap, topic)]
    assert len(published) == sent
    assert {r["source"] for r in published} == {"binance", "coinbase"}
    wait_for(
        lambda: (
            all(c.closed is not None for c in binance.connections)
            and all(c.closed is not None for c in coinbase.connections)
        ),
        5,
        "each source hung up",
    )
