"""The local 3-broker KRaft cluster (#15), for real: a partition leader SIGKILLed while the
TickProducer sends loses and duplicates nothing, and the node rejoins and catches up.

The cluster is the session's (tests/cluster/conftest.py). Failover and catch-up times are
printed (`-s`) and recorded in docs/DEPLOY.md.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

from cryptopulse.config import Settings
from cryptopulse.platform.cluster import LocalCluster
from cryptopulse.platform.kafka_cluster import LocalKafkaCluster
from cryptopulse.producer import TickProducer
from cryptopulse.schema import Tick, tick_from_json, tick_to_json
from tests import factories
from tests.cluster.conftest import run_cli
from tests.kafka_helpers import read_to_end
from tests.waiting import wait_for

COINS = [f"coin-{i}" for i in range(12)]


@pytest.fixture(scope="module")
def cluster(local_cluster: LocalCluster) -> LocalKafkaCluster:
    return local_cluster.kafka


def _isr_full(cluster: LocalKafkaCluster, topics: list[str] | None = None) -> bool:
    states = cluster.partition_states(topics)
    return bool(states) and all(len(s.isr) == len(s.replicas) == 3 for s in states)


def test_cli_says_it_runs_and_gives_the_bootstrap_list(
    cluster_settings: Settings, local_cluster: LocalCluster
) -> None:
    cluster = local_cluster.kafka
    again = run_cli(cluster_settings, "cluster", "up")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert f"CRYPTOPULSE_KAFKA__BOOTSTRAP_SERVERS={cluster.bootstrap}" in again.stdout
    assert f"CRYPTOPULSE_SPARK__MASTER={local_cluster.spark.master_url}" in again.stdout
    status = run_cli(cluster_settings, "cluster", "status")
    assert status.returncode == 0, status.stderr
    for i, port in enumerate(cluster.ports, start=1):
        assert f"kafka-{i}: running" in status.stderr and f":{port}" in status.stderr
    for name in ("spark-master", "spark-worker-1", "spark-worker-2", "api-1", "api-2"):
        assert f"{name}: running" in status.stderr
    assert "Spark: 2 workers alive" in status.stderr
    topics = len(cluster.topic_names)
    expected = f"{topics * cluster.partitions} partitions of {topics} topics, 0 with fewer in-sync"
    assert expected in " ".join(status.stderr.split())


def test_topics_have_three_replicas_and_min_isr_two(cluster: LocalKafkaCluster) -> None:
    states = cluster.partition_states(list(cluster.topic_names))
    assert {s.topic for s in states} == set(cluster.topic_names)
    assert all(len(s.replicas) == 3 for s in states)
    assert len({s.leader for s in states}) == 3  # leadership spread over the nodes
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in cluster.topic_names]
    admin = cluster.admin()  # must outlive its futures
    for resource, future in admin.describe_configs(resources).items():
        assert future.result(timeout=30)["min.insync.replicas"].value == "2", resource.name


class Feeder(threading.Thread):
    """Hands the TickProducer a few ticks every 10 ms until stopped, keeping what it handed
    over (the exact JSON the producer sends, by key, in order)."""

    def __init__(self, producer: TickProducer) -> None:
        super().__init__(name="feeder", daemon=True)
        self.producer = producer
        self.lock = threading.Lock()  # held while publishing: `paused()` marks a clean boundary
        self.sent: dict[bytes, list[bytes]] = defaultdict(list)
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self._seq = 0

    def run(self) -> None:
        try:
            while not self._stop_event.wait(0.01):
                with self.lock:
                    ticks = [self._next() for _ in range(5)]
                    assert self.producer.publish(ticks) == len(ticks)
                    for tick in ticks:
                        self.sent[tick.coin.encode()].append(tick_to_json(tick))
        except BaseException as exc:  # surfaces in the test
            self.error = exc

    def _next(self) -> Tick:
        seq, self._seq = self._seq, self._seq + 1
        coin = COINS[seq % len(COINS)]
        return tick_from_json(factories.tick(coin, seq / 1000, 100.0 + seq % 997))

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self.lock:
            yield

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def test_leader_killed_nothing_lost_or_doubled_and_it_catches_up(
    cluster: LocalKafkaCluster,
) -> None:
    topic = f"failover-{uuid.uuid4().hex[:10]}"
    cluster.create_topics([topic])
    wait_for(lambda: _isr_full(cluster, [topic]), 30, "the new topic's replicas in sync")
    producer = TickProducer(cluster.bootstrap, topic, linger_ms=5, flush_timeout=60)
    producer.start()
    metrics = producer.metrics
    feeder = Feeder(producer)
    feeder.start()
    try:
        wait_for(lambda: metrics.delivered >= 1000, 60, "ticks delivered before the kill")
        leader = cluster.partition_states([topic])[0].leader
        with feeder.paused():  # every tick counted in `handed` was handed over before the kill
            killed_at = time.monotonic()
            cluster.kill(leader)
            handed = metrics.sent
        # delivered > handed: at least one tick handed over after the kill was acknowledged
        wait_for(lambda: metrics.delivered > handed, 90, "a tick delivered after the kill", 0.01)
        failover = time.monotonic() - killed_at
        assert metrics.sent > handed + 100, "the producer stopped taking ticks during failover"
        new_leader = wait_for(
            lambda: next(
                (
                    s.leader
                    for s in cluster.partition_states([topic])[:1]
                    if s.leader not in (leader, -1)
                ),
                None,
            ),
            10,
            "partition 0's new leader in the metadata",
        )

        restart_at = time.monotonic()
        cluster.start_node(leader)
        restarted = time.monotonic() - restart_at
        wait_for(lambda: _isr_full(cluster), 90, "every partition's ISR back to 3", 0.2)
        caught_up = time.monotonic() - restart_at
        ahead = metrics.sent
        wait_for(lambda: metrics.delivered > ahead, 30, "ticks delivered after the rejoin")
    finally:
        feeder.stop()
    assert feeder.error is None, feeder.error
    assert producer.stop() == 0
    assert metrics.failed == 0 and not metrics.delivery_errors, metrics.delivery_errors
    assert metrics.delivered == metrics.sent == sum(map(len, feeder.sent.values()))

    got: dict[bytes, list[bytes]] = defaultdict(list)
    for key, value in read_to_end(cluster.bootstrap, topic):  # librdkafka: read_committed
        assert key is not None
        got[key].append(value)
    # every delivered tick once, each coin's ticks in the order sent (one partition per key)
    assert got == feeder.sent
    print(
        f"\nnode {leader} (leader of {topic}[0]) killed: failover {failover:.2f} s "
        f"(kill -> a tick sent after it delivered; new leader {new_leader}); restart "
        f"{restarted:.2f} s, ISR back to 3 everywhere {caught_up:.2f} s after restart; "
        f"{metrics.sent:,} ticks, none lost or doubled"
    )


def test_with_two_brokers_down_no_write_is_acknowledged_on_one_copy(
    cluster: LocalKafkaCluster,
) -> None:
    """min.insync.replicas 2: with the two followers of a partition gone, its leader does not
    acknowledge an `acks=all` write (it stays unacknowledged until the producer gives up); with
    them back, writes are acknowledged again."""
    topic = f"two-down-{uuid.uuid4().hex[:10]}"
    cluster.create_topics([topic], partitions=1)
    wait_for(lambda: _isr_full(cluster, [topic]), 30, "the new topic's replicas in sync")
    reports: list[KafkaError | None] = []
    producer = Producer(
        {"bootstrap.servers": cluster.bootstrap, "acks": "all", "message.timeout.ms": 10_000}
    )

    def write(value: bytes) -> KafkaError | None:
        """Its delivery report: None when acknowledged."""
        expected = len(reports) + 1
        producer.produce(topic, value=value, on_delivery=lambda err, _msg: reports.append(err))
        wait_for(lambda: producer.poll(0.1) >= 0 and len(reports) == expected, 90, "a report")
        return reports[-1]

    assert write(b"before") is None
    leader = cluster.partition_states([topic])[0].leader
    followers = [i for i in cluster.node_ids if i != leader]
    for i in followers:
        cluster.kill(i)
    try:
        refused = write(b"while two are down")
        assert refused is not None, "acknowledged with one copy in sync"
    finally:
        for i in followers:
            cluster.start_node(i)
    wait_for(lambda: _isr_full(cluster), 120, "every partition's ISR back to 3", 0.5)
    assert write(b"after") is None
    print(f"\nwith nodes {followers} down, node {leader} answered: {refused}")
