"""The WebSocket hub without a server: framing, ordering, fan-out, slow clients, limits.

The channels here stand in for a socket (the network), not for any CryptoPulse part.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from cryptopulse.api.feed import MarketFeed
from cryptopulse.api.hub import Hub, Outgoing, encode, text_frame, text_frames
from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.api.routes.live import origin_allowed
from cryptopulse.api.store import MarketStore
from cryptopulse.schema import SnapshotMessage
from tests.factories import window


class SocketChannel:
    """Accepts writes while `open`; a closed one makes senders wait (like a full socket buffer)."""

    path = "direct"

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.aborted = False

    def ready(self) -> bool:
        return self.writable.is_set()

    def write_now(self, message: Outgoing) -> None:
        self.received.append(message.payload)

    async def send(self, message: Outgoing) -> None:
        await self.writable.wait()
        self.received.append(message.payload)

    def abort(self) -> None:
        self.aborted = True


def decode_frame(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_text_frame_is_a_valid_websocket_frame(size: int) -> None:
    payload = ("é" * size).encode()[:size]
    frame = decode_frame(text_frame(payload))
    assert frame.opcode is Opcode.TEXT and frame.fin and bytes(frame.data) == payload


def test_a_large_message_goes_out_in_fragments_that_reassemble() -> None:
    payload = b'{"data":"' + b"x" * 200_000 + b'"}'
    frames = [decode_frame(f) for f in text_frames(payload, size=65536)]
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.CONT, Opcode.CONT, Opcode.CONT]
    assert [f.fin for f in frames] == [False, False, False, True]
    assert all(len(f.data) <= 65536 for f in frames)
    assert b"".join(bytes(f.data) for f in frames) == payload
    assert not Outgoing("snapshot", payload).small


def test_messages_match_the_contract_and_use_z_timestamps() -> None:
    payload = encode("snapshot", [window()])
    message = SnapshotMessage.model_validate_json(payload)
    assert message.data == [window()]
    assert b'"window_start":"2026-11-24T22:00:00Z"' in payload


def test_a_window_of_trades_goes_out_with_its_trade_fields() -> None:
    traded, ticker = window("bitcoin", trades=4, quote="USDT"), window("ethereum")
    payload = encode("market_update", [traded, ticker])
    data = orjson.loads(payload)["data"]
    assert [(d["quote"], d["vwap"], d["traded_volume"], d["trade_count"]) for d in data] == [
        ("USDT", 100.0, 2.0, 4),
        (None, None, None, None),  # present and null: the web tells "no trades" apart
    ]
    assert SnapshotMessage.model_validate_json(encode("snapshot", [traded])).data == [traded]


def test_outgoing_builds_frame_and_text_once() -> None:
    message = Outgoing("market_update", b'{"a":1}')
    assert message.frames is message.frames and message.small
    assert message.text is message.text == '{"a":1}'


def test_origin_allow_list() -> None:
    allowed = ["http://localhost:5173"]
    assert origin_allowed(None, allowed)  # not a browser
    assert origin_allowed("http://localhost:5173", allowed)
    assert not origin_allowed("http://example.test:8000", allowed)  # no "same as Host" shortcut
    assert not origin_allowed("http://evil.test", allowed)
    assert not origin_allowed("null", allowed)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _feed(**hub_options: float) -> tuple[MarketFeed, Hub, ApiMetrics]:
    metrics = ApiMetrics()
    hub = Hub(metrics=metrics, **hub_options)  # type: ignore[arg-type]
    return MarketFeed(MarketStore(10), hub, metrics, snapshot_history=5), hub, metrics


def _types(channel: SocketChannel) -> list[str]:
    return [orjson.loads(p)["type"] for p in channel.received]


def _prices(channel: SocketChannel) -> list[float]:
    return [orjson.loads(p)["data"][0]["avg_price"] for p in channel.received[1:]]


def test_snapshot_first_then_updates_in_order() -> None:
    async def main() -> None:
        feed, hub, _ = _feed()
        await hub.start()
        feed.ingest([window(i=0, price=1.0)], "test")
        await _settle()
        welcome, version = feed.welcome()
        channel = SocketChannel()
        hub.register(channel, welcome, version)
        for price in (2.0, 3.0, 4.0):
            feed.ingest([window(i=1, price=price, final=False)], "test")
            await _settle()
        await hub.stop()
        assert _types(channel) == ["snapshot", "market_update", "market_update", "market_update"]
        assert _prices(channel) == [2.0, 3.0, 4.0]
        snapshot = SnapshotMessage.model_validate_json(channel.received[0])
        assert [w.avg_price for w in snapshot.data] == [1.0]

    asyncio.run(main())


def test_a_client_skips_broadcasts_already_in_its_snapshot() -> None:
    async def main() -> None:
        feed, hub, _ = _feed()
        await hub.start()
        feed.ingest([window(i=0, price=1.0)], "test")  # queued, not yet broadcast
        welcome, version = feed.welcome()  # ...but already in the snapshot
        channel = SocketChannel()
        hub.register(channel, welcome, version)
        await _settle()
        await hub.stop()
        assert _types(channel) == ["snapshot"]

    asyncio.run(main())


def test_a_stuck_client_is_dropped_after_the_timeout_and_others_get_everything() -> None:
    async def main() -> None:
        feed, hub, metrics = _feed(send_timeout=0.2)
        await hub.start()
        welcome, version = feed.welcome()
        stuck, healthy = SocketChannel(), SocketChannel()
        hub.register(stuck, welcome, version)
        hub.register(healthy, welcome, version)
        stuck.writable.clear()
        for i in range(3):
            feed.ingest([window(i=i, price=float(i + 1))], "test")
            await _settle()
        assert _prices(healthy) == [1.0, 2.0, 3.0]
        assert len(hub) == 2 and not stuck.aborted
        started = asyncio.get_running_loop().time()
        async with asyncio.timeout(5):  # dropped once its send has waited send_timeout
            while not stuck.aborted:
                await asyncio.sleep(0.01)
        assert asyncio.get_running_loop().time() - started >= 0.1
        assert len(hub) == 1
        assert metrics.registry.get_sample_value(
            "cryptopulse_api_ws_dropped_total", {"reason": "slow"}
        )
        await hub.stop()

    asyncio.run(main())


def test_a_client_whose_queue_overflows_is_dropped() -> None:
    async def main() -> None:
        feed, hub, metrics = _feed(send_timeout=10, queue_size=2)
        await hub.start()
        welcome, version = feed.welcome()
        stuck = SocketChannel()
        stuck.writable.clear()
        hub.register(stuck, welcome, version)  # the snapshot waits in the queue
        for i in range(3):
            feed.ingest([window(i=i)], "test")
            await _settle()
        assert stuck.aborted and len(hub) == 0
        value = metrics.registry.get_sample_value(
            "cryptopulse_api_ws_dropped_total", {"reason": "queue_full"}
        )
        assert value == 1
        await hub.stop()

    asyncio.run(main())


def test_updates_waiting_for_the_broadcast_are_coalesced_newest_per_window() -> None:
    async def main() -> None:
        feed, hub, metrics = _feed()
        await hub.start()
        welcome, version = feed.welcome()
        channel = SocketChannel()
        hub.register(channel, welcome, version)
        # a burst while the hub's task has not run: one message, the newest record per window
        for price in (2.0, 3.0, 4.0):
            feed.ingest([window(i=1, price=price, final=False), window("solana", 0)], "test")
        feed.ingest([window(i=1, price=5.0)], "test")
        assert hub.backlog == 2
        await _settle()
        await hub.stop()
        assert _types(channel) == ["snapshot", "market_update"]
        update = orjson.loads(channel.received[1])["data"]
        assert [(w["coin"], w["avg_price"], w["final"]) for w in update] == [
            ("bitcoin", 5.0, True),
            ("solana", 100.0, True),
        ]
        assert (
            metrics.registry.get_sample_value(
                "cryptopulse_api_broadcasts_total", {"type": "market_update"}
            )
            == 1
        )

    asyncio.run(main())


def test_a_large_backlog_goes_out_in_bounded_messages() -> None:
    async def main() -> None:
        feed, hub, _ = _feed(max_message_records=40)
        await hub.start()
        welcome, version = feed.welcome()
        channel = SocketChannel()
        hub.register(channel, welcome, version)
        feed.ingest([window(f"coin-{n}", 0) for n in range(100)], "test")
        await _settle()
        await hub.stop()
        sizes = [len(orjson.loads(p)["data"]) for p in channel.received[1:]]
        assert sizes == [40, 40, 20]

    asyncio.run(main())


def test_admission_is_limited_in_all_and_per_address() -> None:
    hub = Hub(metrics=ApiMetrics(), max_clients=3, max_per_address=2)
    assert hub.admit("10.0.0.1") is None and hub.admit("10.0.0.1") is None
    assert hub.admit("10.0.0.1") == "per_address"
    assert hub.admit("10.0.0.2") is None
    assert hub.admit("10.0.0.3") == "full"
    hub.release("10.0.0.1")
    assert hub.admit("10.0.0.3") is None
    hub.release("10.0.0.2")
    assert hub.admit("10.0.0.1") is None


def test_publishing_needs_a_started_hub() -> None:
    hub = Hub(metrics=ApiMetrics())
    with pytest.raises(RuntimeError):
        hub.publish(1, [])


def test_apps_have_separate_metric_registries() -> None:
    a, b = ApiMetrics(), ApiMetrics()
    a.records.labels("http").inc(5)
    assert b.registry.get_sample_value("cryptopulse_api_records_total", {"origin": "http"}) is None
