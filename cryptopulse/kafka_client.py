"""Kafka security settings as each kind of client takes them: one source of truth.

`settings.kafka.security` (a `KafkaSecurity`) says how to reach a secured cluster; the
producer, the stream job's publishers and the API's consumer are librdkafka clients
(`librdkafka_config`), the Spark Kafka connector is the Java client (`spark_kafka_options`).
PLAINTEXT, the default, gives an empty dict: the local broker's clients are configured
exactly as without these settings.

The dicts hold the password in clear (the clients need it): pass them to a client, never
log them. `describe()` is the loggable summary.
"""

from __future__ import annotations

from confluent_kafka import KafkaError

from cryptopulse.config import KafkaSecurity

REFUSALS = (KafkaError._AUTHENTICATION, KafkaError._SSL)
"""librdkafka error codes of a broker that answers but refuses this client: wrong
credentials or mechanism, a certificate that does not verify. Retrying will not help."""

_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}

# What Java's JAAS parser (java.io.StreamTokenizer, quoted strings) reads back as the
# character itself; a raw line break would end the quoted string.
_JAAS_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def jaas_quote(value: str) -> str:
    """`value` as a double-quoted JAAS option value (backslashes, quotes, line breaks escaped)."""
    return '"' + "".join(_JAAS_ESCAPES.get(c, c) for c in value) + '"'


def _credentials(security: KafkaSecurity) -> tuple[str, str]:
    if not security.sasl_username or security.sasl_password is None:
        # KafkaSecurity's validator refuses this; a model built without validation could not.
        raise ValueError(f"kafka.security.protocol is {security.protocol}: SASL needs credentials")
    return security.sasl_username, security.sasl_password.get_secret_value()


def jaas_config(security: KafkaSecurity) -> str:
    """The Java client's `sasl.jaas.config` for SASL/PLAIN or SCRAM with these credentials."""
    username, password = _credentials(security)
    module = _JAAS_MODULES[security.sasl_mechanism]
    return f"{module} required username={jaas_quote(username)} password={jaas_quote(password)};"


def librdkafka_config(security: KafkaSecurity | None) -> dict[str, str]:
    """Settings to add to a confluent-kafka (librdkafka) client's config; {} for PLAINTEXT."""
    if security is None or security.protocol == "PLAINTEXT":
        return {}
    config: dict[str, str] = {"security.protocol": security.protocol}
    if security.sasl:
        username, password = _credentials(security)
        config["sasl.mechanism"] = security.sasl_mechanism
        config["sasl.username"] = username
        config["sasl.password"] = password
    if security.tls:
        if security.ssl_ca_file is not None:
            config["ssl.ca.location"] = str(security.ssl_ca_file)
        config["ssl.endpoint.identification.algorithm"] = (
            "https" if security.ssl_check_hostname else "none"
        )
    return config


def spark_kafka_options(security: KafkaSecurity | None) -> dict[str, str]:
    """Options for Spark's Kafka source/sink (`kafka.`-prefixed Java client settings); {} for
    PLAINTEXT. The CA file is read by the executors, so on a cluster it must be at the same
    path on every node (or shipped with `--files`)."""
    if security is None or security.protocol == "PLAINTEXT":
        return {}
    options: dict[str, str] = {"kafka.security.protocol": security.protocol}
    if security.sasl:
        options["kafka.sasl.mechanism"] = security.sasl_mechanism
        options["kafka.sasl.jaas.config"] = jaas_config(security)
    if security.tls:
        if security.ssl_ca_file is not None:
            options["kafka.ssl.truststore.type"] = "PEM"
            options["kafka.ssl.truststore.location"] = str(security.ssl_ca_file)
        # the Java client's way to turn the check off is an empty algorithm
        options["kafka.ssl.endpoint.identification.algorithm"] = (
            "https" if security.ssl_check_hostname else ""
        )
    return options


def describe(security: KafkaSecurity | None) -> str:
    """A loggable summary, e.g. `SASL_SSL (SCRAM-SHA-512 as alice)`; never the password."""
    if security is None or security.protocol == "PLAINTEXT":
        return "PLAINTEXT"
    text: str = security.protocol
    if security.sasl:
        text += f" ({security.sasl_mechanism} as {security.sasl_username})"
    return text
