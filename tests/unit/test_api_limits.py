"""The API's bounds that are arithmetic: limits fitted to the open-files limit, the token
bucket for chatty WebSocket clients, the per-address count."""

from __future__ import annotations

from cryptopulse.api.limits import RESERVED_FILES, PerAddress, TokenBucket, fit_limits
from cryptopulse.config import ApiSettings


def test_limits_fit_below_the_open_files_limit() -> None:
    api = ApiSettings()  # 20,000 clients, 25,000 connections, 1,000 requests
    limits = fit_limits(api, open_files=1024)
    assert limits.connections == 1024 - RESERVED_FILES
    assert limits.clients + limits.requests <= limits.connections
    assert limits.clients < api.max_clients and limits.requests >= 1


def test_limits_are_the_settings_when_descriptors_are_plenty() -> None:
    api = ApiSettings(max_clients=500, max_connections=2_000, max_requests=100)
    limits = fit_limits(api, open_files=1 << 20)
    assert (limits.connections, limits.clients, limits.requests) == (2_000, 500, 100)


def test_websocket_clients_always_leave_room_for_requests() -> None:
    limits = fit_limits(ApiSettings(max_clients=20_000, max_connections=1_000), 1 << 20)
    assert limits.requests == 500 and limits.clients == 500


def test_the_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=40, now=0.0)
    assert all(bucket.take(0.0) for _ in range(40))
    assert not bucket.take(0.0)
    assert bucket.take(0.1) and not bucket.take(0.1)  # one token per 100 ms
    assert sum(bucket.take(100.0) for _ in range(100)) == 40  # refills only up to the burst


def test_places_per_address() -> None:
    places = PerAddress(limit=2)
    assert places.take("a") is None and places.take("a") is None
    assert places.take("a") == "per_address"
    assert places.take("b") is None
    places.give_back("a")
    assert places.take("a") is None
    for address in ("a", "a", "b"):
        places.give_back(address)
    assert len(places) == 0


def test_new_places_per_address_are_rate_limited_and_buckets_bounded() -> None:
    places = PerAddress(limit=100, rate=2, burst=3)
    assert [places.take("a", now=0.0) for _ in range(4)] == [None, None, None, "address_rate"]
    assert places.take("b", now=0.0) is None  # another address has its own allowance
    assert places.take("a", now=0.5) is None  # one more after half a second at 2/s
    assert places.take("a", now=0.5) == "address_rate"


def test_rate_buckets_stay_bounded_under_many_addresses() -> None:
    from cryptopulse.api import limits

    places = PerAddress(limit=10, rate=1, burst=2)
    for i in range(limits.MAX_TRACKED_ADDRESSES + 50):
        assert places.take(f"10.0.{i // 256}.{i % 256}", now=0.0) is None
    assert len(places._buckets) <= limits.MAX_TRACKED_ADDRESSES
