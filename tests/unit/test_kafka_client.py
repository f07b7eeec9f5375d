"""Kafka security settings as librdkafka and Spark's Kafka connector take them.

That the clients really connect with these settings is proven against a SASL broker in
tests/integration/test_kafka_security.py; these pin the exact keys and values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cryptopulse.config import KafkaSecurity, load_settings
from cryptopulse.kafka_client import (
    describe,
    jaas_config,
    jaas_quote,
    librdkafka_config,
    spark_kafka_options,
)
from cryptopulse.producer import TickProducer

PASSWORD = 's3cr"et\\pa ss'


def _security(**fields: Any) -> KafkaSecurity:
    return KafkaSecurity.model_validate(fields)


def test_plaintext_adds_nothing() -> None:
    for security in (None, KafkaSecurity(), load_settings().kafka.security):
        assert librdkafka_config(security) == {}
        assert spark_kafka_options(security) == {}
        assert describe(security) == "PLAINTEXT"


def test_sasl_plaintext() -> None:
    security = _security(protocol="SASL_PLAINTEXT", sasl_username="alice", sasl_password="pw")
    assert librdkafka_config(security) == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "alice",
        "sasl.password": "pw",
    }
    assert spark_kafka_options(security) == {
        "kafka.security.protocol": "SASL_PLAINTEXT",
        "kafka.sasl.mechanism": "PLAIN",
        "kafka.sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            'username="alice" password="pw";'
        ),
    }


def test_sasl_ssl_with_scram_and_a_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    security = _security(
        protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="bob",
        sasl_password="pw",
        ssl_ca_file=ca,
    )
    assert librdkafka_config(security) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "bob",
        "sasl.password": "pw",
        "ssl.ca.location": str(ca),
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert spark_kafka_options(security) == {
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            'username="bob" password="pw";'
        ),
        "kafka.ssl.truststore.type": "PEM",
        "kafka.ssl.truststore.location": str(ca),
        "kafka.ssl.endpoint.identification.algorithm": "https",
    }
    assert describe(security) == "SASL_SSL (SCRAM-SHA-512 as bob)"


def test_tls_without_a_ca_uses_the_defaults_and_can_skip_the_hostname_check() -> None:
    security = _security(protocol="SSL", ssl_check_hostname=False)
    assert librdkafka_config(security) == {
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "none",
    }
    # the Java client turns the check off with an empty algorithm; no truststore: the JVM's
    assert spark_kafka_options(security) == {
        "kafka.security.protocol": "SSL",
        "kafka.ssl.endpoint.identification.algorithm": "",
    }


def test_scram_sha_256_uses_the_scram_module() -> None:
    security = _security(
        protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_username="u", sasl_password="p"
    )
    assert jaas_config(security).startswith(
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
    )
    assert librdkafka_config(security)["sasl.mechanism"] == "SCRAM-SHA-256"


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("line\nbreak\r\ttab", '"line\\nbreak\\r\\ttab"'),
        ("a;b=c }{", '"a;b=c }{"'),  # JAAS syntax inside quotes is just text
    ],
)
def test_jaas_values_are_quoted_and_escaped(value: str, quoted: str) -> None:
    assert jaas_quote(value) == quoted


def test_the_credentials_are_escaped_in_the_jaas_config() -> None:
    security = _security(protocol="SASL_PLAINTEXT", sasl_username='al"ice', sasl_password=PASSWORD)
    assert jaas_config(security) == (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="al\\"ice" password="s3cr\\"et\\\\pa ss";'
    )
    # librdkafka takes the value as it is
    assert librdkafka_config(security)["sasl.password"] == PASSWORD


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "BOOTSTRAP_SERVERS": "kafka.example:9093",
        "SECURITY__PROTOCOL": "SASL_SSL",
        "SECURITY__SASL_MECHANISM": "SCRAM-SHA-256",
        "SECURITY__SASL_USERNAME": "svc",
        "SECURITY__SASL_PASSWORD": PASSWORD,
        "SECURITY__SSL_CA_FILE": "/etc/kafka/ca.pem",
    }.items():
        monkeypatch.setenv(f"CRYPTOPULSE_KAFKA__{name}", value)
    security = load_settings().kafka.security
    config = librdkafka_config(security)
    assert config["sasl.password"] == PASSWORD
    assert config["ssl.ca.location"] == "/etc/kafka/ca.pem"
    assert spark_kafka_options(security)["kafka.ssl.truststore.location"] == "/etc/kafka/ca.pem"


def test_the_password_stays_out_of_what_is_shown() -> None:
    security = _security(protocol="SASL_PLAINTEXT", sasl_username="alice", sasl_password=PASSWORD)
    assert PASSWORD not in repr(security)
    assert PASSWORD not in str(security)
    assert PASSWORD not in describe(security)


def test_the_producer_hands_the_credentials_to_the_client_only() -> None:
    settings = load_settings(
        kafka={
            "bootstrap_servers": "127.0.0.1:1",
            "security": {
                "protocol": "SASL_PLAINTEXT",
                "sasl_username": "alice",
                "sasl_password": PASSWORD,
            },
        }
    )
    made: list[dict[str, Any]] = []

    class Client:
        def __init__(self, config: dict[str, Any]) -> None:
            made.append(config)

        def list_topics(self, timeout: float) -> Any:
            return type("Metadata", (), {"topics": {"crypto_market_data": None}})()

    producer = TickProducer.from_settings(settings, producer_factory=Client)
    assert PASSWORD not in repr(producer.config)  # `config` is what is safe to show
    producer.start()
    assert made[0]["sasl.password"] == PASSWORD
    assert made[0]["security.protocol"] == "SASL_PLAINTEXT"
    assert made[0]["enable.idempotence"] is True  # the rest as always


def test_a_plaintext_producer_config_is_unchanged() -> None:
    made: list[dict[str, Any]] = []

    class Client:
        def __init__(self, config: dict[str, Any]) -> None:
            made.append(config)

        def list_topics(self, timeout: float) -> Any:
            return type("Metadata", (), {"topics": {"ticks": None}})()

    producer = TickProducer("127.0.0.1:1", "ticks", producer_factory=Client)  # type: ignore[arg-type]
    producer.start()
    assert {k: v for k, v in made[0].items() if k not in ("error_cb", "logger")} == producer.config
    assert not any(key.startswith(("sasl.", "ssl.", "security.")) for key in made[0])
