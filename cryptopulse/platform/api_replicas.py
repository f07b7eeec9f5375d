"""API replicas of the local development cluster: `cryptopulse serve` processes, each on its
own port with its own data folder (`<data>/cluster/api-<i>`: its history file), each taking
the windows and source status from Kafka in a consumer group of its own, so every replica
serves the same data and a restarted one rebuilds it from the topic. They take no /ingest:
the stream job's windows reach them through Kafka."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from cryptopulse.config import Settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.platform.daemon import Daemon, stop_together
from cryptopulse.platform.ports import port_in_use

log = logging.getLogger("cryptopulse.api.replicas")


@dataclass(frozen=True)
class ApiReplicas:
    data_dir: Path
    bootstrap: str
    host: str = "127.0.0.1"
    ports: tuple[int, ...] = (8001, 8002)
    window_seconds: float = 30.0
    """The stream job's window length: replicas refuse windows of any other."""
    start_timeout: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings, bootstrap: str, **overrides: object) -> ApiReplicas:
        replicas = cls(
            data_dir=settings.data_dir / "cluster",
            bootstrap=bootstrap,
            host=settings.api.host,
            ports=settings.cluster.api_ports,
            window_seconds=settings.spark.window_seconds,
        )
        return replace(replicas, **overrides)  # type: ignore[arg-type]

    @property
    def ids(self) -> range:
        return range(1, len(self.ports) + 1)

    def url(self, i: int) -> str:
        return f"http://{self.host}:{self.ports[i - 1]}"

    @property
    def urls(self) -> list[str]:
        return [self.url(i) for i in self.ids]

    def replica(self, i: int) -> Daemon:
        if i not in self.ids:
            raise ValueError(f"no API replica {i}: there are {list(self.ids)}")
        port = str(self.ports[i - 1])
        return Daemon(
            name=f"api-{i}",
            command=(
                *(sys.executable, "-m", "cryptopulse.cli", "serve"),
                *("--host", self.host, "--port", port, "--consume-windows", "--no-ingest"),
            ),
            folder=self.data_dir / f"api-{i}",
            marker=f"cryptopulse.cli serve --host {self.host} --port {port} ",
            env={
                "CRYPTOPULSE_DATA_DIR": str(self.data_dir / f"api-{i}"),
                "CRYPTOPULSE_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
                "CRYPTOPULSE_SPARK__WINDOW_SECONDS": str(self.window_seconds),
            },
        )

    def healthy(self, i: int) -> bool:
        try:
            return httpx.get(f"{self.url(i)}/healthz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def running(self) -> list[int]:
        return [i for i in self.ids if self.replica(i).running()]

    def up(self) -> None:
        """Start the replicas that are not running (all at once) and wait for each."""
        started = []
        for i in self.ids:
            replica = self.replica(i)
            if replica.running():
                continue
            if port_in_use(self.host, self.ports[i - 1]):
                raise CryptoPulseError(
                    f"Port {self.ports[i - 1]} (API replica {i}) on {self.host} is already in "
                    "use: stop what uses it or choose others with CRYPTOPULSE_CLUSTER__API_PORTS."
                )
            started.append((i, replica, replica.launch()))
        for i, replica, proc in started:
            replica.wait_ready(proc, lambda i=i: self.healthy(i), self.start_timeout)  # type: ignore[misc]
        log.info("API replicas ready on %s", ", ".join(self.urls))

    def start(self, i: int) -> None:
        replica = self.replica(i)
        replica.wait_ready(replica.launch(), lambda: self.healthy(i), self.start_timeout)

    def kill(self, i: int) -> None:
        """SIGKILL replica `i` (a crash)."""
        self.replica(i).kill()

    def down(self, timeout: float = 15.0) -> None:
        stop_together([self.replica(i) for i in self.ids], timeout)
