"""Scaling out: two API servers consume the windows topic and serve the same live data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from websockets.asyncio.client import connect

from cryptopulse.api.server import BackgroundServer
from cryptopulse.config import ApiSettings, KafkaSettings, load_settings
from cryptopulse.schema import WindowAggregate
from tests.integration.test_api_server import RECV, metric, recv_json
from tests.unit.test_api_store import window

pytestmark = pytest.mark.integration


def produce(bootstrap: str, topic: str, records: list[WindowAggregate | bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for record in records:
        if isinstance(record, bytes):
            producer.produce(topic, value=record, key=b"junk")
        else:
            producer.produce(
                topic, value=record.model_dump_json().encode(), key=record.coin.encode()
            )
    assert producer.flush(30) == 0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_two_replicas_on_different_ports_serve_the_same_live_data(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("windows")
    # history written before the replicas start: each reads it back on start
    produce(kafka_bootstrap, topic, [window(coin, 0) for coin in ("bitcoin", "ethereum")])
    settings = load_settings(
        data_dir=tmp_path,
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_windows=topic),
        api=ApiSettings(consume_windows=True, ingest_enabled=False, web_dist=tmp_path / "none"),
    )
    with BackgroundServer(settings) as a, BackgroundServer(settings) as b:
        replicas = (a, b)
        assert a.port != b.port
        for server in replicas:
            wait_until(
                lambda s=server: httpx.get(f"{s.url}/healthz").json()["coins"] == 2,  # type: ignore[misc]
                f"replica {server.port} to read the topic's history",
            )
        groups = {httpx.get(f"{s.url}/healthz").json()["consumer"]["group"] for s in replicas}
        assert len(groups) == 2  # a consumer group each, so each sees every record

        live = [window("bitcoin", 1, price=p, final=p == 3.0) for p in (1.0, 2.0, 3.0)]
        live += [window("solana", 1, price=7.0)]

        async def watch(server: BackgroundServer, connected: asyncio.Event) -> dict[str, Any]:
            """The replica's snapshot and every update, until all live records arrived."""
            async with connect(server.ws_url) as ws:
                snapshot = await recv_json(ws)
                connected.set()
                seen: list[dict[str, Any]] = []
                while len(seen) < len(live):
                    update = await recv_json(ws)
                    assert update["type"] == "market_update"
                    seen.extend(update["data"])
                return {"snapshot": snapshot["data"], "updates": seen}

        async def main() -> list[dict[str, Any]]:
            ready = [asyncio.Event(), asyncio.Event()]
            watchers = [
                asyncio.create_task(watch(s, e)) for s, e in zip(replicas, ready, strict=True)
            ]
            for event in ready:
                await asyncio.wait_for(event.wait(), RECV)
            await asyncio.to_thread(produce, kafka_bootstrap, topic, [b"not json", *live])
            return list(await asyncio.gather(*watchers))

        seen_a, seen_b = asyncio.run(main())
        assert {r["coin"] for r in seen_a["snapshot"]} == {"bitcoin", "ethereum"}
        assert seen_a["snapshot"] == seen_b["snapshot"]
        for seen in (seen_a, seen_b):
            bitcoin = [r["avg_price"] for r in seen["updates"] if r["coin"] == "bitcoin"]
            assert bitcoin == [1.0, 2.0, 3.0]  # per coin in order (one partition per key)
            assert [r["coin"] for r in seen["updates"]].count("solana") == 1

        coins = [httpx.get(f"{s.url}/api/coins").json() for s in replicas]
        assert coins[0] == coins[1]
        assert {(c["coin"], c["avg_price"]) for c in coins[0]} == {
            ("bitcoin", 3.0),
            ("ethereum", 100.0),
            ("solana", 7.0),
        }
        for server in replicas:
            history = httpx.get(f"{server.url}/api/history/bitcoin").json()
            assert [(h["avg_price"], h["final"]) for h in history] == [(100.0, True), (3.0, True)]
            invalid = metric(server, "cryptopulse_api_kafka_messages_total", outcome="invalid")
            assert invalid == 1
            assert httpx.post(f"{server.url}/ingest", json={"data": []}).status_code in (404, 405)
