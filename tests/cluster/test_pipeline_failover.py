"""The unchanged pipeline on the local cluster (#15): the real TickProducer into 3 brokers,
`cryptopulse stream` with `--master spark://…` on 2 Spark workers, 2 API replicas reading the
windows from Kafka. With ticks flowing, a Spark worker, a broker, the driver and an API
replica are each SIGKILLed; at the end every window is final exactly once, with every tick sent in it.

The tests run in file order on one module-wide pipeline; recovery times are printed (`-s`) and
recorded in docs/DEPLOY.md.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cryptopulse.config import Settings
from cryptopulse.platform.cluster import LocalCluster
from cryptopulse.producer import TickProducer
from cryptopulse.schema import Tick, tick_from_json
from tests import factories
from tests.cluster.conftest import cluster_env
from tests.kafka_helpers import TopicReader, read_topic
from tests.waiting import wait_for

COINS = ("alpha", "beta", "gamma", "delta")
SOURCE = "test"
STARTUP = 300  # the job's first start on the cluster: JVMs, executors, first batches


def window_of(at: datetime, seconds: float) -> datetime:
    epoch = at.timestamp()
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Feeder(threading.Thread):
    """Hands the real TickProducer 100 ticks a second, stamped with the wall clock, and
    counts them by (coin, window start)."""

    def __init__(self, producer: TickProducer, window_seconds: float) -> None:
        super().__init__(name="feeder", daemon=True)
        self.producer, self.window_seconds = producer, window_seconds
        self.sent: Counter[tuple[str, datetime]] = Counter()
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self._seq = 0

    def run(self) -> None:
        try:
            while not self._stop_event.wait(0.05):
                now = datetime.now(UTC)
                ticks = [self._tick(now) for _ in range(5)]
                with self.lock:
                    assert self.producer.publish(ticks) == len(ticks)
                    for t in ticks:
                        self.sent[(t.coin, window_of(t.timestamp, self.window_seconds))] += 1
        except BaseException as exc:  # surfaces in the test
            self.error = exc

    def _tick(self, now: datetime) -> Tick:
        seq, self._seq = self._seq, self._seq + 1
        at = (now - factories.T0).total_seconds()
        return tick_from_json(factories.tick(COINS[seq % len(COINS)], at, 100.0 + seq % 97))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


@dataclass
class Pipeline:
    cluster: LocalCluster
    settings: Settings
    env: dict[str, str]
    log: Path
    ready: Path
    feeder: Feeder
    producer: TickProducer
    windows: TopicReader
    driver: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def start_driver(self) -> float:
        """Start `cryptopulse stream` (own process group) and wait for its ready file; the
        seconds it took."""
        began = time.monotonic()
        self.ready.unlink(missing_ok=True)
        with open(self.log, "ab") as out:
            self.driver = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cryptopulse.cli",
                    "stream",
                    "--ready-file",
                    str(self.ready),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pid = self.driver.pid
        wait_for(
            lambda: self._ready_for(pid) or self._driver_died(),
            STARTUP,
            "the stream job's ready file",
            0.2,
        )
        return time.monotonic() - began

    def _ready_for(self, pid: int) -> bool:
        try:
            return bool(orjson.loads(self.ready.read_bytes())["pid"] == pid)
        except (OSError, orjson.JSONDecodeError, KeyError):
            return False

    def _driver_died(self) -> bool:
        assert self.driver is not None
        if self.driver.poll() is not None:
            raise AssertionError(f"the stream job exited: {self.log.read_text()[-3000:]}")
        return False

    def kill_driver(self) -> None:
        assert self.driver is not None
        os.killpg(self.driver.pid, signal.SIGKILL)
        self.driver.wait(30)

    def stop_driver(self) -> None:
        if self.driver is not None and self.driver.poll() is None:
            os.killpg(self.driver.pid, signal.SIGTERM)
            try:
                self.driver.wait(90)
            except subprocess.TimeoutExpired:
                self.kill_driver()

    def finals(self) -> dict[tuple[str, datetime], list[dict[str, Any]]]:
        out: dict[tuple[str, datetime], list[dict[str, Any]]] = {}
        for r in self.windows.values:
            if r["final"] and r["source"] == SOURCE:
                out.setdefault((r["coin"], parse_time(r["window_start"])), []).append(r)
        return out

    def final_after(self, moment: datetime, timeout: float) -> float:
        """Wait for every coin's final of a window that starts at or after `moment` (so all
        of its ticks came after it); seconds waited from now."""
        began = time.monotonic()

        def done(_: list[dict[str, Any]]) -> bool:
            closed = {coin for coin, start in self.finals() if start >= moment}
            return closed == set(COINS)

        self.windows.until(done, timeout)
        return time.monotonic() - began


@pytest.fixture(scope="module")
def pipeline(
    local_cluster: LocalCluster,
    cluster_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipeline]:
    root = tmp_path_factory.mktemp("driver")
    k = cluster_settings.kafka
    env = {
        **cluster_env(cluster_settings),
        **local_cluster.env(),
        "CRYPTOPULSE_DATA_DIR": str(root),  # the checkpoints: where a restarted driver looks
        "CRYPTOPULSE_SPARK__STARTING_OFFSETS": "earliest",
        "CRYPTOPULSE_SPARK__WATERMARK_SECONDS": "5",
        "CRYPTOPULSE_SPARK__POST_TO_API": "false",
        "CRYPTOPULSE_LOG_LEVEL": "INFO",
    }
    producer = TickProducer(local_cluster.kafka.bootstrap, k.topic_ticks, linger_ms=5)
    producer.start()
    feeder = Feeder(producer, cluster_settings.spark.window_seconds)
    windows = TopicReader(local_cluster.kafka.bootstrap, k.topic_windows, "pipeline-check")
    p = Pipeline(
        local_cluster,
        cluster_settings,
        env,
        root / "stream.log",
        root / "run" / "stream.ready",
        feeder,
        producer,
        windows,
    )
    p.ready.parent.mkdir(parents=True)
    feeder.start()
    try:
        p.timings["first start"] = p.start_driver()
        yield p
    finally:
        feeder.stop()
        p.stop_driver()
        producer.stop()
        windows.close()
        print("\n" + "; ".join(f"{k} {v:.1f} s" for k, v in p.timings.items()))


def replica_finals(url: str, coin: str) -> dict[datetime, tuple[int, float]]:
    response = httpx.get(f"{url}/api/windows/{coin}", params={"source": SOURCE}, timeout=10)
    if response.status_code == 404:
        # a replica that has just started has not yet read this coin's windows back from Kafka
        return {}
    response.raise_for_status()
    rows = response.json()
    return {
        parse_time(r["window_start"]): (r["tick_count"], r["avg_price"]) for r in rows if r["final"]
    }


def topic_final(p: Pipeline, coin: str, start: datetime) -> tuple[int, float]:
    [record] = p.finals()[(coin, start)]
    return record["tick_count"], record["avg_price"]


def test_windows_reach_both_replicas_alike(pipeline: Pipeline) -> None:
    p = pipeline
    p.timings["first finals"] = p.final_after(datetime.now(UTC), STARTUP)
    assert p.cluster.spark.applications() == ["cryptopulse-stream"]
    latest = max(start for coin, start in p.finals() if coin == COINS[0])
    expected = topic_final(p, COINS[0], latest)
    for url in p.cluster.api.urls:
        wait_for(
            lambda u=url: replica_finals(u, COINS[0]).get(latest) == expected,  # type: ignore[misc]
            60,
            f"{url} to serve the final window of {latest}",
        )
    a, b = (replica_finals(url, COINS[0]) for url in p.cluster.api.urls)
    common = sorted(set(a) & set(b))
    assert common and all(a[s] == b[s] for s in common)


def test_a_killed_worker_leaves_the_job_running_on_the_other(pipeline: Pipeline) -> None:
    p = pipeline
    spark = p.cluster.spark
    assert spark.alive_workers() == [1, 2]
    driver = p.driver
    killed = datetime.now(UTC)
    spark.kill_worker(1)  # with its executor
    wait_for(lambda: spark.alive_workers() == [2], 60, "the master to drop worker 1")
    p.timings["worker killed -> a whole window after it final"] = p.final_after(killed, 180)
    assert driver is p.driver and driver is not None and driver.poll() is None  # same job
    # the worker comes back and the master gives the job an executor there again
    spark.start_worker(1)
    wait_for(lambda: spark.alive_workers() == [1, 2], 60, "worker 1 back")


def test_a_killed_broker_leaves_the_job_reading_and_publishing(pipeline: Pipeline) -> None:
    p = pipeline
    kafka = p.cluster.kafka
    windows = p.settings.kafka.topic_windows
    # the leader of a windows partition: the job's transactional writes must move with it
    leader = kafka.partition_states([windows])[0].leader
    driver = p.driver
    killed = datetime.now(UTC)
    kafka.kill(leader)
    p.timings["broker killed -> a whole window after it final"] = p.final_after(killed, 180)
    assert driver is not None and driver.poll() is None  # the same job, never restarted
    kafka.start_node(leader)
    wait_for(
        lambda: all(len(s.isr) == 3 for s in kafka.partition_states()), 120, "ISR back to 3", 0.5
    )


def test_a_killed_driver_restarts_from_its_checkpoint(pipeline: Pipeline) -> None:
    p = pipeline
    p.kill_driver()
    killed = datetime.now(UTC)
    p.timings["driver restart (to ready)"] = p.start_driver()
    p.timings["driver killed -> a whole window after it final"] = p.final_after(killed, 240)
    wait_for(lambda: p.cluster.spark.applications() == ["cryptopulse-stream"], 60, "one app")
    assert p.log.read_text().count("query windows-live started") == 2


class FailoverClient:
    """A dashboard's view of the API: connected to the first URL that answers, and to the
    next one when its connection drops; every window it was sent, by (coin, start)."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.connected_to: list[str] = []
        self.seen: dict[str, dict[tuple[str, datetime], dict[str, Any]]] = {}
        self.updates_after_reconnect = 0
        self.reconnected_in: float | None = None

    async def run(self, stop: asyncio.Event) -> None:
        dropped_at: float | None = None
        index = 0
        while not stop.is_set():
            url = self.urls[index % len(self.urls)]
            try:
                async with connect(url, open_timeout=5) as ws:
                    self.connected_to.append(url)
                    if dropped_at is not None:
                        self.reconnected_in = time.monotonic() - dropped_at
                    await self._receive(ws, url, stop, reconnected=dropped_at is not None)
            except (OSError, ConnectionClosed, TimeoutError):
                pass
            if not stop.is_set():
                dropped_at = dropped_at or time.monotonic()
                index += 1
                await asyncio.sleep(0.2)

    async def _receive(
        self, ws: ClientConnection, url: str, stop: asyncio.Event, reconnected: bool
    ) -> None:
        seen = self.seen.setdefault(url, {})
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            message = orjson.loads(raw)
            if message["type"] not in ("snapshot", "market_update"):
                continue
            for r in message["data"]:
                if r["source"] == SOURCE:
                    seen[(r["coin"], parse_time(r["window_start"]))] = r
            if message["type"] == "market_update" and reconnected:
                self.updates_after_reconnect += 1


def test_a_killed_replica_sends_its_clients_to_the_other(pipeline: Pipeline) -> None:
    p = pipeline
    api = p.cluster.api
    ws_urls = [url.replace("http://", "ws://") + "/ws" for url in api.urls]
    client = FailoverClient(ws_urls)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        first = ws_urls[0]

        async def until(condition: Any, what: str, timeout: float = 60) -> None:
            deadline = time.monotonic() + timeout
            while not condition():
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                await asyncio.sleep(0.1)

        await until(lambda: any(r["final"] for r in client.seen.get(first, {}).values()), "data")
        await asyncio.to_thread(api.kill, 1)
        await until(lambda: client.updates_after_reconnect > 0, "an update from the other")
        stop.set()
        await task

    asyncio.run(main())
    assert client.connected_to[:2] == ws_urls
    before, after = client.seen[ws_urls[0]], client.seen[ws_urls[1]]
    # the same data: every final the first replica sent, the second sent alike
    finals_before = {k: r for k, r in before.items() if r["final"]}
    assert finals_before
    for key, record in finals_before.items():
        assert after.get(key) == record, key
    assert client.reconnected_in is not None
    p.timings["API replica killed -> client on the other"] = client.reconnected_in
    # the killed replica comes back with what Kafka holds
    api.start(1)
    latest = max(start for coin, start in p.finals() if coin == COINS[0])
    wait_for(
        lambda: (
            replica_finals(api.url(1), COINS[0]).get(latest) == topic_final(p, COINS[0], latest)
        ),
        60,
        "the restarted replica to serve the latest final",
    )


def test_every_window_final_once_with_every_tick(pipeline: Pipeline) -> None:
    p = pipeline
    cutoff = window_of(datetime.now(UTC), p.settings.spark.window_seconds)
    p.final_after(cutoff, 120)  # windows before the cutoff are all closed by now
    p.feeder.stop()
    assert p.feeder.error is None, p.feeder.error
    assert p.producer.stop() == 0
    metrics = p.producer.metrics
    assert metrics.failed == 0 and not metrics.delivery_errors, metrics.delivery_errors
    p.stop_driver()
    records = read_topic(p.cluster.kafka.bootstrap, p.settings.kafka.topic_windows)
    counts = Counter(
        (r["coin"], parse_time(r["window_start"]))
        for r in records
        if r["final"] and r["source"] == SOURCE
    )
    doubled = {k: n for k, n in counts.items() if n > 1}
    assert not doubled, doubled
    expected = {key: n for key, n in p.feeder.sent.items() if key[1] < cutoff}
    assert len(expected) >= 4 * len(COINS)
    got = {
        (r["coin"], parse_time(r["window_start"])): r["tick_count"]
        for r in records
        if r["final"] and r["source"] == SOURCE
    }
    assert {k: got.get(k) for k in expected} == expected  # no window missing, no tick lost
    span = timedelta(seconds=p.settings.spark.window_seconds)
    print(f"\n{sum(expected.values()):,} ticks in {len(expected)} windows of {span}")
