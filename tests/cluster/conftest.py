"""One local cluster for the session (#15): 3 Kafka brokers, a Spark master with 2 workers and
2 API replicas, on free ports in a temp folder; always stopped at the end (then anything left
in its processes' groups), its ports free."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from cryptopulse.config import Settings, load_settings
from cryptopulse.platform.cluster import LocalCluster
from cryptopulse.platform.ports import free_port, port_in_use
from tests.waiting import wait_for

CLI = [sys.executable, "-m", "cryptopulse.cli"]
WINDOW_SECONDS = 10.0  # the job's windows, which the replicas must also expect


def cluster_ports(cluster: LocalCluster) -> list[int]:
    return [
        *cluster.kafka.ports,
        *cluster.kafka.controller_ports,
        cluster.spark.master_port,
        cluster.spark.master_ui_port,
        *cluster.spark.worker_ui_ports,
        *cluster.api.ports,
    ]


def stop_cluster(cluster: LocalCluster, settings: Settings) -> None:
    """`cryptopulse cluster down` from another process (it finds every process by its record),
    then SIGKILL whatever is left in their groups (each runs in a session of its own), and wait
    until every port is free."""
    pids = [c.pid for c in cluster.components() if c.pid is not None]
    try:
        down = run_cli(settings, "cluster", "down")
        assert down.returncode == 0 and "The cluster stopped." in down.stderr, down.stderr
        left = [c.name for c in cluster.components() if c.running]
        assert not left, f"still running after `cluster down`: {left}"
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        ports = cluster_ports(cluster)
        wait_for(lambda: not any(port_in_use("127.0.0.1", p) for p in ports), 30, "free ports")


@pytest.fixture(scope="session")
def cluster_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="session")
def cluster_settings(cluster_root: Path) -> Settings:
    settings = load_settings(data_dir=cluster_root)
    c = settings.cluster
    c.kafka_ports = (free_port(), free_port(), free_port())
    c.kafka_controller_ports = (free_port(), free_port(), free_port())
    c.spark_master_port, c.spark_master_ui_port = free_port(), free_port()
    c.spark_worker_ui_ports = (free_port(), free_port())
    c.api_ports = (free_port(), free_port())
    settings.spark.window_seconds = WINDOW_SECONDS
    return settings


@pytest.fixture(scope="session")
def local_cluster(cluster_settings: Settings) -> Iterator[LocalCluster]:
    cluster = LocalCluster.from_settings(cluster_settings)
    try:
        cluster.up()
        yield cluster
    finally:
        stop_cluster(cluster, cluster_settings)


def cluster_env(settings: Settings) -> dict[str, str]:
    """The environment of a `cryptopulse` command run against this cluster's folder and ports
    (none of the caller's CRYPTOPULSE_* settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
    c = settings.cluster
    env["CRYPTOPULSE_DATA_DIR"] = str(settings.data_dir)
    env["CRYPTOPULSE_SPARK__WINDOW_SECONDS"] = str(settings.spark.window_seconds)
    for name in (
        "kafka_ports",
        "kafka_controller_ports",
        "spark_master_port",
        "spark_master_ui_port",
        "spark_worker_ui_ports",
        "api_ports",
    ):
        env[f"CRYPTOPULSE_CLUSTER__{name.upper()}"] = orjson.dumps(getattr(c, name)).decode()
    return env


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=cluster_env(settings), capture_output=True, text=True, timeout=180
    )
