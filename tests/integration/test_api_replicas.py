"""Scaling out and restarting: API servers consume the windows and status topics, serve the
same live data, and a restarted one comes back with what Kafka holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from websockets.asyncio.client import connect

from cryptopulse.api.server import BackgroundServer
from cryptopulse.config import ApiSettings, KafkaSettings, load_settings
from cryptopulse.schema import WindowAggregate
from tests.factories import status, window
from tests.integration.test_api_server import RECV, metric, recv_json
from tests.waiting import wait_for

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


def test_two_replicas_on_different_ports_serve_the_same_live_data(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("windows")
    # history written before the replicas start: each reads it back on start
    produce(kafka_bootstrap, topic, [window(coin, 0) for coin in ("bitcoin", "ethereum")])
    settings = load_settings(
        data_dir=tmp_path,
        # a status topic of its own: other tests' producers write the default one
        kafka=KafkaSettings(
            bootstrap_servers=kafka_bootstrap,
            topic_windows=topic,
            topic_status=new_topic("status", partitions=1),
        ),
        api=ApiSettings(consume_windows=True, ingest_enabled=False, web_dist=tmp_path / "none"),
    )
    with BackgroundServer(settings) as a, BackgroundServer(settings) as b:
        replicas = (a, b)
        assert a.port != b.port
        for server in replicas:
            wait_for(
                lambda s=server: httpx.get(f"{s.url}/healthz").json()["coins"] == 2,  # type: ignore[misc]
                60,
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
                # updates of one window waiting for the same broadcast are coalesced (the newest
                # wins), so the last of each coin is what must arrive
                while not {("bitcoin", 3.0), ("solana", 7.0)} <= {
                    (r["coin"], r["avg_price"]) for r in seen
                }:
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
            # per coin in order (one partition per key), ending with the final
            assert (
                bitcoin == sorted(bitcoin)
                and bitcoin[-1] == 3.0
                and len(set(bitcoin)) == len(bitcoin)
            )
            assert [r["coin"] for r in seen["updates"]].count("solana") == 1

        coins = [httpx.get(f"{s.url}/api/coins").json() for s in replicas]
        assert coins[0] == coins[1]
        assert {(c["coin"], c["avg_price"]) for c in coins[0]} == {
            ("bitcoin", 3.0),
            ("ethereum", 100.0),
            ("solana", 7.0),
        }
        for server in replicas:
            history = httpx.get(f"{server.url}/api/windows/bitcoin").json()
            assert [(h["avg_price"], h["final"]) for h in history] == [(100.0, True), (3.0, True)]
            invalid = metric(server, "cryptopulse_api_kafka_messages_total", outcome="invalid")
            assert invalid == 1
            assert httpx.post(f"{server.url}/ingest", json={"data": []}).status_code in (404, 405)


def test_a_restarted_server_comes_back_with_history_and_every_source_status(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    windows, statuses = new_topic("windows"), new_topic("status", partitions=1)
    history = [window(coin, i, final=True) for i in range(5) for coin in ("bitcoin", "solana")]
    history += [window("bitcoin", 5, price=p, final=False) for p in (1.0, 2.0)]  # open window
    history += [window("bitcoin", 0, price=9.0, source="coingecko")]
    produce(kafka_bootstrap, windows, list(history))
    now = datetime.now(UTC)
    said = [
        status("coingecko", "live", at=now - timedelta(minutes=5)),
        status("coingecko", "degraded", at=now - timedelta(minutes=4), detail="HTTP 500"),
        status("simulated", "simulated", at=now),
    ]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for s in said:
        producer.produce(statuses, key=s.source.encode(), value=s.model_dump_json().encode())
    producer.produce(statuses, key=b"junk", value=b'{"source": "x"}')
    assert producer.flush(30) == 0
    settings = load_settings(
        data_dir=tmp_path,
        kafka=KafkaSettings(
            bootstrap_servers=kafka_bootstrap, topic_windows=windows, topic_status=statuses
        ),
        api=ApiSettings(consume_windows=True, web_dist=tmp_path / "none"),
    )

    def served(server: BackgroundServer) -> dict[str, Any]:
        def rebuilt() -> bool:  # the windows alone already name both sources: wait for statuses
            sources = httpx.get(f"{server.url}/api/sources").json()["sources"]
            return len(httpx.get(f"{server.url}/api/windows/bitcoin").json()) == 6 and [
                (s["source"], s["status"] is not None) for s in sources
            ] == [("coingecko", True), ("simulated", True)]

        wait_for(rebuilt, 60, f"server {server.port} to rebuild from Kafka")

        async def welcome() -> list[dict[str, Any]]:
            async with connect(server.ws_url, max_size=None) as ws:
                return [await recv_json(ws), await recv_json(ws)]

        return {
            "history": httpx.get(f"{server.url}/api/windows/bitcoin").json(),
            "sources": httpx.get(f"{server.url}/api/sources").json(),
            "welcome": asyncio.run(welcome()),
        }

    with BackgroundServer(settings) as first:
        before = served(first)
    with BackgroundServer(settings) as restarted:
        after = served(restarted)
    assert after == before
    assert [(h["avg_price"], h["final"]) for h in before["history"]][-2:] == [
        (100.0, True),
        (2.0, False),
    ]
    sources = before["sources"]
    assert sources["default"] == "simulated"  # the newest heartbeat is the running source
    assert [(s["source"], s["status"]["state"], s["coins"]) for s in sources["sources"]] == [
        ("coingecko", "degraded", 1),
        ("simulated", "simulated", 2),
    ]
    snapshot, status_message = before["welcome"]
    assert snapshot["type"] == "snapshot" and len(snapshot["data"]) == 6 + 5 + 1
    assert status_message["type"] == "source_status"
    assert [s["state"] for s in status_message["data"]] == ["degraded", "simulated"]
    assert status_message["data"][0]["detail"] == "HTTP 500"
