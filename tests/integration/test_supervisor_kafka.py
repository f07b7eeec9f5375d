"""The supervisor keeps the real local broker alive: SIGKILLed, it comes back with its data."""

from __future__ import annotations

import io
import os
import signal
import time
import uuid
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from cryptopulse.config import load_settings
from cryptopulse.platform.kafka import LocalKafka
from cryptopulse.platform.ports import free_port, port_in_use
from cryptopulse.process_group import identity_of
from cryptopulse.supervisor import Supervisor
from tests.kafka_helpers import TopicReader, send

pytestmark = pytest.mark.integration


def test_a_sigkilled_broker_comes_back_with_its_topics_and_data(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    settings.kafka.bootstrap_servers = ""
    settings.kafka.port = free_port()
    settings.kafka.controller_port = free_port()
    out = io.StringIO()
    sup = Supervisor(
        settings,
        dict(os.environ),
        Console(file=out, width=300, color_system=None),
        children=[],
        backoff_base=0.2,
    )
    broker = LocalKafka.from_settings(settings)
    try:
        sup.start_kafka()
        sup.wait_kafka(120)
        sup.started = True
        first = sup.kafka_state.pid
        assert first is not None and sup.kafka_state.owned
        topic = settings.kafka.topic_ticks
        records = [(f"coin-{i % 10}", orjson.dumps({"seq": i})) for i in range(200)]
        send(broker.bootstrap, topic, records)

        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()
        deadline = killed + 120
        while not (sup.kafka_state.status == "running" and sup.kafka_state.pid != first):
            assert time.monotonic() < deadline, out.getvalue()
            sup.tick()
            time.sleep(0.25)
        assert identity_of(first) is None
        text = out.getvalue()
        assert text.count("kafka │ went away") == 1, text
        assert text.count("kafka │ back after") == 1, text
        assert sup.kafka_state.restarts == 1

        # Same storage: every topic and every record is still there, and it takes new ones.
        assert set(settings.kafka.topics) <= broker.topics()
        send(broker.bootstrap, topic, [("coin-0", orjson.dumps({"seq": 200}))])
        reader = TopicReader(broker.bootstrap, topic, f"test-{uuid.uuid4().hex[:12]}")
        try:
            values = reader.until(lambda v: len(v) >= 201, timeout=60)
        finally:
            reader.close()
        assert sorted(v["seq"] for v in values) == list(range(201))
    finally:
        sup.shutdown()
    assert not broker.running()
    assert not port_in_use(settings.kafka.host, settings.kafka.port)
    assert not port_in_use(settings.kafka.host, settings.kafka.controller_port)
