"""A local 3-node Apache Kafka cluster (KRaft, each node broker and controller) for
development and failover tests: `cryptopulse cluster up|down|status`.

Each node is a `LocalKafka` with its own ports and folder (`<data>/cluster/kafka-<i>`), the
three controllers as voters and one cluster id (kept in `<data>/cluster/cluster.id`). Topics
get replication factor 3 and `min.insync.replicas` 2: a write with `acks=all` survives the loss
of any one node, and is never acknowledged on one copy when two are gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from cryptopulse.config import Settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.platform.daemon import stop_together
from cryptopulse.platform.kafka import (
    KafkaAlreadyRunning,
    LocalKafka,
    admin_client,
    create_topics,
    frozen_topic_configs,
    new_cluster_id,
)

log = logging.getLogger("cryptopulse.kafka.cluster")

NODES = 3
MIN_INSYNC_REPLICAS = 2


@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class LocalKafkaCluster:
    data_dir: Path
    lib_dir: Path
    host: str = "127.0.0.1"
    ports: tuple[int, ...] = (19092, 19094, 19096)
    controller_ports: tuple[int, ...] = (19093, 19095, 19097)
    topic_names: tuple[str, ...] = ()
    topic_configs: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    partitions: int = 3
    heap: str = "384m"
    start_timeout: float = 120.0
    server_properties: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> LocalKafkaCluster:
        k, c = settings.kafka, settings.cluster
        cluster = cls(
            data_dir=settings.data_dir / "cluster",
            lib_dir=settings.kafka_lib_dir,
            host=k.host,
            ports=c.kafka_ports,
            controller_ports=c.kafka_controller_ports,
            topic_names=k.topics,
            topic_configs=frozen_topic_configs(k),
            partitions=k.partitions,
            heap=c.kafka_heap,
            start_timeout=k.start_timeout,
        )
        return replace(cluster, **overrides)  # type: ignore[arg-type]

    @property
    def node_ids(self) -> range:
        return range(1, NODES + 1)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{port}" for port in self.ports)

    @property
    def cluster_id_file(self) -> Path:
        return self.data_dir / "cluster.id"

    def node(self, i: int) -> LocalKafka:
        """Node `i` (1..3) as a LocalKafka: its own ports and folder, the cluster's voters."""
        if i not in self.node_ids:
            raise ValueError(f"no node {i}: the cluster has nodes {list(self.node_ids)}")
        cluster_id = (
            self.cluster_id_file.read_text().strip() if self.cluster_id_file.exists() else ""
        )
        return LocalKafka(
            data_dir=self.data_dir / f"kafka-{i}",
            lib_dir=self.lib_dir,
            host=self.host,
            port=self.ports[i - 1],
            controller_port=self.controller_ports[i - 1],
            partitions=self.partitions,
            replication_factor=NODES,
            min_insync_replicas=MIN_INSYNC_REPLICAS,
            heap=self.heap,
            start_timeout=self.start_timeout,
            server_properties=self.server_properties,
            node_id=i,
            voters=tuple((n, self.host, self.controller_ports[n - 1]) for n in self.node_ids),
            cluster_id=cluster_id,
            port_settings=(
                "CRYPTOPULSE_CLUSTER__KAFKA_PORTS",
                "CRYPTOPULSE_CLUSTER__KAFKA_CONTROLLER_PORTS",
            ),
        )

    # -- state -------------------------------------------------------------------------

    def pids(self) -> dict[int, int | None]:
        return {i: self.node(i).pid() for i in self.node_ids}

    def running_nodes(self) -> list[int]:
        return [i for i, pid in self.pids().items() if pid is not None]

    def running(self) -> bool:
        """Every node runs."""
        return len(self.running_nodes()) == NODES

    # -- lifecycle ---------------------------------------------------------------------

    def up(self) -> None:
        """Start the nodes that are not running (all at once: a controller alone cannot elect
        a leader), wait until each serves requests, then create the topics."""
        missing = [i for i in self.node_ids if i not in self.running_nodes()]
        if not missing:
            raise KafkaAlreadyRunning(f"The Kafka cluster is already running ({self.bootstrap}).")
        self._ensure_cluster_id()
        started = []
        try:
            for node in map(self.node, missing):
                started.append((node, node.launch()))
            for node, proc in started:
                node.wait_ready(proc)
            self.create_topics(self.topic_names)
        except BaseException:
            self._stop([node for node, _ in started])  # a healthy node it found keeps running
            raise
        log.info("Kafka cluster ready on %s", self.bootstrap)

    def down(self, timeout: float = 60.0) -> None:
        """Stop every node cleanly."""
        self._stop([self.node(i) for i in self.node_ids], timeout)

    @staticmethod
    def _stop(nodes: list[LocalKafka], timeout: float = 60.0) -> None:
        """All asked at once, so none waits for a controller quorum that is already gone."""
        stop_together(nodes, timeout)

    def kill(self, i: int) -> None:
        """SIGKILL node `i` (a crash)."""
        self.node(i).kill()

    def start_node(self, i: int) -> None:
        """Start node `i` again and wait until it serves requests."""
        node = self.node(i)
        proc = node.launch()
        try:
            node.wait_ready(proc)
        except BaseException:
            node.stop()
            raise

    def _ensure_cluster_id(self) -> None:
        if not self.cluster_id_file.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.cluster_id_file.write_text(new_cluster_id())

    # -- topics ------------------------------------------------------------------------

    def admin(self) -> AdminClient:
        return admin_client(self.bootstrap)

    def create_topics(
        self, names: tuple[str, ...] | list[str], partitions: int | None = None
    ) -> None:
        """Create topics (replication factor 3, min.insync.replicas 2) that do not exist yet."""
        configs = {name: dict(config) for name, config in self.topic_configs}
        isr = {"min.insync.replicas": str(MIN_INSYNC_REPLICAS)}
        admin = self.admin()  # must outlive the futures it makes
        create_topics(
            admin,
            names,
            partitions=partitions or self.partitions,
            replication=NODES,
            configs={name: {**configs.get(name, {}), **isr} for name in names},
        )

    def partition_states(self, topics: list[str] | None = None) -> list[PartitionState]:
        """Each partition's leader, replicas and in-sync replicas (internal topics too)."""
        try:
            metadata = self.admin().list_topics(timeout=10)
        except KafkaException as exc:
            raise CryptoPulseError(f"no node of the cluster answers on {self.bootstrap}") from exc
        return [
            PartitionState(name, p.id, p.leader, tuple(p.replicas), tuple(p.isrs))
            for name, topic in sorted(metadata.topics.items())
            if topics is None or name in topics
            for p in sorted(topic.partitions.values(), key=lambda p: p.id)
        ]
