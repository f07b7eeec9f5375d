"""A local Apache Kafka node (KRaft: broker and controller in one JVM) run from Maven jars.

`LocalKafka` formats its storage on first start, starts the JVM detached (so it outlives
the `cryptopulse kafka start` command), waits until the broker answers metadata requests,
creates the configured topics, and stops it with SIGTERM (a clean, controlled shutdown).
Alone it is the single local broker; `kafka_cluster.LocalKafkaCluster` runs three of them
as one cluster (`node_id`, `voters`, `cluster_id`), using `launch`/`wait_ready` and
`terminate`/`await_exit` to start and stop them together.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from cryptopulse.config import KafkaSecurity, KafkaSettings, Settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.kafka_client import librdkafka_config
from cryptopulse.platform.ports import port_in_use
from cryptopulse.process_group import wait_exited

log = logging.getLogger("cryptopulse.kafka")
# The admin client's own log (connection refused while a broker starts or stops): through
# logging, so a caller can quiet it; its failures reach us as exceptions anyway.
admin_log = logging.getLogger("cryptopulse.kafka.admin")

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def _property_value(value: str) -> str:
    """`value` as written in a Java .properties file (read back unchanged by Properties.load):
    backslashes and line breaks escaped (the generated values have none)."""
    return (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )


def frozen_topic_configs(
    kafka: KafkaSettings,
) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """The topics' creation settings as nested tuples (a frozen dataclass field)."""
    return tuple((name, tuple(config.items())) for name, config in kafka.topic_configs().items())


class KafkaAlreadyRunning(CryptoPulseError):
    pass


def new_cluster_id() -> str:
    """A random KRaft cluster id (base64 of a UUID). Like Kafka's own, never one that starts
    with "-": the storage tool would read it as an option (1 start in 64 failed)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def admin_client(bootstrap: str, security: KafkaSecurity | None = None) -> AdminClient:
    return AdminClient(
        {"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000, **librdkafka_config(security)},
        logger=admin_log,
    )


def create_topics(
    admin: AdminClient,
    names: Iterable[str],
    *,
    partitions: int,
    replication: int,
    configs: dict[str, dict[str, str]],
) -> None:
    """Create topics that do not exist yet; those that do get today's `configs`."""
    new = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=replication,
            config=configs.get(name, {}),
        )
        for name in names
    ]
    if not new:
        return
    existing: list[str] = []
    for name, future in admin.create_topics(new, operation_timeout=30).items():
        try:
            future.result(timeout=60)
            log.info("created topic %s", name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise CryptoPulseError(f"Could not create topic {name}: {exc}") from exc
            existing.append(name)
    _apply_configs(admin, {n: configs[n] for n in existing if configs.get(n)})


def _apply_configs(admin: AdminClient, configs: dict[str, dict[str, str]]) -> None:
    """Topics made by an earlier version get today's settings (e.g. the ticks topic's
    max.message.bytes, the status topic's compaction)."""
    if not configs:
        return
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in config.items()
            ],
        )
        for name, config in configs.items()
    ]
    for resource, future in admin.incremental_alter_configs(resources).items():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            log.warning("could not update the settings of topic %s: %s", resource.name, exc)


Voter = tuple[int, str, int]
"""A KRaft controller: (node id, host, controller port)."""


@dataclass(frozen=True)
class LocalKafka:
    data_dir: Path
    lib_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    topic_names: tuple[str, ...] = ()
    topic_configs: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    partitions: int = 3
    replication_factor: int = 1
    heap: str = "512m"
    start_timeout: float = 90.0
    server_properties: tuple[tuple[str, str], ...] = ()
    """Broker settings added to (or replacing) the generated ones, e.g. a SASL or TLS
    listener; none by default (plaintext on loopback)."""
    client_security: KafkaSecurity | None = field(default=None, repr=False)
    """How this object's own admin client reaches the broker when its listener is secured
    (`server_properties`); None: plaintext."""
    node_id: int = 1
    voters: tuple[Voter, ...] = ()
    """The cluster's controllers; none: this node alone."""
    cluster_id: str = ""
    """The id its storage is formatted with (one for every node of a cluster); "": a new one."""
    min_insync_replicas: int = 1
    port_settings: tuple[str, str] = (
        "CRYPTOPULSE_KAFKA__PORT",
        "CRYPTOPULSE_KAFKA__CONTROLLER_PORT",
    )
    """The settings that choose its broker and controller ports (named when one is taken)."""

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> LocalKafka:
        k = settings.kafka
        broker = cls(
            data_dir=settings.kafka_dir,
            lib_dir=settings.kafka_lib_dir,
            host=k.host,
            port=k.port,
            controller_port=k.controller_port,
            topic_names=k.topics,
            topic_configs=frozen_topic_configs(k),
            partitions=k.partitions,
            replication_factor=k.replication_factor,
            heap=k.heap,
            start_timeout=k.start_timeout,
        )
        return replace(broker, **overrides)  # type: ignore[arg-type]

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "data"

    # -- state -------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The broker's pid when it is running, else None (a stale pid file is ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            proc = psutil.Process(pid)
            cmdline = proc.cmdline()
        except (FileNotFoundError, ValueError, psutil.Error):
            return None
        # its own config file too: a cluster's nodes run the same class
        if (
            proc.status() == psutil.STATUS_ZOMBIE
            or "kafka.Kafka" not in cmdline
            or str(self.config_file) not in cmdline
        ):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the broker and return once it serves requests and the topics exist."""
        proc = self.launch()
        try:
            self.wait_ready(proc)
            self.create_topics(self.topic_names)
        except BaseException:
            self.stop()
            raise
        log.info("broker ready on %s (pid %d)", self.bootstrap, proc.pid)

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the JVM (formatting the storage first if new) without waiting for it."""
        if (pid := self.pid()) is not None:
            raise KafkaAlreadyRunning(f"Kafka is already running (pid {pid}, {self.bootstrap}).")
        java = self._java()
        classpath = self._classpath()
        for name, port, setting in (
            ("broker", self.port, self.port_settings[0]),
            ("controller", self.controller_port, self.port_settings[1]),
        ):
            if port_in_use(self.host, port):
                raise CryptoPulseError(
                    f"Port {port} ({name}) on {self.host} is already in use: stop what uses it "
                    f"or choose another with {setting}."
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not (self.log_dirs / "meta.properties").exists():
            self._format(java, classpath)
        log.info("starting broker on %s (log: %s)", self.bootstrap, self.log_file)
        with open(self.data_dir / "broker.out", "ab") as out:
            proc = subprocess.Popen(
                [*self._jvm(java, classpath), "kafka.Kafka", str(self.config_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the starting terminal must not kill it
            )
        self.pid_file.write_text(str(proc.pid))
        return proc

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker cleanly (SIGTERM), killing it only if it does not finish in time."""
        proc = self.terminate()
        if proc is not None:
            self.await_exit(proc, timeout)

    def terminate(self) -> psutil.Process | None:
        """Ask the broker to stop (SIGTERM); its process, or None when it was not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        log.info("stopping broker (pid %d)", pid)
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        return proc

    def await_exit(self, proc: psutil.Process, timeout: float = 30.0) -> None:
        """Wait for a stopping broker to exit, killing it if it does not within `timeout`."""
        if not wait_exited(proc, timeout):
            log.warning("broker did not stop within %.0f s; killing it", timeout)
            with contextlib.suppress(psutil.Error):
                proc.kill()
            wait_exited(proc, 10)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the broker (a crash, for failover tests) and wait until it is gone."""
        pid = self.pid()
        if pid is not None:
            proc = psutil.Process(pid)
            proc.kill()
            wait_exited(proc, 10)
        self.pid_file.unlink(missing_ok=True)

    # -- topics ------------------------------------------------------------------------

    def admin(self) -> AdminClient:
        return admin_client(self.bootstrap, self.client_security)

    def topics(self) -> set[str]:
        metadata = self.admin().list_topics(timeout=10)
        return {name for name in metadata.topics if not name.startswith("__")}

    def create_topics(
        self, names: Iterable[str], partitions: int | None = None, replication: int | None = None
    ) -> None:
        """Create topics that do not exist yet."""
        admin = self.admin()  # must outlive the futures it makes
        create_topics(
            admin,
            names,
            partitions=partitions or self.partitions,
            replication=replication or self.replication_factor,
            configs={name: dict(config) for name, config in self.topic_configs},
        )

    # -- internals ---------------------------------------------------------------------

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        candidate = Path(java_home, "bin", "java") if java_home else None
        java = str(candidate) if candidate and candidate.exists() else shutil.which("java")
        if java is None:
            raise CryptoPulseError(
                "Java was not found: install a JDK 17 or newer "
                "(e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
            )
        return java

    def _classpath(self) -> str:
        if not any(self.lib_dir.glob("kafka_2.13-*.jar")):
            raise CryptoPulseError(
                f"The Kafka jars are missing from {self.lib_dir}: run `make setup` "
                "(or `cryptopulse setup`)."
            )
        return f"{self.lib_dir}/*"

    def _jvm(self, java: str, classpath: str) -> list[str]:
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2.format(log_file=self.log_file))
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            classpath,
        ]

    def _write_config(self) -> None:
        voters = self.voters or ((self.node_id, self.host, self.controller_port),)
        # the internal topics can have no more replicas than there are nodes
        internal = min(self.replication_factor, len(voters))
        internal_isr = str(min(self.min_insync_replicas, internal))
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": ",".join(f"{i}@{h}:{p}" for i, h, p in voters),
            "listeners": (
                f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": str(self.partitions),
            "default.replication.factor": str(self.replication_factor),
            "min.insync.replicas": str(self.min_insync_replicas),
            "offsets.topic.replication.factor": str(internal),
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": str(internal),
            "transaction.state.log.min.isr": internal_isr,
            "share.coordinator.state.topic.replication.factor": str(internal),
            "share.coordinator.state.topic.min.isr": internal_isr,
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.hours": "24",
        }
        props.update(self.server_properties)
        self.config_file.write_text(
            "".join(f"{k}={_property_value(v)}\n" for k, v in props.items())
        )

    def _format(self, java: str, classpath: str) -> None:
        cluster_id = self.cluster_id or new_cluster_id()
        log.info("formatting KRaft storage in %s (cluster %s)", self.log_dirs, cluster_id)
        result = subprocess.run(
            [
                *self._jvm(java, classpath),
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                cluster_id,
                "-c",
                str(self.config_file),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise CryptoPulseError(
                f"Formatting Kafka storage failed: {(result.stderr or result.stdout).strip()[-500:]}"
            )

    def wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        """Return once the broker answers a metadata request that lists it and a controller
        (readiness by its port and its answers, not its log); fail if it exits or is late."""
        deadline = time.monotonic() + self.start_timeout
        admin: AdminClient | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise CryptoPulseError(
                    f"Kafka exited during start (code {proc.returncode}); "
                    f"last log lines:\n{self._log_tail()}"
                )
            # Probe the socket first: librdkafka logs every refused connection otherwise.
            if admin is None:
                if port_in_use(self.host, self.port):
                    admin = self.admin()
                else:
                    time.sleep(0.25)
                    continue
            try:
                metadata = admin.list_topics(timeout=2)
                if self.node_id in metadata.brokers and metadata.controller_id >= 0:
                    return
            except KafkaException:
                pass
            time.sleep(0.25)
        raise CryptoPulseError(
            f"Kafka did not become ready within {self.start_timeout:.0f} s; "
            f"see {self.log_file}:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        texts = []
        for path in (self.data_dir / "broker.out", self.log_file):
            if path.exists():
                texts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(texts[-lines:])
