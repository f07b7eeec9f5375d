"""The pipeline's Kafka clients against a real secured broker (SASL_PLAINTEXT, PLAIN).

A second broker (the same jars as LocalKafka) listens with SASL only: every client must
authenticate, the broker's own inter-broker traffic too. The credentials come from one
settings object, the way `cryptopulse` reads them (CRYPTOPULSE_KAFKA__SECURITY__*), and
the user's password holds a quote, a backslash and a space, so the JAAS escaping is
proven by Java's own parser (the broker's and the Spark connector's). Then the producer,
the stream job's reader, windows publisher and dead-letter producer, the API's consumer
and a Spark batch read all work with the right password, and a wrong one fails clearly,
in bounded time, without the password showing up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import psutil
import pytest

from cryptopulse.api.kafka_feed import KafkaFeed, OnRecords, OnStatuses
from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.config import KafkaSecurity, Settings, load_settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.kafka_client import jaas_quote, spark_kafka_options
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import free_port, port_in_use
from cryptopulse.producer import TickProducer
from cryptopulse.schema import SourceStatus, WindowAggregate
from cryptopulse.sources.simulated import SimulatedMarket
from cryptopulse.stream.job import read_ticks
from cryptopulse.stream.publish import BatchPublisher, sink_id
from cryptopulse.stream.sinks import dead_letter_producer
from tests.factories import T0, status, window
from tests.waiting import wait_for

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


@dataclass(frozen=True)
class SecuredKafka:
    broker: LocalKafka
    bootstrap: str
    username: str
    password: str
    data_dir: Path
    protocol: str = "SASL_PLAINTEXT"
    ca: Path | None = None

    def settings(
        self, password: str | None = None, *, ca: bool = True, **kafka: object
    ) -> Settings:
        """Settings as `cryptopulse` reads them, for this cluster and these credentials."""
        return load_settings(
            data_dir=self.data_dir,
            kafka={
                "bootstrap_servers": self.bootstrap,
                "security": {
                    "protocol": self.protocol,
                    "sasl_mechanism": "PLAIN",
                    "sasl_username": self.username,
                    "sasl_password": self.password if password is None else password,
                    "ssl_ca_file": self.ca if ca else None,
                },
                **kafka,
            },
        )


@dataclass(frozen=True)
class Tls:
    ca: Path
    keystore: Path
    """The broker's private key (PKCS#8) and certificate, PEM."""


def private_ca(folder: Path) -> Tls:
    """A CA of this test alone, and a broker certificate it signed for 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=CryptoPulse test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out",
            "broker.csr", "-subj", "/CN=localhost")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "broker.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    keystore = folder / "broker-keystore.pem"
    keystore.write_text((folder / "broker.key").read_text() + (folder / "broker.crt").read_text())
    return Tls(folder / "ca.pem", keystore)


def sasl_listener(
    port: int,
    controller_port: int,
    users: dict[str, str],
    protocol: str = "SASL_PLAINTEXT",
    tls: Tls | None = None,
) -> dict[str, str]:
    """Broker settings for one SASL_PLAINTEXT or SASL_SSL listener with PLAIN users (the
    first one is the broker's own, for its inter-broker traffic); the controller stays on
    loopback, plaintext."""
    (admin, admin_password), *_ = users.items()
    jaas = (
        f"{PLAIN_MODULE} required username={jaas_quote(admin)} "
        f"password={jaas_quote(admin_password)} "
        + " ".join(f"user_{name}={jaas_quote(pw)}" for name, pw in users.items())
        + ";"
    )
    props = {
        "listeners": f"{protocol}://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"{protocol}://{HOST}:{port}",
        "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{protocol}:{protocol}",
        "inter.broker.listener.name": protocol,
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        f"listener.name.{protocol.lower()}.plain.sasl.jaas.config": jaas,
    }
    if tls is not None:
        props |= {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls.keystore),
            "ssl.truststore.type": "PEM",  # its own inter-broker connections
            "ssl.truststore.location": str(tls.ca),
        }
    return props


def group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
    return members


def stop_broker(broker: LocalKafka, ports: tuple[int, ...]) -> None:
    """Stop the broker (SIGTERM), then anything left in its process group (it runs in a
    session of its own), and wait until its ports are free."""
    pid = broker.pid()
    try:
        broker.stop(timeout=30)
    finally:
        if pid is not None and group_members(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            wait_for(lambda: not group_members(pid), 30, f"process group {pid} to exit")
        wait_for(lambda: not any(port_in_use(HOST, p) for p in ports), 30, "the broker's ports")


@contextlib.contextmanager
def secured_broker(root: Path, protocol: str = "SASL_PLAINTEXT") -> Iterator[SecuredKafka]:
    port, controller_port = free_port(), free_port()
    username = "pipeline"
    password = f'p"a\\ss {secrets.token_hex(6)}'  # quote, backslash, space
    users = {"admin": secrets.token_hex(12), username: password}
    tls = private_ca(root / "tls") if protocol == "SASL_SSL" else None
    client_security = KafkaSecurity.model_validate(
        {
            "protocol": protocol,
            "sasl_username": username,
            "sasl_password": password,
            "ssl_ca_file": tls.ca if tls else None,
        }
    )
    broker = LocalKafka(
        data_dir=root / "broker",
        lib_dir=load_settings(data_dir=root / "data").kafka_lib_dir,
        host=HOST,
        port=port,
        controller_port=controller_port,
        partitions=2,
        heap="384m",
        server_properties=tuple(sasl_listener(port, controller_port, users, protocol, tls).items()),
        client_security=client_security,
    )
    broker.start()  # its admin client authenticates: waits for the broker, creates topics
    try:
        yield SecuredKafka(
            broker, broker.bootstrap, username, password, root / "data", protocol,
            tls.ca if tls else None,
        )  # fmt: skip
    finally:
        stop_broker(broker, (port, controller_port))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    with secured_broker(tmp_path_factory.mktemp("kafka-sasl")) as broker:
        yield broker


def new_topics(secured: SecuredKafka, *prefixes: str) -> list[str]:
    names = [f"{prefix}-{uuid.uuid4().hex[:10]}" for prefix in prefixes]
    secured.broker.create_topics(names)
    return names


def consume_with_feed(
    settings: Settings,
    windows_topic: str,
    status_topic: str,
    done: Callable[[list[WindowAggregate], list[SourceStatus]], bool],
) -> tuple[list[WindowAggregate], list[SourceStatus]]:
    """Run the API's consumer on an event loop until `done` holds (at most 60 s)."""
    windows: list[WindowAggregate] = []
    statuses: list[SourceStatus] = []
    feed = feed_for(
        settings,
        windows_topic,
        status_topic,
        on_records=lambda records, _origin: windows.extend(records),
        on_statuses=lambda records, _origin: statuses.extend(records),
    )

    async def run() -> None:
        feed.start(asyncio.get_running_loop())
        try:
            deadline = time.monotonic() + 60
            while not done(windows, statuses):
                assert time.monotonic() < deadline, (
                    f"the feed got {len(windows)} windows, {len(statuses)} statuses; "
                    f"last error: {feed.last_error!r}"
                )
                await asyncio.sleep(0.1)
        finally:
            await asyncio.to_thread(feed.stop)

    asyncio.run(run())
    return windows, statuses


def feed_for(
    settings: Settings,
    windows_topic: str,
    status_topic: str,
    on_records: OnRecords = lambda _records, _origin: None,
    on_statuses: OnStatuses = lambda _records, _origin: None,
) -> KafkaFeed:
    """The API's consumer as `create_app` builds it, with the settings' security."""
    return KafkaFeed(
        bootstrap=settings.kafka.bootstrap,
        topic=windows_topic,
        status_topic=status_topic,
        on_records=on_records,
        on_statuses=on_statuses,
        metrics=ApiMetrics(),
        security=settings.kafka.security,
    )


def test_the_pipeline_s_clients_authenticate_from_the_settings(
    secured: SecuredKafka, spark: SparkSession
) -> None:
    ticks_topic, windows_topic, status_topic, dlq_topic = new_topics(
        secured, "ticks", "windows", "status", "dlq"
    )
    settings = secured.settings(
        topic_ticks=ticks_topic,
        topic_windows=windows_topic,
        topic_status=status_topic,
        topic_dlq=dlq_topic,
    )
    security = settings.kafka.security
    assert security.protocol == "SASL_PLAINTEXT"

    # the producer: ticks and its source status
    ticks = SimulatedMarket(5, seed=3, start=T0).ticks(40)
    producer = TickProducer.from_settings(settings)
    producer.start()
    assert producer.publish(ticks) == len(ticks)
    producer.publish_status(status("simulated", "simulated", at=T0))
    assert producer.stop() == 0
    assert producer.metrics.delivered == len(ticks)
    assert producer.metrics.failed == 0

    # the stream job's windows publisher (transactions: the broker's inter-broker SASL too)
    publisher = BatchPublisher(
        settings.kafka.bootstrap, windows_topic, sink_id(windows_topic), security=security
    )
    assert publisher.committed() == -1
    live = [window("bitcoin", i, final=False) for i in range(3)]
    publisher.publish(0, [(w.coin, w.model_dump_json().encode()) for w in live])
    publisher.close()
    again = BatchPublisher(
        settings.kafka.bootstrap, windows_topic, sink_id(windows_topic), security=security
    )
    assert again.committed() == 0  # read back through an authenticated consumer
    again.close()

    # the dead-letter producer
    dead = dead_letter_producer(settings.kafka.bootstrap, delivery_timeout=30.0, security=security)
    delivered: list[object] = []
    dead.produce(
        dlq_topic, key="x", value=b"not a tick", on_delivery=lambda e, _m: delivered.append(e)
    )
    assert dead.flush(30) == 0
    assert delivered == [None]

    # the API's consumer: the windows and the status the producer wrote
    windows, statuses = consume_with_feed(
        settings,
        windows_topic,
        status_topic,
        lambda w, s: len(w) >= len(live) and len(s) >= 1,
    )
    assert sorted(w.window_start for w in windows) == [w.window_start for w in live]
    assert statuses[0].source == "simulated"

    # Spark: a batch read with the options from the settings (Java's JAAS parser reads the
    # escaped password), and the stream job's own reader
    options = spark_kafka_options(security)
    batch = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap)
        .option("subscribe", ticks_topic)
        .option("startingOffsets", "earliest")
        .options(**options)
        .load()
    )
    assert secured.password not in batch._jdf.queryExecution().toString()  # Spark's plans
    values = [orjson.loads(row.value) for row in batch.select("value").collect()]
    assert sorted((v["coin"], v["timestamp"]) for v in values) == sorted(
        (t.coin, orjson.loads(t.model_dump_json())["timestamp"]) for t in ticks
    )

    settings.spark.starting_offsets = "earliest"
    name = f"sasl_ticks_{uuid.uuid4().hex[:8]}"
    query = (
        read_ticks(spark, settings, 1.0)
        .writeStream.format("memory")
        .queryName(name)
        .trigger(availableNow=True)
        .option("checkpointLocation", str(secured.data_dir / "checkpoints" / name))
        .start()
    )
    try:
        assert query.awaitTermination(120), "the stream did not read the topic within 120 s"
        assert query.exception() is None
        assert spark.table(name).count() == len(ticks)
    finally:
        query.stop()
        spark.catalog.dropTempView(name)


def test_a_wrong_password_is_refused_clearly_and_soon(
    secured: SecuredKafka, spark: SparkSession, caplog: pytest.LogCaptureFixture
) -> None:
    topic, status_topic = new_topics(secured, "refused", "refused-status")
    wrong = f"wrong-{secrets.token_hex(6)}"
    settings = secured.settings(password=wrong, topic_ticks=topic)
    caplog.set_level(logging.INFO)

    # the producer says the broker refused it (not "unreachable"), within seconds
    producer = TickProducer.from_settings(settings)
    started = time.monotonic()
    with pytest.raises(CryptoPulseError, match="refused this client") as refused:
        producer.start()
    assert time.monotonic() - started < 10
    message = str(refused.value)
    assert "Authentication failed" in message
    assert "kafka.security" in message

    # the API's consumer keeps running (the credentials may be fixed on the broker's side)
    # and says why it gets nothing, once
    feed = feed_for(settings, topic, status_topic)

    async def refused_feed() -> None:
        feed.start(asyncio.get_running_loop())
        try:
            deadline = time.monotonic() + 30
            while "Authentication failed" not in feed.last_error:
                assert time.monotonic() < deadline, f"last error: {feed.last_error!r}"
                await asyncio.sleep(0.1)
            assert feed.running
        finally:
            await asyncio.to_thread(feed.stop)

    asyncio.run(refused_feed())
    said = [r for r in caplog.records if "refused this client" in r.getMessage()]
    assert len(said) == 1

    # Spark's Kafka client fails the read (no endless retry)
    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)authentication failed") as spark_error:
        (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", settings.kafka.bootstrap)
            .option("subscribe", topic)
            .options(**spark_kafka_options(settings.kafka.security))
            .load()
            .count()
        )
    assert time.monotonic() - started < 120
    for text in (message, str(spark_error.value), caplog.text):
        assert wrong not in text
        assert secured.password not in text


def test_sasl_ssl_with_a_private_ca(
    tmp_path_factory: pytest.TempPathFactory, spark: SparkSession
) -> None:
    """TLS too: the clients trust the CA of `ssl_ca_file` (librdkafka's CA location, a PEM
    truststore for Spark's Java client) and check the broker's name; without it, the
    broker's certificate is refused."""
    with secured_broker(tmp_path_factory.mktemp("kafka-sasl-ssl"), "SASL_SSL") as secured:
        ticks_topic, windows_topic, status_topic = new_topics(secured, "ticks", "windows", "status")
        settings = secured.settings(
            topic_ticks=ticks_topic, topic_windows=windows_topic, topic_status=status_topic
        )
        assert settings.kafka.security.tls
        assert settings.kafka.security.ssl_check_hostname

        ticks = SimulatedMarket(3, seed=5, start=T0).ticks(12)
        producer = TickProducer.from_settings(settings)
        producer.start()
        producer.publish(ticks)
        producer.publish_status(status("simulated", "simulated", at=T0))
        assert producer.stop() == 0
        assert producer.metrics.delivered == len(ticks)

        _, statuses = consume_with_feed(
            settings, windows_topic, status_topic, lambda _w, s: len(s) >= 1
        )
        assert statuses[0].source == "simulated"

        count = (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", settings.kafka.bootstrap)
            .option("subscribe", ticks_topic)
            .option("startingOffsets", "earliest")
            .options(**spark_kafka_options(settings.kafka.security))
            .load()
            .count()
        )
        assert count == len(ticks)

        # the system's CAs do not know this one: refused, and said so
        untrusting = TickProducer.from_settings(secured.settings(ca=False, topic_ticks=ticks_topic))
        started = time.monotonic()
        with pytest.raises(CryptoPulseError, match="refused this client") as refused:
            untrusting.start()
        assert time.monotonic() - started < 10
        assert "certificate verify failed" in str(refused.value)
