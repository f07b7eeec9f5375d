"""A local Spark standalone cluster (a master and two workers) for development and failover
tests: `cryptopulse cluster up|down|status`.

Started through PySpark's own `bin/spark-class` (the jars pip installed), each process in a
session of its own with its folder under `<data>/cluster/spark`. Readiness comes from the
master's JSON status page (`/json/`): the master is ready when it says ALIVE, a worker when the
master lists it ALIVE. A job reaches it with `--master spark://host:port`
(`CRYPTOPULSE_SPARK__MASTER`); the job's executors run in the workers' process groups, so a
killed worker takes its executors with it, as a lost machine would.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from cryptopulse.config import Settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.platform.daemon import Daemon, stop_together
from cryptopulse.platform.ports import port_in_use

log = logging.getLogger("cryptopulse.spark.cluster")

WORKERS = 2


def spark_home() -> Path:
    """PySpark's install folder: its `bin/spark-class` and `jars/` are a Spark distribution."""
    import pyspark

    return Path(pyspark.__file__).parent


def alive_workers_in(status: Mapping[str, Any], ui_ports: Sequence[int]) -> list[int]:
    """Which workers (1-based, in `ui_ports` order) a master's `/json/` lists ALIVE, told
    apart by their web UI port (their RPC ports are random). A dead worker stays listed for a
    while as DEAD; anything malformed counts as not alive."""
    alive = set()
    for worker in status.get("workers") or []:
        if not isinstance(worker, dict) or worker.get("state") != "ALIVE":
            continue
        address = str(worker.get("webuiaddress", ""))
        alive |= {i for i, port in enumerate(ui_ports, start=1) if address.endswith(f":{port}")}
    return sorted(alive)


@dataclass(frozen=True)
class LocalSparkCluster:
    data_dir: Path
    host: str = "127.0.0.1"
    master_port: int = 17077
    master_ui_port: int = 18080
    worker_ui_ports: tuple[int, ...] = (18081, 18082)
    worker_cores: int = 1
    worker_memory: str = "1g"
    start_timeout: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> LocalSparkCluster:
        c = settings.cluster
        cluster = cls(
            data_dir=settings.data_dir / "cluster" / "spark",
            host=settings.kafka.host,
            master_port=c.spark_master_port,
            master_ui_port=c.spark_master_ui_port,
            worker_ui_ports=c.spark_worker_ui_ports,
            worker_cores=c.spark_worker_cores,
            worker_memory=c.spark_worker_memory,
        )
        return replace(cluster, **overrides)  # type: ignore[arg-type]

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.master_port}"

    @property
    def status_url(self) -> str:
        return f"http://{self.host}:{self.master_ui_port}/json/"

    @property
    def worker_ids(self) -> range:
        return range(1, WORKERS + 1)

    # -- processes ---------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        home = spark_home()
        env = {"SPARK_HOME": str(home), "SPARK_LOCAL_IP": self.host}
        if "JAVA_HOME" not in os.environ and (java := shutil.which("java")):
            env["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
        return env

    def master(self) -> Daemon:
        folder = self.data_dir / "master"
        return Daemon(
            name="spark-master",
            command=(
                str(spark_home() / "bin" / "spark-class"),
                "org.apache.spark.deploy.master.Master",
                *("--host", self.host, "--port", str(self.master_port)),
                *("--webui-port", str(self.master_ui_port)),
                # marker: the folder is ours alone (its properties file, see below)
                *("--properties-file", str(self._properties(folder))),
            ),
            folder=folder,
            marker=str(folder),
            env=self._env(),
        )

    def worker(self, i: int) -> Daemon:
        """Worker `i` (1..2): its own web UI port and work folder (executors' files)."""
        if i not in self.worker_ids:
            raise ValueError(f"no worker {i}: the cluster has workers {list(self.worker_ids)}")
        folder = self.data_dir / f"worker-{i}"
        return Daemon(
            name=f"spark-worker-{i}",
            command=(
                str(spark_home() / "bin" / "spark-class"),
                "org.apache.spark.deploy.worker.Worker",
                *("--host", self.host, "--webui-port", str(self.worker_ui_ports[i - 1])),
                *("--cores", str(self.worker_cores), "--memory", self.worker_memory),
                *("--work-dir", str(folder / "work")),
                *("--properties-file", str(self._properties(folder))),
                self.master_url,
            ),
            folder=folder,
            marker=str(folder),
            env=self._env(),
        )

    @staticmethod
    def _properties(folder: Path) -> Path:
        """An empty properties file in the process's folder: Spark's defaults, and a command
        line that names the folder (how a later command recognises the process)."""
        path = folder / "spark.properties"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text("# spark-class reads its settings from here (none needed)\n")
        return path

    def daemons(self) -> list[Daemon]:
        return [self.master(), *(self.worker(i) for i in self.worker_ids)]

    # -- state -------------------------------------------------------------------------

    def master_status(self) -> dict[str, Any] | None:
        """The master's own account (`/json/`), None while it does not answer."""
        try:
            response = httpx.get(self.status_url, timeout=2.0)
            value = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def alive_workers(self) -> list[int]:
        """The workers (1..2) the master counts ALIVE."""
        return alive_workers_in(self.master_status() or {}, self.worker_ui_ports)

    def applications(self) -> list[str]:
        """Names of the running applications (the streaming job when it runs here)."""
        status = self.master_status() or {}
        return [str(app.get("name")) for app in status.get("activeapps") or []]

    def running(self) -> bool:
        return all(d.running() for d in self.daemons())

    # -- lifecycle ---------------------------------------------------------------------

    def up(self) -> None:
        """Start what is not running: the master, then each worker, and wait until the master
        counts every worker ALIVE."""
        master = self.master()
        if not master.running():
            self._refuse_busy((self.master_port, "master"), (self.master_ui_port, "master UI"))
            proc = master.launch()
            master.wait_ready(
                proc,
                lambda: (self.master_status() or {}).get("status") == "ALIVE",
                self.start_timeout,
            )
        for i in self.worker_ids:
            if not self.worker(i).running():
                self.start_worker(i)
        log.info("Spark cluster ready at %s (%d workers)", self.master_url, WORKERS)

    def start_worker(self, i: int) -> None:
        """Start worker `i` and wait until the master counts it ALIVE."""
        worker = self.worker(i)
        self._refuse_busy((self.worker_ui_ports[i - 1], f"worker {i} UI"))
        proc = worker.launch()
        try:
            worker.wait_ready(proc, lambda: i in self.alive_workers(), self.start_timeout)
        except BaseException:
            worker.stop(10)
            raise

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker `i` with its executors (a lost machine)."""
        self.worker(i).kill()

    def down(self, timeout: float = 30.0) -> None:
        """Stop the workers (their executors with them), then the master."""
        stop_together([self.worker(i) for i in self.worker_ids], timeout)
        self.master().stop(timeout)

    def _refuse_busy(self, *ports: tuple[int, str]) -> None:
        for port, what in ports:
            if port_in_use(self.host, port):
                raise CryptoPulseError(
                    f"Port {port} ({what}) on {self.host} is already in use: stop what uses it "
                    "or choose other ports with CRYPTOPULSE_CLUSTER__SPARK_* settings."
                )
