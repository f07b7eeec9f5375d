"""Shared fixtures: one real Kafka broker and one real SparkSession per test session.

Servers run in temp folders on free ports and are always stopped. Tests isolate
themselves with uuid-named topics and consumer groups (`new_topic`, `group_id`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cryptopulse.config import Settings, load_settings
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import free_port

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the shared servers: a temp data folder and free ports."""
    data_dir: Path = tmp_path_factory.mktemp("cryptopulse-data")
    settings = load_settings(data_dir=data_dir)
    settings.kafka.port = free_port()
    settings.kafka.controller_port = free_port()
    return settings


@pytest.fixture(scope="session")
def kafka_broker(session_settings: Settings) -> Iterator[LocalKafka]:
    broker = LocalKafka.from_settings(session_settings)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalKafka) -> str:
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def new_topic(kafka_broker: LocalKafka) -> Callable[..., str]:
    """Create a uuid-named topic: `new_topic()` or `new_topic("ticks", partitions=1)`."""

    def create(prefix: str = "test", partitions: int = 3) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        kafka_broker.create_topics([name], partitions=partitions)
        return name

    return create


@pytest.fixture
def group_id() -> str:
    return f"test-group-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def spark(session_settings: Settings) -> Iterator[SparkSession]:
    from cryptopulse.platform.spark import spark_session

    session = spark_session(session_settings, "cryptopulse-tests")
    try:
        yield session
    finally:
        session.stop()
