"""The local development cluster as one thing: 3 Kafka brokers, a Spark standalone master
with 2 workers and 2 API replicas, started in that order and stopped in the reverse one.

The pipeline runs on it unchanged: the producer and the stream job are pointed at it by the
settings `env()` prints (the brokers' bootstrap list and the Spark master's URL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from cryptopulse.config import Settings
from cryptopulse.platform.api_replicas import ApiReplicas
from cryptopulse.platform.kafka_cluster import LocalKafkaCluster
from cryptopulse.platform.spark_cluster import LocalSparkCluster

log = logging.getLogger("cryptopulse.cluster")


@dataclass(frozen=True)
class ClusterProcess:
    name: str
    pid: int | None
    address: str
    folder: str

    @property
    def running(self) -> bool:
        return self.pid is not None


@dataclass(frozen=True)
class LocalCluster:
    kafka: LocalKafkaCluster
    spark: LocalSparkCluster
    api: ApiReplicas

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalCluster:
        kafka = LocalKafkaCluster.from_settings(settings)
        return cls(
            kafka=kafka,
            spark=LocalSparkCluster.from_settings(settings),
            api=ApiReplicas.from_settings(settings, kafka.bootstrap),
        )

    def env(self) -> dict[str, str]:
        """The settings that run the pipeline (`cryptopulse up`, `produce`, `stream`) on it."""
        return {
            "CRYPTOPULSE_KAFKA__BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "CRYPTOPULSE_SPARK__MASTER": self.spark.master_url,
        }

    def components(self) -> list[ClusterProcess]:
        """Every process of the cluster, running or not."""
        rows = [
            ClusterProcess(f"kafka-{i}", pid, node.bootstrap, str(node.data_dir))
            for i, pid in self.kafka.pids().items()
            for node in [self.kafka.node(i)]
        ]
        master = self.spark.master()
        rows.append(
            ClusterProcess(master.name, master.pid(), self.spark.master_url, str(master.folder))
        )
        for i in self.spark.worker_ids:
            worker = self.spark.worker(i)
            ui = f"http://{self.spark.host}:{self.spark.worker_ui_ports[i - 1]}"
            rows.append(ClusterProcess(worker.name, worker.pid(), ui, str(worker.folder)))
        for i in self.api.ids:
            replica = self.api.replica(i)
            rows.append(
                ClusterProcess(replica.name, replica.pid(), self.api.url(i), str(replica.folder))
            )
        return rows

    def running(self) -> bool:
        return all(c.running for c in self.components())

    def start_steps(self) -> list[tuple[str, Callable[[], None]]]:
        """What `up` starts, in order, each said in words (the CLI shows its progress)."""

        def kafka_up() -> None:
            if not self.kafka.running():  # else it runs, or some nodes do: starts the others
                self.kafka.up()

        return [
            (f"3 Kafka brokers on {self.kafka.bootstrap}", kafka_up),
            (f"the Spark master and 2 workers at {self.spark.master_url}", self.spark.up),
            (f"2 API replicas on {', '.join(self.api.urls)}", self.api.up),
        ]

    def up(self) -> None:
        """Start whatever is not running (a second `up` completes a partly stopped cluster)."""
        for _, start in self.start_steps():
            start()
        log.info("cluster ready: %s", ", ".join(f"{k}={v}" for k, v in self.env().items()))

    def down(self) -> None:
        """Stop the API replicas, then Spark (workers first), then the brokers."""
        self.api.down()
        self.spark.down()
        self.kafka.down()
